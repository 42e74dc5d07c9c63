"""Tests for bsg_sync.executor: the rate limiter on a fake clock, verification, and runs
against the real emulator on 127.0.0.1."""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bsg_sync import errors
from bsg_sync.executor import RateLimiter, find_difference
from bsg_sync.models import Contact

# --------------------------------------------------------------------------- rate limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_limiter_spaces_grants_by_the_interval() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock)
    delays = [limiter.reserve() for _ in range(4)]
    assert delays == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_limiter_builds_no_burst_while_idle() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock)
    assert limiter.reserve() == 0.0
    clock.now = 60.0  # a long pause must not bank tokens
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == pytest.approx(0.25)


@pytest.mark.parametrize("rate", [1.0, 7.5, 40.0, 333.0])
def test_no_one_second_window_exceeds_the_cap(rate: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock)
    grants: list[float] = []
    # 16 "workers" ask in bursts at irregular moments; a grant happens at now + delay
    for step in range(int(rate * 6)):
        clock.now = step * 0.37 / rate * (1 + step % 3)
        for _ in range(1 + step % 4):
            grants.append(clock.now + limiter.reserve())
    grants.sort()
    # a window a hair under one second: float rounding of the accumulated slots aside
    worst = max(
        bisect.bisect_left(grants, start + 1.0 - 1e-9) - i for i, start in enumerate(grants)
    )
    assert worst <= math.ceil(rate)
    assert worst >= rate - 1  # and the cap is actually used under pressure


def test_limiter_acquire_gives_up_when_cancelled() -> None:
    cancel = threading.Event()
    limiter = RateLimiter(0.001, cancel=cancel)  # the second slot is 1000 s away
    assert limiter.acquire() is True
    cancel.set()
    assert limiter.acquire() is False


def test_limiter_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0.0)


# --------------------------------------------------------------------------- verification

EXPECTED = Contact(id=7, phone="447700900001", fields={1: "Leeds", 2: ""}, groups=frozenset({10}))
BODY: dict[str, Any] = {
    "phone": 447700900001,
    "fields": [{"id": 1, "value": "Leeds"}, {"id": 2, "value": ""}],
    "groups": [10],
}


def _got(**changes: Any) -> Contact:
    base = {"id": 7, "phone": "447700900001", "fields": {1: "Leeds"}, "groups": frozenset({10})}
    base.update(changes)
    return Contact(**base)


@pytest.mark.parametrize(
    ("got", "exact", "difference"),
    [
        (_got(), False, None),
        (_got(groups=frozenset({10, 11})), False, None),  # add mode keeps other lists
        (_got(groups=frozenset({10, 11})), True, "still in list 11"),
        (_got(groups=frozenset()), False, "not in list 10"),
        (_got(phone="447700900002"), False, "phone is 447700900002, expected 447700900001"),
        (_got(fields={1: "London"}), False, "field 1 is 'London', expected 'Leeds'"),
        (_got(fields={1: "Leeds", 2: "x"}), False, "field 2 is 'x', expected ''"),
        (_got(fields={1: "Leeds", 3: "other"}), False, None),  # a field not sent is not judged
    ],
)
def test_find_difference(got: Contact, exact: bool, difference: str | None) -> None:
    assert find_difference(EXPECTED, got, BODY, exact_groups=exact) == difference
