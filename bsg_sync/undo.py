"""Undo a run: restore what its writes changed, only where BSG still holds what it wrote.

Each confirmed write of a run is journalled with the contact before it and after it
(`StateStore.run_writes`). Undoing the run plans, per contact, the values the run changed
(fields, phone, lists) back to their pre-image, against BSG's state read at plan time and
again right before each write (the executor's re-plan):

* BSG already holds the pre-image everywhere the run wrote: `unchanged` (a re-run after a kill
  restores nothing twice);
* BSG still holds what the run wrote everywhere: the values are restored;
* anything else (someone changed a value since): `skipped` with `changed-since`, both values
  in `changes`; `force` restores anyway.

A contact the run created is left alone (`skipped`, `created-by-run`). An undo is a run like
any other: journalled with its own pre-images, so it can be undone too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bsg_sync import refresh, report
from bsg_sync.client import BsgClient, RetryPolicy
from bsg_sync.differ import Replanner, check_max_changes
from bsg_sync.errors import ErrorCode, UsageError
from bsg_sync.models import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RPS,
    Action,
    Contact,
    Desired,
    GroupsMode,
    PlannedRow,
    Sheet,
    Status,
    Threshold,
)
from bsg_sync.state import StateStore, Write
from bsg_sync.sync import (
    Hooks,
    RunContext,
    RunPlan,
    SyncOptions,
    SyncOutcome,
    finish_run,
    make_client,
    now_text,
    send_plan,
)

CHANGED_SINCE = ErrorCode.CHANGED_SINCE
CREATED_BY_RUN = ErrorCode.CREATED_BY_RUN
_EMPTY = "(empty)"


@dataclass(frozen=True, slots=True)
class UndoWish:
    """What one run did to one contact: its state before the run's first write to it
    (None: the run created it) and after the last."""

    row: int
    contact_id: int
    before: Contact | None
    after: Contact


def wishes_of(writes: Sequence[Write]) -> list[UndoWish]:
    """One wish per contact the run wrote, at the row of its first write."""
    first: dict[int, Write] = {}
    last: dict[int, Write] = {}
    for w in writes:
        first.setdefault(w.contact_id, w)
        last[w.contact_id] = w
    return [UndoWish(w.row, cid, w.before, last[cid].after) for cid, w in first.items()]


@dataclass(frozen=True, slots=True)
class _Touched:
    """What the run changed on one contact."""

    fields: tuple[int, ...]
    phone: bool
    added: frozenset[int]  # lists the run put the contact in
    removed: frozenset[int]  # lists the run took it out of


def _touched(before: Contact, after: Contact) -> _Touched:
    fids = sorted(set(before.fields) | set(after.fields))
    return _Touched(
        tuple(f for f in fids if before.fields.get(f, "") != after.fields.get(f, "")),
        before.phone != after.phone,
        after.groups - before.groups,
        before.groups - after.groups,
    )


def _mismatches(t: _Touched, now: Contact, want: Contact, names: Mapping[int, str],
                lists: Mapping[int, str]) -> list[tuple[str, str, str]]:
    """(what, `want`'s value, BSG's value) for each touched value where `now` is not `want`."""
    out: list[tuple[str, str, str]] = []
    for fid in t.fields:
        have, wanted = now.fields.get(fid, ""), want.fields.get(fid, "")
        if have != wanted:
            out.append((names.get(fid, f"field {fid}"), wanted or _EMPTY, have or _EMPTY))
    if t.phone and now.phone != want.phone:
        out.append(("phone", want.phone, now.phone))
    for g in sorted(t.added | t.removed):
        if (g in now.groups) != (g in want.groups):
            name = f"list {lists.get(g, g)}"
            out.append((name, _member(g in want.groups), _member(g in now.groups)))
    return out


def _member(inside: bool) -> str:
    return "in it" if inside else "not in it"


@dataclass(frozen=True)
class UndoPlanner:
    """Plans the undo of one run's wishes, at plan time and again at send time (it is the
    executor's `replan`: called with the contact read right before the write)."""

    wishes: Mapping[int, UndoWish]  # by row
    replanner: Replanner  # names fields and lists; builds the target and its changes
    run_id: int
    force: bool = False
    delete_created: bool = False

    @classmethod
    def of(cls, writes: Sequence[Write], replanner: Replanner, run_id: int, *,
           force: bool = False, delete_created: bool = False) -> UndoPlanner:
        return cls({w.row: w for w in wishes_of(writes)}, replanner, run_id, force,
                   delete_created)

    def plan(self, now: Mapping[int, Contact]) -> list[PlannedRow]:
        """The undo plan against BSG's state `now` (by contact id), in row order."""
        return [self.plan_one(w, now.get(w.contact_id)) for w in self.wishes.values()]

    def __call__(self, p: PlannedRow, fresh: Contact) -> PlannedRow:
        return self.plan_one(self.wishes[p.row], fresh)

    def plan_one(self, w: UndoWish, now: Contact | None) -> PlannedRow:
        if now is None:
            return PlannedRow(w.row, Action.SKIP, Status.NOT_FOUND, w.contact_id, w.after.phone,
                              error_code=ErrorCode.NOT_FOUND,
                              error=f"Contact {w.contact_id} no longer exists in BSG.")
        names, lists = self.replanner.names.fields, self.replanner.names.groups
        if w.before is None:
            return self._created(w, now, names, lists)
        t = _touched(w.before, w.after)
        left = {what for what, _, _ in _mismatches(t, now, w.before, names, lists)}
        if not left:
            return PlannedRow(w.row, Action.NONE, Status.UNCHANGED, w.contact_id, now.phone,
                              error=f"Already as before run {self.run_id}.",
                              hlr_status=now.hlr_status, hlr_last_check=now.hlr_last_check)
        # a value already back as before is not "changed since": an undo killed between a
        # row's PUT and its list call left it half done, and a re-run finishes it
        since = [m for m in _mismatches(t, now, w.after, names, lists) if m[0] in left]
        if since and not self.force:
            return self._left(w, now, CHANGED_SINCE,
                              f"Changed in BSG since run {self.run_id}; left as it is "
                              "(--force restores it anyway).", self._since_text(since))
        return self._restore(w, t, now)

    def _created(self, w: UndoWish, now: Contact, names: Mapping[int, str],
                 lists: Mapping[int, str]) -> PlannedRow:
        """A contact the run created: deleted only when asked, and only as the run left it."""
        if not self.delete_created:
            return self._left(w, now, CREATED_BY_RUN, f"Run {self.run_id} created this "
                              "contact; undo leaves it (--delete-created deletes it).")
        everything = _Touched(tuple(sorted(set(w.after.fields) | set(now.fields))), True,
                              w.after.groups | now.groups, frozenset())
        since = _mismatches(everything, now, w.after, names, lists)
        if since and not self.force:
            return self._left(w, now, CHANGED_SINCE, f"Changed in BSG since run {self.run_id} "
                              "created it; not deleted (--force deletes it anyway).",
                              self._since_text(since))
        return PlannedRow(w.row, Action.DELETE, Status.PLANNED, w.contact_id, now.phone,
                          changes=f"delete the contact run {self.run_id} created",
                          target=now, hlr_status=now.hlr_status,
                          hlr_last_check=now.hlr_last_check)

    def _since_text(self, since: Sequence[tuple[str, str, str]]) -> str:
        """`changes` of a row left alone: each value as the run wrote it and as BSG holds it."""
        return "; ".join(f"{what}: run {self.run_id} wrote {wrote}, BSG now holds {holds}"
                         for what, wrote, holds in since)

    def _left(self, w: UndoWish, now: Contact, code: str, error: str,
              changes: str = "") -> PlannedRow:
        return PlannedRow(w.row, Action.SKIP, Status.SKIPPED, w.contact_id, now.phone,
                          changes=changes, error_code=code, error=error,
                          hlr_status=now.hlr_status, hlr_last_check=now.hlr_last_check)

    def _restore(self, w: UndoWish, t: _Touched, now: Contact) -> PlannedRow:
        assert w.before is not None
        groups = None
        if t.added or t.removed:
            groups = (now.groups - t.added) | t.removed
        d = Desired(w.row, w.contact_id, w.before.phone if t.phone else None,
                    {fid: w.before.fields.get(fid, "") for fid in t.fields}, groups,
                    GroupsMode.EXACT)
        ask = PlannedRow(w.row, Action.UPDATE, Status.PLANNED, w.contact_id, desired=d)
        return self.replanner(ask, now)


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class UndoOptions:
    """Everything `bsg-sync undo RUN` was asked to do (no secrets)."""

    run_id: int
    state: Path
    api_url: str
    report: Path | None = None
    dry_run: bool = False
    force: bool = False
    delete_created: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    max_rps: float | None = DEFAULT_MAX_RPS
    max_failures: Threshold | None = None
    max_changes: Threshold | None = None
    allow_insecure_http: bool = False
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def as_sync_options(self) -> SyncOptions:
        name = Path(f"undo of run {self.run_id}")
        return SyncOptions(
            sheet=name, state=self.state, api_url=self.api_url, report=self.report,
            dry_run=self.dry_run, concurrency=self.concurrency, max_rps=self.max_rps,
            max_failures=self.max_failures, max_changes=self.max_changes,
            allow_insecure_http=self.allow_insecure_http, policy=self.policy)


def default_undo_report(run_id: int, cwd: Path) -> Path:
    return cwd / f"undo-run-{run_id}.report.xlsx"


def run_undo(opts: UndoOptions, api_key: str | None, hooks: Hooks | None = None,
             ) -> SyncOutcome:
    """Undo one run end to end (or plan it, with dry_run); like run_sync, whole-run failures
    before sending raise BsgSyncError and failures while sending come back in `aborted`."""
    return _run_undo(opts, api_key, hooks or Hooks())


def _run_undo(opts: UndoOptions, api_key: str | None, hooks: Hooks) -> SyncOutcome:
    started, t0 = now_text(), time.monotonic()
    sopts = opts.as_sync_options()
    report_path = opts.report or default_undo_report(opts.run_id, Path.cwd())
    report.check_output_path(report_path, sopts.sheet, "--report", report.REPORT_FORMATS)
    client = make_client(sopts, api_key)
    try:
        with StateStore(opts.state) as store:
            store.acquire_lock()
            try:
                return _undo_locked(opts, sopts, hooks, client, store, report_path, started, t0)
            finally:
                store.release_lock()
    finally:
        client.close()


def _undo_locked(opts: UndoOptions, sopts: SyncOptions, hooks: Hooks, client: BsgClient,
                 store: StateStore, report_path: Path, started: str, t0: float) -> SyncOutcome:
    info = store.run(opts.run_id)
    if info is None:
        raise UsageError(f"there is no run {opts.run_id} in the state store {opts.state}; "
                         "`bsg-sync runs` lists them")
    if info.dry_run:
        raise UsageError(f"run {opts.run_id} was a dry run: it changed nothing, so there is "
                         "nothing to undo")
    account = refresh.load_account(client)
    store.save_account(account)
    planner = UndoPlanner.of(store.run_writes(opts.run_id), Replanner.of(account, {}),
                             opts.run_id, force=opts.force,
                             delete_created=opts.delete_created)
    hooks.on_stage(f"reading the {len(planner.wishes)} contacts run {opts.run_id} wrote")
    asks = [Desired(w.row, w.contact_id, None, {}, None) for w in planner.wishes.values()]
    _rows, known = refresh.refresh_known(client, store, asks)
    plan = planner.plan({cid: k.seen for cid, k in known.items()})
    check_max_changes(plan, opts.max_changes)
    sheet = Sheet(sopts.sheet, (), [], info.sha256)
    run = RunContext(sopts, hooks, client, store, sheet, Path(info.sheet), report_path,
                     started, t0)
    run.run_id = store.begin_run(sheet=f"undo of run {opts.run_id}", sheet_sha256=info.sha256,
                                 mapping="", options={**sopts.described(),
                                                      "undo of run": str(opts.run_id),
                                                      "force": str(opts.force),
                                                      "delete created": str(opts.delete_created)})
    sent, aborted = send_plan(run, RunPlan(plan, planner, []))
    return finish_run(run, sorted(sent, key=lambda r: r.row), [], aborted)
