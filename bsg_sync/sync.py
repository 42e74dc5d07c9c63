"""The sync pipeline: read, map, refresh known state, plan, send, journal and report."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bsg_sync import mapping as mapping_mod
from bsg_sync import refresh, report
from bsg_sync.client import NO_KEY, BsgClient, RetryPolicy, open_client
from bsg_sync.differ import Replanner, check_max_changes, plan_changes
from bsg_sync.errors import (
    BsgSyncError,
    Cancelled,
    ConfigError,
    ErrorCode,
    ExitCode,
    Interrupted,
    OutputError,
    StateStoreError,
    UsageError,
)
from bsg_sync.executor import Replan, execute_plan
from bsg_sync.isolate import read_sheet_isolated
from bsg_sync.models import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RPS,
    Account,
    Contact,
    Desired,
    PlannedRow,
    PlanResults,
    RowResult,
    RowResults,
    Sheet,
    Status,
    Threshold,
)
from bsg_sync.scrub import scrub
from bsg_sync.state import StateStore
from bsg_sync.verify import Verified, attach_verified, skip_unreachable

log = logging.getLogger(__name__)

# skipped: an undo left a row alone (changed since); someone should look
FAILING_STATUSES = frozenset({Status.INVALID, Status.NOT_FOUND, Status.FAILED, Status.SKIPPED})
# After a stop, requests already on the wire may finish for this long (the executor's
# drain_timeout); before sending there is nothing worth waiting for.
SEND_DRAIN_SECONDS = 30.0
NOT_SENT_INTERRUPTED = "Not sent: the run was interrupted (Ctrl-C or a stop signal)"


@dataclass(frozen=True)
class SyncOptions:
    """Everything `bsg-sync sync` was asked to do (no secrets)."""

    sheet: Path
    state: Path
    api_url: str
    mapping: Path | None = None
    sheet_name: str | None = None
    encoding: str | None = None
    report: Path | None = None
    errors: Path | None = None
    dry_run: bool = False
    create_missing: bool = False
    offline: bool = False
    keep_drift: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    max_rps: float | None = DEFAULT_MAX_RPS
    max_failures: Threshold | None = None
    max_changes: Threshold | None = None
    allow_insecure_http: bool = False
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # --verify --skip-unreachable: phones the HLR check found dead; their rows are not written
    unreachable: frozenset[str] = frozenset()
    # --verify: this run's HLR checks by phone, shown in the report's verify_* columns
    verified: Mapping[str, Verified] = field(default_factory=dict)
    # limits of the child process that reads the sheet (None: isolate's defaults / env)
    read_memory_limit: int | None = None
    read_time_limit: float | None = None

    def described(self, tab: str | None = None) -> dict[str, str]:
        """The options as shown in the report's summary sheet; `tab`: the workbook tab read
        (a CSV has none, and then no "sheet tab" row)."""
        tab = self.sheet_name or tab
        return {
            "mapping": str(self.mapping or ""),
            **({"sheet tab": tab} if tab else {}),
            "api url": self.api_url,
            "dry run": str(self.dry_run),
            "create missing": str(self.create_missing),
            "offline": str(self.offline),
            "keep drift": str(self.keep_drift),
            "concurrency": str(self.concurrency),
            "max rps": "none" if self.max_rps is None else f"{self.max_rps:g}",
            "max failures": str(self.max_failures or "none"),
            "max changes": str(self.max_changes or "none"),
        }


@dataclass(frozen=True)
class SyncOutcome:
    """What a finished (or aborted) run produced."""

    summary: report.RunSummary
    results: Sequence[RowResult]  # in row order; RowResults, made as read, after a sync
    warnings: list[str]
    aborted: BsgSyncError | None
    verified: Mapping[str, Verified] = field(default_factory=dict)  # the rows' HLR checks
    # exit_code_of(results, aborted), when the run worked it out already (a pass less over
    # a million results made as they are read)
    known_exit: ExitCode | None = field(default=None, repr=False, compare=False)

    @property
    def exit_code(self) -> ExitCode:
        if self.known_exit is not None:
            return self.known_exit
        return exit_code_of(self.results, self.aborted)


def exit_code_of(results: Sequence[RowResult], aborted: BsgSyncError | None) -> ExitCode:
    """The run's exit code: the abort's, else 1 when a row needs fixing, else 0."""
    if aborted is not None:
        return aborted.exit_code
    if any(r.status in FAILING_STATUSES for r in results):
        return ExitCode.ROWS_FAILED
    return ExitCode.OK


def _no_result(_r: RowResult) -> None:
    """Hooks.on_result when nobody listens (the journal then skips a pass over the rows)."""


@dataclass
class Hooks:
    """Callbacks the CLI (or the web page) passes in; the library never prints."""

    on_warning: Callable[[str], None] = lambda _msg: None
    on_stage: Callable[[str], None] = lambda _msg: None
    on_plan: Callable[[int], None] = lambda _n: None  # number of rows to send
    on_result: Callable[[RowResult], None] = _no_result
    stop: threading.Event = field(default_factory=threading.Event)


def default_report_path(sheet: Path) -> Path:
    return sheet.with_name(f"{sheet.stem}.report.xlsx")


def resolve_mapping_path(opts: SyncOptions) -> Path:
    if opts.mapping is not None:
        if not opts.mapping.is_file():
            raise ConfigError(f"mapping file {opts.mapping} does not exist")
        return opts.mapping
    found = mapping_mod.find_mapping_file(opts.sheet, Path.cwd())
    if found is None:
        raise ConfigError(
            f"no mapping file for {opts.sheet.name}: write one with "
            f"`bsg-sync init {opts.sheet}` or pass --mapping PATH"
        )
    return found


def make_client(
    opts: SyncOptions, api_key: str | None, stop: threading.Event | None = None
) -> BsgClient:
    """The run's client (open_client with the run's options)."""
    return open_client(opts.api_url, api_key, policy=opts.policy, concurrency=opts.concurrency,
                       max_rps=opts.max_rps, allow_insecure_http=opts.allow_insecure_http,
                       stop=stop, no_key=f"{NO_KEY} (or plan from the snapshot with --offline "
                       "--dry-run)")


def run_sync(opts: SyncOptions, api_key: str | None, hooks: Hooks | None = None) -> SyncOutcome:
    """Run one sync (or dry run) end to end. Raises BsgSyncError for whole-run failures
    that happen before anything is sent (a failed API call is one: ApiCallError); failures
    while sending come back in `aborted`."""
    return _run_sync(opts, api_key, hooks or Hooks())


@dataclass
class RunContext:
    """What the stages of one locked run share (a sync's, or an undo's: it reuses
    send_plan and finish_run)."""

    opts: SyncOptions
    hooks: Hooks
    client: BsgClient | None
    store: StateStore
    sheet: Sheet
    mapping_path: Path
    report_path: Path
    started: str
    t0: float = field(default_factory=time.monotonic)
    run_id: int = 0


def _run_sync(opts: SyncOptions, api_key: str | None, hooks: Hooks) -> SyncOutcome:
    started, t0 = now_text(), time.monotonic()
    mapping_path = resolve_mapping_path(opts)
    raw = mapping_mod.load_mapping(mapping_path)
    hooks.on_stage(f"reading {opts.sheet.name}")
    sheet = read_sheet_isolated(
        opts.sheet,
        sheet=opts.sheet_name,
        encoding=opts.encoding,
        header_row=header_row_of(raw, mapping_path),
        memory_limit=opts.read_memory_limit,
        time_limit=opts.read_time_limit,
    )
    report_path = opts.report or default_report_path(opts.sheet)
    # the writers check again; checking here means a bad path is found before anything is sent
    report.check_output_path(report_path, opts.sheet, "--report", report.REPORT_FORMATS)
    report.probe_output(report_path, "--report")
    report.remove_stale_temps(report_path)
    if opts.errors is not None:
        report.check_output_path(opts.errors, opts.sheet, "--errors", report.ERRORS_FORMATS)
        report.probe_output(opts.errors, "--errors")
        report.remove_stale_temps(opts.errors)
    # --offline plans from the snapshot without GETs; only a real send needs the API.
    client = None if (opts.offline and opts.dry_run) else make_client(opts, api_key, hooks.stop)
    try:
        with StateStore(opts.state) as store:
            store.acquire_lock()
            store.close_interrupted_runs()
            try:
                run = RunContext(
                    opts, hooks, client, store, sheet, mapping_path, report_path, started, t0
                )
                return _run_locked(run, raw)
            finally:
                store.release_lock()
    finally:
        if client is not None:
            client.close()


def _run_locked(run: RunContext, raw: mapping_mod.RawMapping) -> SyncOutcome:
    mapped: mapping_mod.MappedRows | None = None
    warnings: list[str] = []
    try:
        account = current_account(None if run.opts.offline else run.client, run.store)
        mapped, warnings = _map(run, raw, account)
        mapped = skip_unreachable(mapped, run.opts.unreachable)
        plan = _plan(run, mapped.desired, account)
    except (Cancelled, KeyboardInterrupt):
        return _interrupted_before_sending(run, mapped, warnings)
    if run.client is not None:
        run.client.stop_grace = SEND_DRAIN_SECONDS
    _begin(run)
    _journal_unsent(run, [*mapped.results, *plan.duplicates])
    sent_rows, aborted = send_plan(run, plan)
    results = RowResults([mapped.results, plan.duplicates, sent_rows])
    return finish_run(run, results, warnings, aborted)


def _begin(run: RunContext) -> None:
    """Record the run's start in the store (its id numbers every journalled result)."""
    run.run_id = run.store.begin_run(
        sheet=str(run.opts.sheet),
        sheet_sha256=run.sheet.sha256,
        mapping=str(run.mapping_path),
        options=run.opts.described(run.sheet.sheet_name),
    )


def _interrupted_before_sending(
    run: RunContext, mapped: mapping_mod.MappedRows | None, warnings: list[str]
) -> SyncOutcome:
    """A stop during login, refresh or planning: every row is reported, none was sent."""
    if mapped is not None:
        done = mapped.results
        waiting = [(d.row, d.contact_id, d.phone) for d in mapped.desired]
    else:
        done, waiting = [], [(r.row, None, None) for r in run.sheet.rows]
    unsent = [RowResult(row, cid, phone, status=Status.NOT_SENT, error_code=ErrorCode.NOT_SENT,
                        error=NOT_SENT_INTERRUPTED) for row, cid, phone in waiting]
    results = sorted([*done, *unsent], key=lambda r: r.row)
    _begin(run)
    run.store.record_results(run.run_id, results)
    aborted = Interrupted("interrupted before anything was sent")
    return finish_run(run, results, warnings, aborted)


def _map(
    run: RunContext, raw: mapping_mod.RawMapping, account: Account
) -> tuple[mapping_mod.MappedRows, list[str]]:
    column_mapping = mapping_mod.resolve_mapping(raw, run.sheet.headers, account)
    unmapped = mapping_mod.unmapped_headers(column_mapping, run.sheet.headers)
    warnings = ["ignored columns (not in the mapping): " + ", ".join(unmapped)] if unmapped else []
    if run.sheet.header_row != 1 and raw.options.get("header_row") is None:  # found, not set
        tab = f" of tab '{run.sheet.sheet_name}'" if run.sheet.sheet_name else ""
        warnings.insert(0, f"the header is row {run.sheet.header_row}{tab} (the rows above it "
                           "look like a title or notes); set header_row in the mapping to choose")
    for w in warnings:
        run.hooks.on_warning(w)
    return mapping_mod.map_rows(run.sheet, column_mapping, account), warnings


@dataclass(frozen=True)
class RunPlan:
    """The plan, the re-planner the executor uses at send time, and the rows that the
    resolution of phones to contacts found to be duplicates (results, not sent)."""

    rows: Sequence[PlannedRow]
    replan: Replan
    duplicates: list[RowResult]


def _plan(run: RunContext, rows: Sequence[Desired], account: Account) -> RunPlan:
    opts = run.opts
    run.hooks.on_stage("reading the local snapshot" if opts.offline else "refreshing known state")
    if opts.offline or run.client is None:
        desired, known = refresh.resolve_offline(run.store, rows)
    else:
        desired, known = refresh.refresh_known(run.client, run.store, rows)
    # a row by id and a row by phone may be one contact: one write per contact per run
    phones = known.phones_by_id()
    once = mapping_mod.dedupe(desired, [], phones)
    plan = plan_changes(
        once.desired,
        known,
        account=account,
        create_missing=opts.create_missing,
        keep_drift=opts.keep_drift,
    )
    check_max_changes(plan, opts.max_changes, total=len(run.sheet.rows))
    return RunPlan(plan, Replanner.of(account, known, keep_drift=opts.keep_drift), once.results)


def _journal_unsent(run: RunContext, results: Sequence[RowResult]) -> None:
    """Rows that send nothing: one transaction for all of them."""
    run.store.record_results(run.run_id, results)
    if run.hooks.on_result is not _no_result:
        for r in results:
            run.hooks.on_result(r)


def send_plan(run: RunContext, plan: RunPlan
              ) -> tuple[Sequence[RowResult], BsgSyncError | None]:
    """The plan's results: sent and journalled row by row, or (dry run) only journalled
    (made from the plan as they are read: a dry run of a million rows holds no result each)."""
    if run.opts.dry_run or run.client is None:
        rows = PlanResults(plan.rows)
        _journal_unsent(run, rows)
        return rows, None
    store, run_id = run.store, run.run_id

    def journal(result: RowResult, confirmed: Contact | None, before: Contact | None) -> None:
        store.record_result(run_id, result, confirmed, before)

    run.hooks.on_plan(report.count_statuses(plan.rows)[Status.PLANNED.value])
    outcome = execute_plan(
        plan.rows,
        run.client,
        journal=journal,
        journal_many=lambda rows: store.record_results(run_id, rows),
        concurrency=run.opts.concurrency,
        max_rps=run.opts.max_rps,
        max_failures=run.opts.max_failures,
        stop=run.hooks.stop,
        on_result=run.hooks.on_result,
        replan=plan.replan,
    )
    return outcome.results, outcome.aborted


def finish_run(
    run: RunContext, results: Sequence[RowResult], warnings: list[str],
    aborted: BsgSyncError | None
) -> SyncOutcome:
    """Summary, report, errors file, and the run's end in the store."""
    opts, client = run.opts, run.client
    results = _all_scrubbed(results)
    verified: Mapping[str, Verified] = {}
    if opts.verified or run.store.has_verified():  # else there is no check to attach
        results, verified = attach_verified(run.store, run.run_id, results, opts.verified)
    summary = report.summarise(
        results,
        run_id=run.run_id,
        sheet=opts.sheet,
        sheet_sha256=run.sheet.sha256,
        report_path=run.report_path,
        errors_path=opts.errors,
        dry_run=opts.dry_run,
        started_at=run.started,
        finished_at=now_text(),
        duration_s=round(time.monotonic() - run.t0, 3),
        options=opts.described(run.sheet.sheet_name),
        requests=client.requests_sent if client else 0,
        retries=client.retries if client else 0,
    )
    summary, failures = _write_outputs(run, results, summary)
    outcome = _outcome(aborted)
    if failures and aborted is None:
        aborted = OutputError(
            f"{'; '.join(failures)}; the rows were sent and are recorded in the state store "
            f"as run {run.run_id}: fix the folder or free some space before the next run"
        )
    elif failures:
        for text in failures:
            run.hooks.on_warning(text)
    code = exit_code_of(results, aborted)
    run.store.end_run(run.run_id, summary.counts, outcome, int(code))
    _prune(run.store)
    return SyncOutcome(summary=summary, results=results, warnings=warnings, aborted=aborted,
                       verified=verified, known_exit=code)


def _outcome(aborted: BsgSyncError | None) -> str:
    if aborted is None:
        return "finished"
    return "interrupted" if isinstance(aborted, Interrupted) else "aborted"


def _prune(store: StateStore) -> None:
    """Keep the store to its retention after every run; a failure here costs no result."""
    try:
        store.prune()
    except StateStoreError as exc:
        log.warning("could not prune the state store: %s", exc)


def _write_outputs(
    run: RunContext, results: Sequence[RowResult], summary: report.RunSummary
) -> tuple[report.RunSummary, list[str]]:
    """Report and errors file; a disk that fails now costs the file, not the run's end."""
    failures: list[str] = []
    try:
        report.write_report(run.report_path, results, summary)
    except OSError as exc:
        failures.append(f"the report {run.report_path} could not be written ({exc.strerror})")
        summary = dataclasses.replace(summary, report_path=None)
    if run.opts.errors is not None:
        try:
            report.write_errors(run.opts.errors, run.sheet, results)
        except OSError as exc:
            failures.append(
                f"the errors file {run.opts.errors} could not be written ({exc.strerror})"
            )
            summary = dataclasses.replace(summary, errors_path=None)
    return summary, failures


def _all_scrubbed(results: Sequence[RowResult]) -> Sequence[RowResult]:
    """Every result scrubbed: as each is read, for RowResults; else now."""
    if isinstance(results, RowResults):
        return results.mapped(_scrubbed)
    return [_scrubbed(r) for r in results]


def _scrubbed(r: RowResult) -> RowResult:
    """The result with no secret in its sentences (an answer may have quoted one)."""
    error, changes = scrub(r.error), scrub(r.changes)
    if error is r.error and changes is r.changes:
        return r
    return dataclasses.replace(r, error=error, changes=changes)


def header_row_of(raw: mapping_mod.RawMapping, path: Path) -> int | None:
    """The sheet must be read before the rest of the mapping can be checked against it."""
    value = raw.options.get("header_row")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{path.name}: header_row must be a row number (1 or more), not {value!r}"
        )
    return value


def current_account(client: BsgClient | None, store: StateStore) -> Account:
    """The account's fields and lists from BSG (saved as the snapshot), or with no client
    the snapshot's; UsageError when an offline run has none yet."""
    if client is None:
        account = store.load_account()
        if account is None:
            raise UsageError(
                "--offline needs a local snapshot: run `bsg-sync pull` (or a sync) first"
            )
        return account
    account = refresh.load_account(client)
    store.save_account(account)
    return account


def now_text() -> str:
    """Now, in local time as the report and the summary show it (the store keeps UTC)."""
    return datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")
