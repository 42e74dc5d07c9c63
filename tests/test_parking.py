"""Rows waiting to retry are parked (issue: speed under faults): they give up their
concurrency slot, so one row's back-off does not hold the others; a stop while rows are
parked loses nothing and sends nothing twice. Against the emulator on 127.0.0.1."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from test_executor import SEED, SIZE, Journal, city_of, config, run, update_row

from bsg_sync.client import BsgClient, RetryPolicy
from bsg_sync.emulator import Emulator
from bsg_sync.models import Status

# a 5xx is retried after 1-2 s (jitter): long next to a row's few milliseconds here
SLOW_RETRY = replace(RetryPolicy.fast(), backoff_initial=2.0, backoff_max=2.0)


def client_for(emu: Emulator, **kw: Any) -> BsgClient:
    return BsgClient(emu.url, "live_parking", policy=SLOW_RETRY, pool_size=4, **kw)


def test_a_row_waiting_to_retry_does_not_hold_the_others() -> None:
    with Emulator(config(), seed=SEED) as emu, client_for(emu) as client:
        client.login()
        emu.inject("503")  # the first row's fresh GET: that row waits 1-2 s to retry
        journal = Journal()
        outcome = run([update_row(n, f"Park {n}") for n in range(SIZE)], client, journal,
                      concurrency=1)
    assert {r.status for r in outcome.results} == {Status.OK}
    order = [r.row for r, _ in journal.calls]
    assert order[-1] == 2, order  # the parked row finished last; the others did not wait
    assert [city_of(emu, n) for n in range(SIZE)] == [f"Park {n}" for n in range(SIZE)]


def test_a_stop_while_rows_are_parked_loses_nothing_and_sends_nothing_twice() -> None:
    stop = threading.Event()
    with Emulator(config(), seed=SEED) as emu, client_for(emu, stop=stop) as client:
        client.login()
        emu.inject("503", "503")  # two rows park
        journal = Journal()
        plan = [update_row(n, f"Stop {n}") for n in range(SIZE)]

        def stop_once_others_are_done(result: Any) -> None:
            if len(journal.calls) >= SIZE - 2:
                stop.set()

        outcome = run(plan, client, journal, concurrency=2, stop=stop,
                      on_result=stop_once_others_are_done, drain_timeout=5)
        puts = emu.stats()["requests"]["PUT"]
    statuses = [r.status for r in outcome.results]
    assert statuses.count(Status.NOT_SENT) == 2 and statuses.count(Status.OK) == SIZE - 2
    assert sorted(journal.rows()) == [p.row for p in plan]  # every row journalled once
    assert puts == SIZE - 2  # the parked rows never got to their PUT
