"""Which numbers need a lookup (pure): new, changed, stale, all; the cache; pricing."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from bsg_sync.hlr import PriceRow
from bsg_sync.models import Contact, Desired, Known
from bsg_sync.verify import Mode, choose_numbers, country_of, quote

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
KNOWN = {
    1: Known(Contact(1, "447700900001", {}, frozenset(), "active", "2026-05-30 10:00:00")),
    2: Known(Contact(2, "447700900002", {}, frozenset(), "active", "2026-01-01 10:00:00")),
    3: Known(Contact(3, "447700900003", {}, frozenset())),
    4: Known(Contact(4, "447700900004", {}, frozenset(), "active", "2026-05-30 10:00:00")),
}
ROWS = [
    Desired(2, 1, "447700900001", {}, None),  # fresh check by BSG
    Desired(3, 2, "447700900002", {}, None),  # checked 5 months ago
    Desired(4, 3, "447700900003", {}, None),  # never checked
    Desired(5, 4, "447700900040", {}, None),  # the sheet changes contact 4's number
    Desired(6, None, "447700900050", {}, None),  # new to the book
    Desired(7, 99, "447700900060", {}, None),  # an id BSG does not have: not_found, not sent
    Desired(8, None, "447700900050", {}, None),  # the same new number again
]


@pytest.mark.parametrize(("mode", "expected"), [
    (Mode.NEW, ["447700900050"]),
    (Mode.CHANGED, ["447700900040", "447700900050"]),
    (Mode.STALE, ["447700900002", "447700900003", "447700900040", "447700900050"]),
    (Mode.ALL, ["447700900001", "447700900002", "447700900003", "447700900040",
                "447700900050"]),
])
def test_choice_by_mode(mode: Mode, expected: list[str]) -> None:
    assert choose_numbers(ROWS, KNOWN, {}, mode, 30, NOW) == expected


def test_a_fresh_cache_entry_is_never_chosen_and_a_stale_one_is() -> None:
    cache = {"447700900050": "2026-05-31T00:00:00+00:00", "447700900002": "2026-04-01T00:00:00"}
    assert choose_numbers(ROWS, KNOWN, cache, Mode.ALL, 30, NOW) == [
        "447700900001", "447700900002", "447700900003", "447700900040"]
    assert choose_numbers(ROWS, KNOWN, cache, Mode.NEW, 30, NOW) == []


def test_max_age_decides_staleness() -> None:
    assert choose_numbers(ROWS[:2], KNOWN, {}, Mode.STALE, 200, NOW) == []
    assert choose_numbers(ROWS[:2], KNOWN, {}, Mode.STALE, 1, NOW) == ["447700900001",
                                                                       "447700900002"]


def test_quote_takes_the_countrys_highest_price_and_skips_unpriced() -> None:
    prices = [PriceRow("GB", "0", Decimal("0.005"), "EUR"),
              PriceRow("GB", "30", Decimal("0.007"), "EUR"),
              PriceRow("DE", "0", Decimal("0.0055"), "EUR")]
    q = quote(["447700900001", "4915112345678", "37060000000"], prices, Decimal(1), "EUR")
    assert q.total == Decimal("0.0125") and q.numbers == ("447700900001", "4915112345678")
    assert q.unpriced == ("37060000000",)
    assert (country_of("447700900001"), country_of("12025550100"), country_of("380501234567")) \
        == ("GB", "US", "UA")
