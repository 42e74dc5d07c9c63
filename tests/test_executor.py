"""Tests for bsg_sync.executor: the rate limiter on a fake clock, verification, and runs
against the real emulator on 127.0.0.1."""

from __future__ import annotations

import bisect
import dataclasses
import gc
import math
import threading
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import pytest
from kit import Emulators

from bsg_sync import errors
from bsg_sync.client import BsgClient, CallResult, RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.executor import ExecutionOutcome, execute_plan, find_difference
from bsg_sync.models import (
    Action,
    Contact,
    Desired,
    GroupsMode,
    PlannedRow,
    RowResult,
    Status,
    Threshold,
    result_from_plan,
)
from bsg_sync.ratelimit import RateLimiter

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

TARGET = Contact(id=7, phone="447700900001", fields={1: "Leeds"}, groups=frozenset({10}))
WISH = Desired(row=2, contact_id=7, phone=None, fields={1: "Leeds", 2: ""},
               groups=frozenset({10}))


def _got(**changes: Any) -> Contact:
    base = Contact(id=7, phone="447700900001", fields={1: "Leeds"}, groups=frozenset({10}))
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("got", "detach", "difference"),
    [
        (_got(), frozenset(), None),
        (_got(groups=frozenset({10, 11})), frozenset(), None),  # add mode keeps other lists
        (_got(groups=frozenset({10, 11})), frozenset({11}), "still in list 11"),
        (_got(groups=frozenset()), frozenset(), "not in list 10"),
        (_got(phone="447700900002"), frozenset(), "phone is 447700900002, expected 447700900001"),
        (_got(fields={1: "London"}), frozenset(), "field 1 is 'London', expected 'Leeds'"),
        (_got(fields={1: "Leeds", 2: "x"}), frozenset(), "field 2 is 'x', expected ''"),
        (_got(fields={1: "Leeds", 3: "other"}), frozenset(), None),  # a field not owned
        (_got(id=8), frozenset(), "BSG answered about contact 8, not contact 7"),
    ],
)
def test_find_difference(got: Contact, detach: frozenset[int], difference: str | None) -> None:
    p = PlannedRow(2, Action.UPDATE, Status.PLANNED, 7, target=TARGET, detach=detach,
                   desired=WISH)
    assert find_difference(p, got) == difference


# --------------------------------------------------------------------------- against the emulator

CITY, NAME = 1, 2
NEWS, VIP = 10, 11
FIRST_ID = 100
SIZE = 30


def phone_of(n: int) -> str:
    return str(447700900000 + n)


SEED: dict[str, Any] = {
    "fields": [{"id": CITY, "name": "City", "type": "text"},
               {"id": NAME, "name": "Name", "type": "text"}],
    "groups": [{"id": NEWS, "name": "News"}, {"id": VIP, "name": "VIP"}],
    "contacts": [
        {"id": FIRST_ID + n, "phone": int(phone_of(n)), "fields": {str(NAME): f"Person {n}"},
         "groups": [NEWS, VIP] if n % 2 else [NEWS]}
        for n in range(SIZE)
    ],
}


def config(**overrides: Any) -> EmulatorConfig:
    base: dict[str, Any] = {"random_seed": 7}
    base.update(overrides)
    return EmulatorConfig(**base)


@pytest.fixture
def emu(emulator: Emulators) -> Emulator:
    return emulator(SEED, random_seed=7)


def make_client(emu: Emulator, key: str = "live_executor") -> BsgClient:
    return BsgClient(emu.url, key, policy=RetryPolicy.fast(), pool_size=8)


def update_row(n: int, city: str, *, extra_field: int | None = None,
               groups: frozenset[int] | None = None, detach: frozenset[int] = frozenset(),
               phone: str | None = None) -> PlannedRow:
    """Row n+2 sets contact n's City (and keeps its Name), like the planner would."""
    now = frozenset({NEWS, VIP}) if n % 2 else frozenset({NEWS})
    wanted = (now | (groups or frozenset())) - detach
    fields = {CITY: city, NAME: f"Person {n}"}
    wish: dict[int, str] = {CITY: city}
    if extra_field is not None:
        fields[extra_field] = wish[extra_field] = "x"
    new_phone = phone or phone_of(n)
    target = Contact(id=FIRST_ID + n, phone=new_phone, fields=fields, groups=wanted)
    desired = Desired(n + 2, FIRST_ID + n, phone, wish,
                      wanted if detach else groups, GroupsMode.EXACT if detach else GroupsMode.ADD)
    return PlannedRow(row=n + 2, action=Action.UPDATE, status=Status.PLANNED,
                      contact_id=FIRST_ID + n, phone=new_phone, changes=f"City: → {city}",
                      target=target, detach=detach, desired=desired)


def create_row(row: int, n: int, city: str, groups: frozenset[int]) -> PlannedRow:
    target = Contact(id=0, phone=phone_of(n), fields={CITY: city}, groups=groups)
    desired = Desired(row, None, phone_of(n), {CITY: city}, groups)
    return PlannedRow(row=row, action=Action.CREATE, status=Status.PLANNED, phone=phone_of(n),
                      target=target, desired=desired)


class Journal:
    """Records each journal call (thread-safe), optionally failing at the n-th call."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[tuple[RowResult, Contact | None]] = []
        self.fail_at = fail_at
        self.lock = threading.Lock()

    def __call__(self, result: RowResult, confirmed: Contact | None,
                 before: Contact | None = None) -> None:
        with self.lock:
            if self.fail_at is not None and len(self.calls) + 1 == self.fail_at:
                raise errors.StateStoreError("the state store is read-only")
            self.calls.append((result, confirmed))

    def rows(self) -> list[int]:
        return sorted(r.row for r, _ in self.calls)


def run(plan: Sequence[PlannedRow], client: BsgClient, journal: Journal | None = None,
        **kwargs: Any) -> ExecutionOutcome:
    kwargs.setdefault("max_rps", None)
    kwargs.setdefault("concurrency", 4)
    return execute_plan(plan, client, journal=journal or Journal(), **kwargs)


def city_of(emu: Emulator, n: int) -> str | None:
    for c in emu.contacts():
        if c["id"] == FIRST_ID + n:
            fields = c["fields"] or {}
            return fields.get(str(CITY))
    raise AssertionError(f"contact {n} vanished")


def test_updates_are_applied_verified_and_journalled(emu: Emulator) -> None:
    invalid = PlannedRow(row=1, action=Action.SKIP, status=Status.INVALID,
                         error_code="invalid-phone", error="bad phone")
    plan = [invalid, *(update_row(n, f"City {n}") for n in range(SIZE))]
    journal = Journal()
    with make_client(emu) as client:
        outcome = run(plan, client, journal)
    assert outcome.aborted is None
    assert [r.row for r in outcome.results] == [p.row for p in plan]
    assert outcome.results[0] == RowResult(row=1, action=Action.SKIP, status=Status.INVALID,
                                           error_code="invalid-phone", error="bad phone")
    sent = outcome.results[1:]
    assert {r.status for r in sent} == {Status.OK}
    # each row: one fresh GET right before its PUT
    assert all(r.http_status == 200 and r.attempts == 2 and r.hlr_status for r in sent)
    assert [city_of(emu, n) for n in range(SIZE)] == [f"City {n}" for n in range(SIZE)]
    assert journal.rows() == [p.row for p in plan]  # each row exactly once
    confirmed = {r.row: c for r, c in journal.calls}
    assert confirmed[1] is None
    assert confirmed[2] is not None and confirmed[2].fields[CITY] == "City 0"
    assert emu.stats()["requests"]["PUT"] == SIZE
    assert emu.stats()["requests"]["GET"] == SIZE


def test_exact_groups_detach_the_lists_not_named(emu: Emulator) -> None:
    plan = [update_row(1, "Leeds", detach=frozenset({VIP})), update_row(3, "York")]
    with make_client(emu) as client:
        outcome = run(plan, client)
    assert [r.status for r in outcome.results] == [Status.OK, Status.OK]
    groups = {c["id"]: {g["id"] if isinstance(g, dict) else g for g in c["groups"]}
              for c in emu.contacts()}
    assert groups[FIRST_ID + 1] == {NEWS}
    assert groups[FIRST_ID + 3] == {NEWS, VIP}


def test_server_errors_and_drops_are_retried_to_ok(emu: Emulator) -> None:
    with make_client(emu) as client:
        client.login()  # the scripted faults are for the sending, not the login
        emu.inject("503", "drop", "500")
        outcome = run([update_row(0, "Leeds"), update_row(2, "York")], client, concurrency=1)
    assert [r.status for r in outcome.results] == [Status.OK, Status.OK]
    # three faults among the rows' requests (a row waiting to retry lets the other go on)
    assert sum(r.attempts for r in outcome.results) == 2 + 2 + 3
    assert city_of(emu, 0) == "Leeds"


def test_random_faults_all_end_ok_with_the_expected_state() -> None:
    cfg = config(fail_rate=0.25, drop_rate=0.05, random_seed=11, dup_limit=1000)
    with Emulator(cfg, seed=SEED) as emu, make_client(emu) as client:
        outcome = run([update_row(n, f"Town {n}") for n in range(SIZE)], client)
        assert {r.status for r in outcome.results} == {Status.OK}
        assert sum(r.attempts for r in outcome.results) > SIZE  # faults did happen
        assert [city_of(emu, n) for n in range(SIZE)] == [f"Town {n}" for n in range(SIZE)]


def test_a_refused_row_fails_with_bsgs_message_and_the_others_succeed(emu: Emulator) -> None:
    plan = [update_row(0, "Leeds"), update_row(1, "York", extra_field=999), update_row(2, "Hull")]
    with make_client(emu) as client:
        outcome = run(plan, client)
    ok, bad, ok2 = outcome.results
    assert (ok.status, ok2.status) == (Status.OK, Status.OK)
    assert bad.status is Status.FAILED
    assert bad.error_code == "http-422"
    assert bad.http_status == 422
    assert bad.error == "BSG refused the update: Contact field input is invalid"
    assert outcome.aborted is None
    assert city_of(emu, 1) is None


def test_test_mode_refusal_is_the_rows_failure() -> None:
    verified = frozenset({int(phone_of(0)), int(phone_of(50))})
    cfg = config(test_mode=True, verified_phones=verified)
    with Emulator(cfg, seed=SEED) as emu, make_client(emu, "test_executor") as client:
        plan = [update_row(0, "Leeds", phone=phone_of(50)),
                update_row(1, "York", phone=phone_of(60))]
        outcome = run(plan, client)
    ok, refused = outcome.results
    assert ok.status is Status.OK and ok.phone == phone_of(50)
    assert refused.status is Status.FAILED
    assert refused.error_code == "test-mode"
    assert refused.http_status == 403
    assert "verified" in refused.error and "This action is unauthorized" in refused.error
    assert outcome.aborted is None


def test_create_that_races_an_existing_phone_becomes_an_update(emu: Emulator) -> None:
    row = create_row(9, 4, "Bath", frozenset({VIP}))
    with make_client(emu) as client:
        outcome = run([row], client)
    (result,) = outcome.results
    assert result.status is Status.OK
    assert result.contact_id == FIRST_ID + 4
    assert result.action is Action.UPDATE
    assert result.attempts >= 2
    assert city_of(emu, 4) == "Bath"
    assert emu.stats()["contacts"] == SIZE  # nothing created


def test_a_create_is_sent_and_verified(emu: Emulator) -> None:
    row = create_row(5, 77, "Ely", frozenset({NEWS}))
    journal = Journal()
    with make_client(emu) as client:
        outcome = run([row], client, journal)
    (result,) = outcome.results
    assert (result.status, result.action, result.http_status) == (Status.OK, Action.CREATE, 201)
    assert result.contact_id is not None and result.contact_id > 0
    assert journal.calls[0][1] is not None and journal.calls[0][1].id == result.contact_id
    assert emu.stats()["contacts"] == SIZE + 1


class ListDroppingClient(BsgClient):
    """A real client whose PUT leaves list 11 out of the body (a buggy writer)."""

    def update_contact(self, target: Contact, before: Contact) -> CallResult:
        return super().update_contact(
            dataclasses.replace(target, groups=target.groups - {VIP}), before)


def test_a_write_that_comes_back_different_is_not_applied() -> None:
    # The body drops VIP; this BSG replaces lists, so the contact comes back without it.
    with Emulator(config(put_semantics="replace"), seed=SEED) as emu, \
            ListDroppingClient(emu.url, "live_x", policy=RetryPolicy.fast()) as client:
        outcome = run([update_row(1, "Leeds")], client)
    (result,) = outcome.results
    assert result.status is Status.FAILED
    assert result.error_code == "not-applied"
    assert result.error == "BSG answered but did not apply the change: not in list 11."


def test_a_second_401_after_relogin_aborts_the_run() -> None:
    with Emulator(config(token_ttl=0), seed=SEED) as emu, make_client(emu) as client:
        outcome = run([update_row(n, "Leeds") for n in range(6)], client, concurrency=1)
    assert isinstance(outcome.aborted, errors.AuthFailed)
    assert "again right after a fresh login" in str(outcome.aborted)
    first, *rest = outcome.results
    assert first.status is Status.FAILED and first.error_code == "auth"
    assert {r.status for r in rest} == {Status.NOT_SENT}
    assert all(r.error_code == "not-sent" and "aborted" in r.error for r in rest)


def test_a_rejected_api_key_aborts_before_anything_is_written() -> None:
    with Emulator(config(api_key="live_right"), seed=SEED) as emu, \
            make_client(emu, "live_wrong") as client:
        outcome = run([update_row(n, "Leeds") for n in range(5)], client, concurrency=2)
        assert emu.stats()["writes"] == 0
    assert isinstance(outcome.aborted, errors.AuthFailed)
    assert "live_wrong" not in str(outcome.aborted)
    assert sum(r.status is Status.NOT_SENT for r in outcome.results) >= 3


def test_too_many_failures_aborts_and_leaves_the_rest_not_sent(emu: Emulator) -> None:
    plan = [update_row(n, "Leeds", extra_field=999) for n in range(10)]
    journal = Journal()
    with make_client(emu) as client:
        outcome = run(plan, client, journal, concurrency=1, max_failures=Threshold(2))
    assert isinstance(outcome.aborted, errors.TooManyFailures)
    statuses = [r.status for r in outcome.results]
    assert statuses == [Status.FAILED] * 3 + [Status.NOT_SENT] * 7
    assert emu.stats()["requests"]["PUT"] == 3
    assert journal.rows() == [p.row for p in plan]  # the not-sent rows are journalled too


def test_a_percentage_threshold_counts_planned_rows(emu: Emulator) -> None:
    plan = [update_row(n, "Leeds", extra_field=999 if n < 2 else None) for n in range(10)]
    with make_client(emu) as client:
        outcome = run(plan, client, concurrency=1, max_failures=Threshold(20, percent=True))
    assert outcome.aborted is None  # 2 of 10 is not more than 20%
    assert [r.status for r in outcome.results].count(Status.OK) == 8


def test_stop_event_leaves_the_rest_not_sent_and_interrupted(emu: Emulator) -> None:
    stop = threading.Event()
    seen: list[int] = []

    def on_result(r: RowResult) -> None:
        seen.append(r.row)
        if len(seen) == 2:
            stop.set()

    with make_client(emu) as client:
        outcome = run([update_row(n, "Leeds") for n in range(8)], client, concurrency=1,
                      stop=stop, on_result=on_result)
    assert isinstance(outcome.aborted, errors.Interrupted)
    assert [r.status for r in outcome.results] == [Status.OK] * 2 + [Status.NOT_SENT] * 6
    assert "interrupted" in outcome.results[-1].error
    assert outcome.results[-1].action is Action.UPDATE
    assert emu.stats()["requests"]["PUT"] == 2


def test_a_journal_failure_stops_the_run_at_once(emu: Emulator) -> None:
    journal = Journal(fail_at=3)
    with make_client(emu) as client:
        outcome = run([update_row(n, "Leeds") for n in range(8)], client, journal, concurrency=1)
    assert isinstance(outcome.aborted, errors.StateStoreError)
    assert emu.stats()["requests"]["PUT"] == 3
    assert [r.status for r in outcome.results] == [Status.OK] * 3 + [Status.NOT_SENT] * 5
    assert len(journal.calls) == 2  # nothing more is written to a failing store


class RecordingClient(BsgClient):
    """A real client that notes which thread sent which contact (no HTTP is faked)."""

    events: list[tuple[str, str, int]]

    def update_contact(self, target: Contact, before: Contact) -> CallResult:
        self.events.append((threading.current_thread().name, "send", target.id))
        return super().update_contact(target, before)


def test_each_worker_journals_a_row_before_taking_the_next(emu: Emulator) -> None:
    client = RecordingClient(emu.url, "live_x", policy=RetryPolicy.fast())
    client.events = []

    def journal(result: RowResult, confirmed: Contact | None,
                before: Contact | None = None) -> None:
        assert result.contact_id is not None
        client.events.append((threading.current_thread().name, "journal", result.contact_id))

    with client:
        outcome = execute_plan([update_row(n, "Leeds") for n in range(SIZE)], client,
                               journal=journal, concurrency=4, max_rps=None)
    assert outcome.aborted is None
    threads = {t for t, _, _ in client.events}
    assert len(threads) > 1
    for name in threads:
        mine = [(kind, cid) for t, kind, cid in client.events if t == name]
        sends, journals = mine[0::2], mine[1::2]
        assert [k for k, _ in sends] == ["send"] * len(sends)
        assert [(("journal", c)) for _, c in sends] == journals


def test_a_hanging_request_is_abandoned_after_the_drain_timeout(emu: Emulator) -> None:
    stop = threading.Event()
    journal = Journal()
    with make_client(emu) as client:
        client.login()
        emu.inject("timeout:0.7")
        threading.Timer(0.1, stop.set).start()
        started = time.monotonic()
        outcome = run([update_row(0, "Leeds"), update_row(2, "York")], client, journal,
                      concurrency=1, stop=stop, drain_timeout=0.1)
        elapsed = time.monotonic() - started
        time.sleep(max(0.0, 0.85 - elapsed))  # let the late answer land before closing
    assert elapsed < 0.5
    assert isinstance(outcome.aborted, errors.Interrupted)
    hanging, never = outcome.results
    assert hanging.status is Status.NOT_SENT and hanging.error.startswith("Not confirmed")
    assert never.status is Status.NOT_SENT and "interrupted" in never.error
    assert [r.status for r, _ in journal.calls] == [Status.NOT_SENT] * 2  # no late journal


def test_a_rate_cap_still_sends_everything(emu: Emulator) -> None:
    with make_client(emu) as client:
        outcome = run([update_row(n, "Leeds") for n in range(10)], client, max_rps=200.0)
    assert {r.status for r in outcome.results} == {Status.OK}


def test_rows_that_send_nothing_are_journalled_in_one_batch(emu: Emulator) -> None:
    unsent = [PlannedRow(row=n, action=Action.NONE, status=Status.UNCHANGED, contact_id=n)
              for n in range(1, 6)]
    plan = [*unsent, update_row(0, "Batch")]
    journal, batches = Journal(), list[list[RowResult]]()
    with make_client(emu) as client:
        outcome = run(plan, client, journal, journal_many=batches.append)
    assert [[r.row for r in b] for b in batches] == [[1, 2, 3, 4, 5]]
    assert journal.rows() == [plan[-1].row]  # only the sent row, with its confirmation
    assert [r.status for r in outcome.results] == [Status.UNCHANGED] * 5 + [Status.OK]


def test_a_failing_batch_journal_aborts_before_anything_is_sent(emu: Emulator) -> None:
    def broken(_rows: list[RowResult]) -> None:
        raise OSError("disk full")

    plan = [PlannedRow(row=1, action=Action.NONE, status=Status.UNCHANGED, contact_id=1),
            update_row(0, "Never")]
    with make_client(emu) as client:
        outcome = run(plan, client, Journal(), journal_many=broken)
    assert isinstance(outcome.aborted, errors.StateStoreError)
    assert emu.stats()["requests"]["PUT"] == 0
    assert outcome.results[1].status is Status.NOT_SENT


def test_not_sent_rows_of_an_aborted_run_are_journalled_in_one_batch(emu: Emulator) -> None:
    plan = [update_row(n, "Leeds", extra_field=999) for n in range(10)]
    journal, batches = Journal(), list[list[RowResult]]()
    with make_client(emu) as client:
        outcome = run(plan, client, journal, concurrency=1, max_failures=Threshold(2),
                      journal_many=batches.append)
    not_sent = [r.row for r in outcome.results if r.status is Status.NOT_SENT]
    assert len(not_sent) >= 5
    assert [[r.row for r in b] for b in batches] == [not_sent]
    assert sorted(journal.rows() + not_sent) == [p.row for p in plan]  # each row once


def test_a_sent_plan_holds_no_result_object_per_row_that_sends_nothing(emu: Emulator) -> None:
    """A million-row sheet with a thousand writes: the rows that send nothing are journalled
    and reported from the plan as they are read, not held as a million RowResults (a real
    sync of 1,048,575 rows peaked at 871 MiB with them). 20,000 not-found rows and 3 writes:
    what the outcome keeps is a few bytes a row (a list slot), and it reads the same."""
    from bsg_sync.differ import plan_changes
    from bsg_sync.models import Account, Field, Known

    n = 20_000
    account = Account((Field(CITY, "City"), Field(NAME, "Name")), ())
    items = [Desired(2 + k, FIRST_ID + k, None, {CITY: f"Moved {k}"}, None) for k in range(3)]
    items += [Desired(5 + i, None, f"4477009{i:05d}", {CITY: "x"}, None) for i in range(n)]
    known = {FIRST_ID + k: Known(Contact(FIRST_ID + k, phone_of(k), {NAME: f"Person {k}"},
                                         frozenset({NEWS, VIP} if k % 2 else {NEWS})))
             for k in range(3)}
    plan = plan_changes(items, known, account=account)
    journalled: list[int] = []
    with make_client(emu) as client:
        client.login()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            outcome = run(plan, client, journal_many=lambda rows: journalled.append(
                sum(1 for _ in rows)))
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert held / n < 40, f"{held / n:.0f} bytes a row"
    assert journalled == [n]
    statuses = [r.status for r in outcome.results]
    assert statuses == [Status.OK] * 3 + [Status.NOT_FOUND] * n
    assert outcome.results[-1] == result_from_plan(plan[-1])
    assert [city_of(emu, k) for k in range(3)] == ["Moved 0", "Moved 1", "Moved 2"]
