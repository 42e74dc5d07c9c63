"""Tests for the refresh of known state, against the real emulator over 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import Emulators

from bsg_sync.client import BsgClient, RetryPolicy
from bsg_sync.emulator import Emulator
from bsg_sync.models import Contact, Desired
from bsg_sync.refresh import RefreshStats, load_account, pull_all, refresh_known, resolve_offline
from bsg_sync.state import StateStore

BOOK = 1200
CITY = 387700


def _phone(i: int) -> str:
    return f"4477009{i:05d}"


SEED: dict[str, Any] = {
    "fields": [{"id": CITY, "name": "City", "type": "text"}],
    "groups": [{"id": 10, "name": "VIP"}, {"id": 11, "name": "Newsletter"}],
    "contacts": [{"id": 1000 + i, "phone": int(_phone(i)), "fields": {str(CITY): f"City {i}"},
                  "groups": [10], "hlr_status": "active"} for i in range(1, BOOK + 1)],
}


@pytest.fixture(scope="module")
def emu(module_emulator: Emulators) -> Emulator:
    return module_emulator(SEED)


@pytest.fixture()
def client(emu: Emulator) -> Iterator[BsgClient]:
    emu.reset()
    c = BsgClient(emu.url, "live_refresh_tests", policy=RetryPolicy.fast())
    yield c
    c.close()


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.sqlite3") as s:
        yield s


def _gets(emu: Emulator) -> int:
    return int(emu.stats()["requests"]["GET"])


def _row(row: int, cid: int | None, phone: str | None = None) -> Desired:
    return Desired(row, cid, phone, {CITY: "Leeds"}, None)


def test_three_rows_use_three_gets(emu: Emulator, client: BsgClient,
                                   store: StateStore) -> None:
    before = _gets(emu)
    stats = RefreshStats()
    rows, known = refresh_known(client, store, [_row(2, 1500), _row(3, 1002),
                                                       _row(4, 1001)], stats=stats)
    assert _gets(emu) - before == 3
    assert (stats.strategy, stats.gets, stats.list_pages, stats.counts) == ("get", 3, 0, 0)
    assert list(known) == [1500, 1002, 1001]  # the sheet's order
    assert known[1500].seen.fields == {CITY: "City 500"}
    assert known[1500].seen.hlr_status == "active"
    assert rows[2].contact_id == 1001
    assert store.contact_ids() == {1001, 1002, 1500}


def test_thousand_rows_use_three_pages_and_a_count(emu: Emulator, client: BsgClient,
                                                   store: StateStore) -> None:
    before = _gets(emu)
    rows = [_row(i + 2, 1000 + i) for i in range(1, 1001)]
    stats = RefreshStats()
    _, known = refresh_known(client, store, rows, stats=stats)
    assert _gets(emu) - before == 4
    assert (stats.strategy, stats.list_pages, stats.counts, stats.gets) == ("list", 3, 1, 0)
    assert len(known) == 1000
    assert store.count_contacts() == BOOK  # the whole listed book refreshes the snapshot


def test_a_few_rows_with_a_warm_snapshot_skip_the_count(emu: Emulator, client: BsgClient,
                                                        store: StateStore) -> None:
    pull_all(client, store)
    before = _gets(emu)
    rows = [_row(i + 2, 1000 + i) for i in range(1, 5)]  # 4 GETs beat 1 count + 3 pages
    stats = RefreshStats()
    _, known = refresh_known(client, store, rows, stats=stats)
    assert _gets(emu) - before == 4
    assert stats.strategy == "get" and len(known) == 4


def test_phones_resolve_by_search_when_not_in_snapshot(emu: Emulator, client: BsgClient,
                                                       store: StateStore) -> None:
    before = _gets(emu)
    stats = RefreshStats()
    rows, known = refresh_known(
        client, store, [_row(2, None, _phone(7)), _row(3, None, "447700999999")], stats=stats)
    assert _gets(emu) - before == 2
    assert stats.searches == 2
    assert [r.contact_id for r in rows] == [1007, None]
    assert set(known) == {1007}
    assert store.ids_by_phone([_phone(7)]) == {_phone(7): 1007}


def test_snapshot_phone_match_is_confirmed_live(emu: Emulator, client: BsgClient,
                                                store: StateStore) -> None:
    store.save_seen([Contact(1001, _phone(5), {}, frozenset())])  # stale: 1001 changed phone
    before = _gets(emu)
    stats = RefreshStats()
    rows, known = refresh_known(client, store, [_row(2, None, _phone(5))], stats=stats)
    assert rows[0].contact_id == 1005  # 1 GET of 1001 showed another phone, 1 search found it
    assert (_gets(emu) - before, stats.gets, stats.searches) == (2, 1, 1)
    assert set(known) == {1005}


def test_snapshot_phone_match_needs_no_search(emu: Emulator, client: BsgClient,
                                              store: StateStore) -> None:
    pull_all(client, store)
    stats = RefreshStats()
    _, _ = refresh_known(client, store, [_row(2, None, _phone(5))], stats=stats)
    assert (stats.gets, stats.searches) == (1, 0)


def test_listing_resolves_phones_without_searches(emu: Emulator, client: BsgClient,
                                                  store: StateStore) -> None:
    rows = [_row(i + 2, 1000 + i) for i in range(1, 1001)]
    rows += [_row(1100, None, _phone(1100)), _row(1101, None, "447700999999")]
    stats = RefreshStats()
    out, known = refresh_known(client, store, rows, stats=stats)
    assert stats.searches == 0
    assert [r.contact_id for r in out[-2:]] == [2100, None]
    assert 2100 in known


def test_deleted_contact_is_forgotten_and_not_known(emu: Emulator, client: BsgClient,
                                                    store: StateStore) -> None:
    store.save_seen([Contact(99999, "447700888888", {}, frozenset())])
    _, known = refresh_known(client, store, [_row(2, 99999), _row(3, 1001)])
    assert set(known) == {1001}
    assert 99999 not in store.contact_ids()


def test_known_carries_what_we_wrote(emu: Emulator, client: BsgClient,
                                     store: StateStore) -> None:
    store.record_written(Contact(1001, _phone(1), {CITY: "Paris"}, frozenset({10})))
    _, known = refresh_known(client, store, [_row(2, 1001)])
    assert known[1001].seen.fields == {CITY: "City 1"}
    assert known[1001].written is not None
    assert known[1001].written.fields == {CITY: "Paris"}


def test_pull_all_and_offline(emu: Emulator, client: BsgClient, store: StateStore) -> None:
    store.save_seen([Contact(99999, "447700888888", {}, frozenset())])
    count, account = pull_all(client, store)
    assert count == BOOK and store.count_contacts() == BOOK
    assert account == load_account(client) == store.load_account()
    assert account.field_name(CITY) == "City" and account.group_name(11) == "Newsletter"
    before = _gets(emu)
    rows, known = resolve_offline(store, [_row(2, None, _phone(9)), _row(3, 1010)])
    assert _gets(emu) == before
    assert [r.contact_id for r in rows] == [1009, 1010]
    assert set(known) == {1009, 1010}
    # the book comes in the sheet's order (the plan then compares whole columns), each once
    rows, known = resolve_offline(store, [_row(2, 1011), _row(3, None, _phone(9)),
                                          _row(4, 77), _row(5, 1002), _row(6, 1011)])
    assert list(known) == [1011, 1009, 1002]
