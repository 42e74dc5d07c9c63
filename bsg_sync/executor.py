"""Runs a plan against BSG: worker pool, rate cap, verification, journal; prints nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple

from bsg_sync import errors
from bsg_sync.client import CallResult
from bsg_sync.differ import Replanner
from bsg_sync.errors import (
    ApiCallError,
    AuthFailed,
    Cancelled,
    ErrorCode,
    ModeForbidden,
    NotFound,
    ValidationFailed,
)
from bsg_sync.models import (
    Action,
    Contact,
    MadeWhenRead,
    PlannedRow,
    PlanResults,
    RowResult,
    Status,
    Threshold,
    result_from_plan,
    row_numbers,
)
from bsg_sync.ratelimit import RateLimiter

if TYPE_CHECKING:
    from bsg_sync.client import BsgClient

log = logging.getLogger(__name__)

# (result, the contact as BSG confirmed it after the write, the contact before the write)
Journal = Callable[[RowResult, Contact | None, Contact | None], None]
Pace = Callable[[], None]
# plans a row again against the contact read right before its write (differ.Replanner, undo)
Replan = Callable[[PlannedRow, Contact], PlannedRow]

NOT_APPLIED = ErrorCode.NOT_APPLIED
NOT_SENT = ErrorCode.NOT_SENT
INTERNAL = ErrorCode.INTERNAL_ERROR
PARKED_PER_SLOT = 3  # spare workers a slot to start with; more start as rows park
MAX_WORKERS = 256
ALREADY_SO = ("BSG already held these values when the row was about to be sent (changed in BSG "
              "during the run); nothing sent.")
UNCONFIRMED = "Not confirmed: BSG had not answered when the run stopped; sync again to make sure"


def _no_pace() -> None:
    return None


# --------------------------------------------------------------------------- verification


def find_difference(p: PlannedRow, got: Contact) -> str | None:
    """The first thing the write should have set that BSG does not hold, as a phrase.

    Only what the row owns is checked (its mapped fields, the phone, the target's lists and,
    for `groups = exact`, the lists it leaves): other fields may change in BSG meanwhile."""
    target = p.target
    if target is None:
        return "nothing was planned"
    if target.id and got.id != target.id:
        return f"BSG answered about contact {got.id}, not contact {target.id}"
    if got.phone != target.phone:
        return f"phone is {got.phone}, expected {target.phone}"
    owned = p.desired.fields.keys() if p.desired is not None else target.fields.keys()
    for fid in sorted(owned):
        want, have = target.fields.get(fid, ""), got.fields.get(fid, "")
        if have != want:
            return f"field {fid} is {have!r}, expected {want!r}"
    missing = sorted(target.groups - got.groups)
    if missing:
        return f"not in list {missing[0]}"
    still = sorted(got.groups & p.detach)
    if still:
        return f"still in list {still[0]}"
    return None


# --------------------------------------------------------------------------- one row


class Sent(NamedTuple):
    """One row's outcome; a confirmed write also carries the contact before it (its
    pre-image, None for a contact the row created)."""

    result: RowResult
    confirmed: Contact | None = None
    before: Contact | None = None



def _ok_or_not_applied(p: PlannedRow, call: CallResult, before: Contact | None) -> Sent:
    """The row's result from the contact its write left (`call`: every attempt it took)."""
    contact = call.contact
    diff = find_difference(p, contact)
    sent = replace(result_from_plan(p), attempts=call.attempts, http_status=call.http_status)
    if diff is not None:  # the answer's phone and HLR may be another contact's: keep ours
        sentence = f"BSG answered but did not apply the change: {diff}."
        failed = replace(sent, status=Status.FAILED, error_code=NOT_APPLIED, error=sentence)
        return Sent(failed)  # nothing journalled as written: the answer is not ours
    ok = replace(sent, status=Status.OK, contact_id=contact.id, phone=contact.phone,
                 hlr_status=contact.hlr_status, hlr_last_check=contact.hlr_last_check)
    return Sent(ok, contact, before)


def _settled(p: PlannedRow, attempts: int, http: int | None) -> Sent:
    """The fresh read made the write unnecessary: the re-planned row is the result."""
    result = replace(result_from_plan(p), attempts=attempts, http_status=http)
    if p.status is Status.UNCHANGED and not p.error:
        result = replace(result, error=ALREADY_SO)
    return Sent(result)


def _send_update(p: PlannedRow, client: BsgClient, pace: Pace, replan: Replan,
                 attempts: int = 0) -> Sent:
    """Read the contact again, re-plan the row against it, then write what is still needed."""
    if p.contact_id is None:
        raise ValueError(f"row {p.row}: an update without a contact id")
    read = client.read_contact(p.contact_id)
    if read is None:
        gone = p._replace(action=Action.SKIP, status=Status.NOT_FOUND, changes="",
                          error_code=ErrorCode.NOT_FOUND,
                          error=f"Contact {p.contact_id} was deleted in BSG before the write.")
        return _settled(gone, attempts + 1, 404)
    attempts += read.attempts
    fresh = read.contact
    again = replan(p, fresh)
    if again.status is not Status.PLANNED:  # unchanged by now, or (undo) left alone
        return _settled(again, attempts, read.http_status)
    pace()
    if again.action is Action.DELETE:
        calls, status = client.delete_contact(fresh.id)
        return Sent(replace(result_from_plan(again), status=Status.OK,
                            attempts=attempts + calls, http_status=status))
    return _write(again, client, pace, fresh, attempts)


def _write(p: PlannedRow, client: BsgClient, pace: Pace, fresh: Contact, attempts: int) -> Sent:
    assert p.target is not None
    call = client.update_contact(p.target, fresh)
    attempts += call.attempts
    contact = call.contact
    if contact.id == p.target.id:
        contact, attempts = _attach_left_out(client, pace, call, attempts)
    if contact.id == p.target.id and p.detach:
        pace()
        attempts += _membership(client.detach, contact.id, p.detach)
        contact = replace(contact, groups=contact.groups - p.detach)
    return _ok_or_not_applied(p, CallResult(contact, attempts, call.http_status), fresh)


def _attach_left_out(client: BsgClient, pace: Pace, call: CallResult,
                     attempts: int) -> tuple[Contact, int]:
    """Attach the lists a write could not carry (over BSG's 100-list cap)."""
    left, contact = call.groups_left_out, call.contact
    if not left:
        return contact, attempts
    pace()
    attempts += _membership(client.attach, contact.id, left)
    return replace(contact, groups=contact.groups | left), attempts


def _membership(call: Callable[[list[int], list[int]], int], contact_id: int,
                groups: frozenset[int]) -> int:
    """Attach or detach one contact; the client returns how many calls it made."""
    return max(1, int(call([contact_id], sorted(groups))))


def _create(p: PlannedRow, client: BsgClient, pace: Pace, replan: Replan) -> Sent:
    assert p.target is not None
    try:
        call = client.create_contact(p.target)
    except ValidationFailed as exc:
        if "already exist" not in exc.message.lower():
            raise
        # Another writer created this phone since the refresh: update that contact instead.
        pace()
        found = client.find_by_phone(p.phone or p.target.phone)
        if found is None:
            raise
        pace()
        as_update = p._replace(action=Action.UPDATE, contact_id=found.id,
                               target=replace(p.target, id=found.id))
        sent = _send_update(as_update, client, pace, replan, attempts=exc.attempts + 1)
        return sent
    contact, attempts = _attach_left_out(client, pace, call, call.attempts)
    return _ok_or_not_applied(p, CallResult(contact, attempts, call.http_status), None)


def _failure_sentence(exc: ApiCallError) -> str:
    if isinstance(exc, ModeForbidden):
        return (
            "BSG refused the write in test mode, which only accepts numbers verified in the "
            f"BSG account (BSG said: {exc.message})."
        )
    if isinstance(exc, NotFound):
        return f"The contact no longer exists in BSG (BSG said: {exc.message})."
    if isinstance(exc, AuthFailed):
        return exc.message  # the client's sentence already says what to check
    if isinstance(exc, ValidationFailed):
        return f"BSG refused the update: {exc.message}"
    return f"BSG did not accept the update after {exc.attempts} attempts: {exc.message}"


def _failed(p: PlannedRow, exc: ApiCallError) -> RowResult:
    return replace(
        result_from_plan(p),
        status=Status.FAILED,
        error_code=exc.code,
        error=_failure_sentence(exc),
        attempts=exc.attempts,
        http_status=exc.status,
    )


def send_row(
    p: PlannedRow, client: BsgClient, pace: Pace = _no_pace, replan: Replan | None = None
) -> Sent:
    """Send one PLANNED row and verify the answer; AuthFailed propagates (it ends the run).

    An update first reads the contact again and re-plans the row against it (`replan`, which
    names fields and lists; a bare one names them by id), so the body carries BSG's state of
    right now plus the sheet's values. `pace` is called before every request after the row's
    first (the rate cap)."""
    replan = replan or Replanner.bare()
    try:
        if p.action is Action.CREATE:
            sent = _create(p, client, pace, replan)
        else:
            sent = _send_update(p, client, pace, replan)
    except AuthFailed:
        raise
    except Cancelled:  # stopped while waiting to retry: an earlier attempt may have landed
        return Sent(_not_sent(p, UNCONFIRMED))
    except ApiCallError as exc:
        return Sent(_failed(p, exc))
    return sent


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class ExecutionOutcome:
    results: Sequence[RowResult]
    aborted: errors.BsgSyncError | None


def _guarded(write: Callable[[], None]) -> errors.BsgSyncError | None:
    """Run a journal write; a failure becomes the run's abort reason."""
    try:
        write()
    except errors.BsgSyncError as exc:
        return exc
    except Exception as exc:  # the store failed in a way it did not classify
        return errors.StateStoreError(f"cannot record the row result: {exc}")
    return None


class Slots:
    """`n` slots of concurrency, held by a worker for its row; a row waiting between attempts
    (back-off, Retry-After, the duplicate window) gives its slot up until the wait ends, so
    it is parked and another worker takes the next row (the client calls `released`).

    A row back from its wait gets the next free slot before any new row starts: it is
    already begun, and making it queue behind the spare workers would stretch every retry
    chain by however long they take (the tail of a run under faults)."""

    def __init__(self, n: int) -> None:
        self._n = max(1, n)
        self._busy = 0
        self._new = 0  # workers waiting for a slot to start a row
        self._back = 0  # rows back from a wait, waiting for a slot to go on
        self._lock = threading.Lock()
        self._start = threading.Condition(self._lock)  # new rows wait here
        self._go_on = threading.Condition(self._lock)  # rows back from a wait wait here
        self._mine = threading.local()

    def mine(self) -> bool:
        """True in a worker that holds a slot right now."""
        return bool(getattr(self._mine, "held", False))

    def waiting(self) -> tuple[int, int]:
        """(workers waiting to start a row, rows waiting to go on after their wait)."""
        with self._lock:
            return self._new, self._back

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            self._new += 1
            while self._busy >= self._n or self._back:
                self._start.wait()
            self._new -= 1
            self._busy += 1
        self._mine.held = True
        try:
            yield
        finally:
            self._mine.held = False
            self._give_up()

    @contextmanager
    def released(self) -> Iterator[None]:
        if not getattr(self._mine, "held", False):  # not a worker (refresh, login): no slot
            yield
            return
        self._mine.held = False
        self._give_up()
        try:
            yield
        finally:
            self._take_back()
            self._mine.held = True

    def _give_up(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._back:  # a row back from its wait goes first
                self._go_on.notify()
            else:
                self._start.notify()

    def _take_back(self) -> None:
        with self._lock:
            self._back += 1
            while self._busy >= self._n:
                self._go_on.wait()
            self._back -= 1
            self._busy += 1
            if not self._back:  # new rows may start again in whatever slots are free
                self._start.notify(self._n - self._busy)


class _Run:
    """Shared state of one execute_plan call; workers pull row indexes from a queue."""

    def __init__(
        self,
        plan: Sequence[PlannedRow],
        client: BsgClient,
        journal: Journal,
        on_result: Callable[[RowResult], None] | None,
        max_failures: Threshold | None,
        stop: threading.Event | None,
        replan: Replan,
    ) -> None:
        self.plan = plan
        self.replan = replan
        self.client = client
        self.journal = journal
        self.on_result = on_result
        self.max_failures = max_failures
        self.stop = stop
        self.results: list[RowResult | None] = [None] * len(plan)
        self.queue_all = [i for i, p in enumerate(plan) if p.status is Status.PLANNED]
        self.queue = deque(self.queue_all)
        self.planned = len(self.queue)
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.aborted: errors.BsgSyncError | None = None
        self.failures = 0
        self.closed = False
        self.inflight: set[int] = set()
        self.limiter: RateLimiter | None = None
        self.journal_many: Callable[[Iterable[RowResult]], None] | None = None
        self.slots = Slots(1)
        self.workers: list[threading.Thread] = []

    # ---- shared state
    def halted(self) -> bool:
        if self.stop is not None and self.stop.is_set():
            self.halt.set()
        return self.halt.is_set()

    def abort(self, err: errors.BsgSyncError) -> None:
        with self.lock:
            if self.aborted is None:
                self.aborted = err
                log.warning("aborting the run: %s", err)
        self.halt.set()

    def next_index(self) -> int | None:
        with self.lock:
            if self.halted() or not self.queue:
                return None
            index = self.queue.popleft()
            self.inflight.add(index)
            return index

    def deliver(self, index: int, result: RowResult, confirmed: Contact | None = None,
                before: Contact | None = None) -> None:
        """Journal one result (before the worker takes its next row), then report progress."""
        with self.lock:
            if self.closed:
                return
            self.results[index] = result
            self.inflight.discard(index)
            journal_error = _guarded(lambda: self.journal(result, confirmed, before))
        if journal_error is not None:
            self.abort(journal_error)
            return
        if self.on_result is not None:
            self.on_result(result)
        if result.status is Status.FAILED:
            self.count_failure()

    def deliver_unsent(self, rows: _Unsent) -> None:
        """Journal rows that send nothing in one transaction (a million-row sheet is mostly
        unchanged rows; one commit each would cost more than the diff). With `journal_many`
        their results are not kept: `_finish` makes them again from the plan when read."""
        if self.journal_many is None:
            for index, result in rows.indexed():
                self.deliver(index, result, None)
            return
        many = self.journal_many
        with self.lock:
            journal_error = _guarded(lambda: many(rows))
        if journal_error is not None:
            self.abort(journal_error)
            return
        if self.on_result is not None:
            for result in rows:
                self.on_result(result)

    def count_failure(self) -> None:
        with self.lock:
            self.failures += 1
            failures = self.failures
        limit = self.max_failures
        if limit is not None and limit.exceeded(failures, self.planned):
            self.abort(
                errors.TooManyFailures(
                    f"{failures} of {self.planned} rows failed, more than --max-failures "
                    f"{limit} allows; the rest was not sent"
                )
            )

    # ---- workers
    def start_worker(self) -> None:
        with self.lock:  # started under the lock: whoever lists the workers may join them all
            if len(self.workers) >= MAX_WORKERS:
                return
            worker = threading.Thread(target=self.work, name=f"bsg-send-{len(self.workers)}",
                                      daemon=True)
            worker.start()
            self.workers.append(worker)

    @contextmanager
    def parked(self) -> Iterator[None]:
        """Around a row's wait between attempts (the client's `parked` hook): its slot goes to
        a worker waiting for one, and when none is, to a new worker, so any number of rows
        may wait at once while the others go on."""
        if self.slots.mine() and self.slots.waiting()[0] == 0 and self.queue \
                and not self.halted():
            self.start_worker()
        with self.slots.released():
            yield

    def work(self) -> None:
        while True:
            with self.slots.held():  # one of `concurrency` slots while the row is worked on
                index = self.next_index()
                if index is None:
                    return
                if self.limiter is not None and not self.limiter.acquire():
                    self.give_back(index)
                    return
                self.send(index)

    def give_back(self, index: int) -> None:
        with self.lock:
            self.inflight.discard(index)
            self.queue.appendleft(index)

    def send(self, index: int) -> None:
        p = self.plan[index]
        try:
            pace = self.limiter.pace if self.limiter is not None else _no_pace
            result, confirmed, before = send_row(p, self.client, pace, self.replan)
        except AuthFailed as exc:
            self.deliver(index, _failed(p, exc), None)
            self.abort(exc)
            return
        except Exception as exc:  # a bug must not kill the worker silently
            log.exception("row %s: unexpected error while sending", p.row)
            result = replace(
                result_from_plan(p),
                status=Status.FAILED,
                error_code=INTERNAL,
                error=f"Unexpected error while sending this row: {exc}",
            )
            confirmed = before = None
        self.deliver(index, result, confirmed, before)


def _not_sent(p: PlannedRow, reason: str) -> RowResult:
    return replace(result_from_plan(p), status=Status.NOT_SENT, error_code=NOT_SENT, error=reason)


def _pass_through(run: _Run) -> None:
    if run.planned < len(run.plan) and not run.halt.is_set():
        run.deliver_unsent(_Unsent(run.plan, len(run.plan) - run.planned))


class _Unsent(Iterable[RowResult]):
    """The results of the plan's rows that send nothing (unchanged, invalid, not found), in
    plan order, each made when read (a million of them are never held at once); it can be
    read more than once."""

    def __init__(self, plan: Sequence[PlannedRow], count: int) -> None:
        self._plan, self._count = plan, count

    def __len__(self) -> int:
        return self._count

    def indexed(self) -> Iterator[tuple[int, RowResult]]:
        planned = Status.PLANNED
        return ((i, r) for i, r in enumerate(PlanResults(self._plan)) if r.status is not planned)

    def __iter__(self) -> Iterator[RowResult]:
        return (r for _, r in self.indexed())


class _Results(MadeWhenRead[RowResult]):
    """Every row's result in plan order: the rows sent (or not sent) as the run ended, and
    the others made from the plan when read."""

    __slots__ = ("_plan", "_sent")
    _item = "result"

    def __init__(self, plan: Sequence[PlannedRow], sent: list[RowResult | None]) -> None:
        self._plan, self._sent = plan, sent

    def __len__(self) -> int:
        return len(self._plan)

    def _at(self, i: int) -> RowResult:
        r = self._sent[i]
        return r if r is not None else result_from_plan(self._plan[i])

    def __iter__(self) -> Iterator[RowResult]:
        return (r if s is None else s
                for r, s in zip(PlanResults(self._plan), self._sent, strict=True))

    def row_numbers(self) -> Sequence[int]:
        return row_numbers(self._plan)


def _wait_for_workers(run: _Run, drain_timeout: float) -> None:
    """Until every worker is done (workers may start meanwhile), or a stop plus the drain."""
    while not run.halted():
        with run.lock:
            alive = [t for t in run.workers if t.is_alive()]
        if not alive:
            break
        alive[0].join(0.05)  # short, so a stop request is noticed quickly
    deadline = time.monotonic() + drain_timeout
    with run.lock:
        threads = list(run.workers)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    with run.lock:
        run.closed = True  # a request still hanging past the drain may not journal any more


def _finish(run: _Run) -> ExecutionOutcome:
    aborted = run.aborted
    if aborted is None and run.halt.is_set():
        aborted = errors.Interrupted("interrupted")
    if aborted is None:
        reason = "Not sent: the run ended before this row was sent"
    elif isinstance(aborted, errors.Interrupted):
        reason = "Not sent: the run was interrupted (Ctrl-C or a stop signal)"
    else:
        reason = f"Not sent: the run was aborted ({aborted})"
    unsent: list[RowResult] = []
    for i in run.queue_all:
        if run.results[i] is None:
            r = _not_sent(run.plan[i], UNCONFIRMED if i in run.inflight else reason)
            run.results[i] = r
            unsent.append(r)
    results = _Results(run.plan, run.results)
    if unsent and not isinstance(aborted, errors.StateStoreError):
        _journal_quietly(run, unsent)
    if run.on_result is not None:
        for r in unsent:
            run.on_result(r)
    return ExecutionOutcome(results=results, aborted=aborted)


def _journal_quietly(run: _Run, unsent: list[RowResult]) -> None:
    """Record the not-sent rows; the run already failed, so a store error is only logged."""
    try:
        if run.journal_many is not None:
            run.journal_many(unsent)
        else:
            for r in unsent:
                run.journal(r, None, None)
    except Exception:
        log.exception("cannot record %d not-sent results", len(unsent))


def execute_plan(
    plan: Sequence[PlannedRow],
    client: BsgClient,
    *,
    journal: Journal,
    concurrency: int = 8,
    max_rps: float | None = 10.0,
    max_failures: Threshold | None = None,
    stop: threading.Event | None = None,
    on_result: Callable[[RowResult], None] | None = None,
    drain_timeout: float = 30.0,
    journal_many: Callable[[Iterable[RowResult]], None] | None = None,
    replan: Replan | None = None,
) -> ExecutionOutcome:
    """Send every PLANNED row (others pass through); results come back in plan order.

    `journal` records each sent row as it is confirmed; `journal_many`, when given, records
    the rows that send nothing (unchanged, invalid, not found) in one go. Each update reads
    its contact again right before the write and is re-planned by `replan` (see send_row)."""
    run = _Run(plan, client, journal, on_result, max_failures, stop, replan or Replanner.bare())
    run.journal_many = journal_many
    # A client built with its own pace already caps every request it sends (retries and
    # re-logins included); a second limiter here would halve the rate.
    if max_rps is not None and not client.paced:
        run.limiter = RateLimiter(max_rps, cancel=run.halt)
    _pass_through(run)
    run.slots = Slots(concurrency)
    # more workers than slots: the extra ones carry rows while others are parked in a wait
    count = max(1, min(run.planned, concurrency * (1 + PARKED_PER_SLOT), MAX_WORKERS))
    parked_before = client.parked
    client.parked = run.parked
    try:
        for _ in range(count):
            run.start_worker()
        _wait_for_workers(run, drain_timeout)
    finally:
        client.parked = parked_before
    return _finish(run)
