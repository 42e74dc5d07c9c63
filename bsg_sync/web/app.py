"""The Flask app: upload -> mapping -> preview (dry run) -> apply -> result, and history.

Every step calls the library (reader, mapping, run_sync, report); nothing here reads,
diffs or sends by itself.

Who may do what, checked before every request, in this order:

1. Host: loopback names on the bound port, or an --allowed-host name (421 otherwise), so a
   DNS-rebinding page cannot reach the page at all.
2. Password (when set): HTTP Basic, slowed down and locked out per client address (429).
3. Session: Flask's signed cookie (HttpOnly, SameSite=Strict, key random per process) holds
   a random `sid`, made on the first page shown. An upload and its runs record the `sid` that
   made them; their pages, progress JSON, results and downloads answer 404 to any other
   session. Shared views (History, the live run) need some session this process issued
   (403 for a request without one). Job ids are random, and no JSON answer carries an upload
   token: `next` is /jobs/<id>/next, itself bound to the session.
4. CSRF: every POST carries the session's token (400 otherwise). Every POST the routes
   handle answers 303 (POST/redirect/GET), refusals included, so a reload never repeats it."""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import logging
import re
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers.response import Response as BaseResponse

from bsg_sync import mapping as mapping_mod
from bsg_sync import report
from bsg_sync.client import BsgClient, RetryPolicy, open_client
from bsg_sync.errors import BsgSyncError, ConfigError
from bsg_sync.hlr import DEFAULT_HLR_URL
from bsg_sync.isolate import read_sheet_isolated
from bsg_sync.models import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RPS,
    Account,
    Action,
    RowResult,
    Sheet,
    Status,
)
from bsg_sync.refresh import load_account
from bsg_sync.state import RunInfo
from bsg_sync.sync import SyncOptions, SyncOutcome
from bsg_sync.undo import UndoOptions, run_undo
from bsg_sync.web import columns as columns_mod
from bsg_sync.web import forms
from bsg_sync.web import layout as layout_mod
from bsg_sync.web.countries import country_choices
from bsg_sync.web.guards import GuessLimiter, GuessPolicy, host_allowed
from bsg_sync.web.jobs import Job, JobRunner, RunInProgress
from bsg_sync.web.store import WEB_DB_NAME, WebStore, get_run, list_runs, run_results
from bsg_sync.web.uploads import ALLOWED_EXTENSIONS, Upload, UploadStore
from bsg_sync.web.verify_step import add_verify_routes, checks_of, with_checks
from bsg_sync.xlsxwrite import column_letter

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
READ_MEMORY_LIMIT = 2 << 30  # each upload is read in a child process with these limits
READ_TIME_LIMIT = 120.0
PAGE_SIZE = 200
STATUS_LABELS = {
    Status.OK.value: "OK",
    Status.UNCHANGED.value: "Unchanged",
    Status.PLANNED.value: "Will change",
    Status.INVALID.value: "Invalid",
    Status.NOT_FOUND.value: "Not found",
    Status.FAILED.value: "Failed",
    Status.NOT_SENT.value: "Not sent",
    Status.SKIPPED.value: "Skipped",
}
# the library's sentences name command-line options and settings; the page says what to do
# on the page instead (or who to ask), and drops a "(--force ...)" hint it cannot offer
_FOR_PEOPLE = (
    (re.compile(r"use --create-missing to create it"),
     "tick “create contacts whose phone number is not in BSG yet” on the mapping page to "
     "create it"),
    (re.compile(r"add default_country to the mapping"),
     "choose the country of numbers written without a country code on the mapping page"),
    (re.compile(r"check BSG_API_KEY or the key file"),
     "ask whoever started this page to check its BSG API key"),
    (re.compile(r"check --api-url \(or BSG_API_URL\) and the network"),
     "ask whoever started this page to check the BSG address it uses, and the network"),
    (re.compile(r" ?\(--[a-z-]+[^)]*\)"), ""),
)
_STORED_NAME = re.compile(r"[0-9a-f]{32}\.[A-Za-z0-9]+")  # how uploads.py names a stored sheet
PROBLEM_STATUSES = (Status.INVALID.value, Status.NOT_FOUND.value, Status.FAILED.value)
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


@dataclass(frozen=True)
class WebConfig:
    """What the server needs; the API key stays on the server and never reaches a page."""

    api_url: str
    api_key: str
    state: Path
    password: str | None = None
    allow_insecure_http: bool = False
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    concurrency: int = DEFAULT_CONCURRENCY
    max_rps: float | None = DEFAULT_MAX_RPS
    policy: RetryPolicy | None = None
    upload_root: Path | None = None  # where the private temp dir is made (default: system tmp)
    # Host values other than loopback the page answers to (guards.parse_allowed_hosts)
    allowed_hosts: frozenset[tuple[str, int | None]] = frozenset()
    guess_policy: GuessPolicy = field(default_factory=GuessPolicy)
    # the child process that reads every upload (a runaway parser dies there, not here)
    read_memory_limit: int = READ_MEMORY_LIMIT
    read_time_limit: float = READ_TIME_LIMIT
    # the "Check numbers first" step (verify_step.py): BSG's v1 HLR API; no key, no step
    hlr_url: str = DEFAULT_HLR_URL
    hlr_api_key: str | None = None
    hlr_poll_interval: float = 2.0  # seconds between polls of lookups still pending


@dataclass
class Services:
    config: WebConfig
    uploads: UploadStore
    jobs: JobRunner
    store: WebStore
    guesses: GuessLimiter

    def close(self) -> None:
        self.jobs.stop_all()
        self.uploads.close()
        self.store.close()


def services(app: Flask) -> Services:
    svc: Services = app.extensions["bsg_sync"]
    return svc


def create_app(config: WebConfig) -> Flask:
    """The app; call `services(app).close()` when done to delete uploads."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    app.extensions["bsg_sync"] = Services(
        config,
        UploadStore(config.upload_root),
        JobRunner(),
        WebStore(config.state.with_name(WEB_DB_NAME)),
        GuessLimiter(config.guess_policy),
    )
    app.jinja_env.globals.update(
        STATUS_LABELS=STATUS_LABELS,
        csrf_token=_csrf_token,
        accept=_accept_attr(),
        max_upload=size_text(config.max_upload_bytes),
        check_numbers_ready=bool(config.hlr_api_key),
    )
    app.jinja_env.filters["change_items"] = _change_items
    app.jinja_env.filters["for_people"] = for_people
    app.jinja_env.filters["local_time"] = _local_minute
    app.context_processor(_page_context)
    app.before_request(_check_host)
    app.before_request(_check_password)
    app.before_request(_check_csrf)
    app.after_request(_security_headers)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)
    _add_routes(app)
    return app


# --------------------------------------------------------------------------- safety


def _check_host() -> BaseResponse | None:
    """Refuse a Host the page was not set up for, so a DNS-rebinding page cannot drive it."""
    cfg = services_of_request().config
    host = request.environ.get("HTTP_HOST")
    port = int(request.environ.get("SERVER_PORT") or 0)
    if host_allowed(host, port, request.scheme, cfg.allowed_hosts):
        return None
    log.warning("refused a request for Host %r (not loopback on port %s, not allowed)", host, port)
    return _text(
        "This page does not answer to that address; open it at the address you were given.",
        421,
        {},
    )


def _check_password() -> BaseResponse | None:
    """HTTP Basic password, with failures slowed down and locked out per client address."""
    svc = services_of_request()
    password = svc.config.password
    if not password:
        return None
    client = request.remote_addr or "unknown"
    auth = request.authorization
    given = auth.password if auth is not None and auth.password is not None else None
    wait = svc.guesses.retry_after(client) if given is None else svc.guesses.begin(client)
    if wait is not None:  # not even checked: a right guess must not be told apart here
        return _text(
            f"Too many wrong passwords from this computer; wait {wait} seconds, then try again.",
            429,
            {"Retry-After": str(wait)},
        )
    if given is not None and hmac.compare_digest(given.encode(), password.encode()):
        svc.guesses.succeeded(client)
        return None
    if given is not None:
        _log_failure(svc.guesses, client)
    return _text(
        "This page needs the password your administrator set for it.",
        401,
        {"WWW-Authenticate": 'Basic realm="bsg-sync", charset="UTF-8"'},
    )


def _log_failure(guesses: GuessLimiter, client: str) -> None:
    failures, locked = guesses.failed(client)
    log.warning("wrong web page password from %s (%d recently)", client, failures)
    if locked:
        log.warning(
            "locked out %s for %.0f s after %d wrong passwords",
            client,
            guesses.policy.lockout_s,
            failures,
        )


def _text(message: str, status: int, headers: dict[str, str]) -> Response:
    return Response(f"{message}\n", status, {**headers, "Content-Type": "text/plain"})


def _session_id(create: bool = False) -> str | None:
    """This browser's id in the signed session cookie (made on the first page it is shown)."""
    sid = session.get("sid")
    if isinstance(sid, str) and sid:
        return sid
    if not create:
        return None
    sid = secrets.token_urlsafe(24)
    session["sid"] = sid
    return sid


def _is_mine(owner: str) -> bool:
    sid = _session_id()
    return bool(owner) and sid is not None and hmac.compare_digest(sid, owner)


def _require_session() -> None:
    if _session_id() is None:
        abort(
            403, "Open this page from the bsg-sync page in your browser; the link works only there."
        )


def _csrf_token() -> str:
    _session_id(create=True)
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _check_csrf() -> None:
    if request.method != "POST":
        return
    expected = session.get("csrf")
    given = request.form.get("csrf_token", "")
    if not isinstance(expected, str) or not given or not hmac.compare_digest(given, expected):
        abort(
            400,
            "The form's security token is missing or out of date; reload the page and try again.",
        )


def _security_headers(resp: BaseResponse) -> BaseResponse:
    resp.headers.setdefault("Content-Security-Policy", _CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _too_large(exc: RequestEntityTooLarge) -> tuple[str, int]:
    limit = size_text(services_of_request().config.max_upload_bytes)
    return _error_page(
        f"The file is larger than {limit}, the most this page takes; split it into smaller files.",
        413,
    )


def size_text(n: int) -> str:
    """1048576 -> "1 MB", 1000 -> "1000 bytes" (the upload limit as people read it)."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def _http_error(exc: HTTPException) -> tuple[str, int]:
    return _error_page(exc.description or exc.name, exc.code or 500)


def _error_page(message: str, status: int) -> tuple[str, int]:
    message = for_people(message)
    return render_template("error.html", message=message, status=status), status


def services_of_request() -> Services:
    from flask import current_app

    return services(current_app)


def _accept_attr() -> str:
    return ",".join(sorted(ALLOWED_EXTENSIONS))


def for_people(message: str) -> str:
    """A library sentence without its command-line hints, which mean nothing on the page."""
    for pattern, words in _FOR_PEOPLE:
        message = pattern.sub(words, message)
    return message


def _change_items(changes: str) -> list[str]:
    return [c.strip() for c in changes.split("; ") if c.strip()]


# --------------------------------------------------------------------------- helpers


def _upload_or_404(token: str) -> Upload:
    """The upload, if this browser session made it (another session gets the same 404)."""
    upload = services_of_request().uploads.get(token)
    if upload is None or not _is_mine(upload.owner):
        abort(404, "This upload has expired or was discarded; upload the sheet again.")
    return upload


def _job_or_404(job_id: str) -> Job:
    job = services_of_request().jobs.get(job_id)
    if job is None or not _is_mine(job.owner):
        abort(404, "No such run.")
    return job


def _client(config: WebConfig) -> BsgClient:
    return open_client(config.api_url, config.api_key, policy=config.policy,
                       allow_insecure_http=config.allow_insecure_http)


def _account(svc: Services, upload: Upload) -> Account:
    if upload.account is None:
        with _client(svc.config) as client:
            upload.account = load_account(client)
    return upload.account


def _read_upload(cfg: WebConfig, upload: Upload, **choices: Any) -> Sheet:
    """The upload read in a child process with the page's limits (InputFileError beyond them)."""
    return read_sheet_isolated(
        upload.sheet_path,
        memory_limit=cfg.read_memory_limit,
        time_limit=cfg.read_time_limit,
        max_bytes=cfg.max_upload_bytes,
        **choices,
    )


def _their_words(message: str, upload: Upload) -> str:
    """A library message with the stored sheet's path and name replaced by the person's."""
    message = message.replace(str(upload.sheet_path), upload.filename)
    return message.replace(upload.sheet_path.name, upload.filename)


def _sync_options(svc: Services, upload: Upload, dry_run: bool) -> SyncOptions:
    cfg = svc.config
    suffix = ".csv" if upload.is_text else ".xlsx"
    kind = "preview" if dry_run else "result"
    opts = SyncOptions(
        sheet=upload.sheet_path,
        state=cfg.state,
        api_url=cfg.api_url,
        mapping=upload.mapping_path,
        report=upload.private_path(f"{kind}.report.xlsx"),
        errors=upload.private_path(f"{kind}.errors{suffix}"),
        sheet_name=None if upload.layout is None else upload.layout.tab,
        dry_run=dry_run,
        create_missing=upload.create_missing,
        concurrency=cfg.concurrency,
        max_rps=cfg.max_rps,
        allow_insecure_http=cfg.allow_insecure_http,
        read_memory_limit=cfg.read_memory_limit,
        read_time_limit=cfg.read_time_limit,
    )
    opts = with_checks(opts, checks_of(current_app), upload.token)  # "Check numbers first"
    return opts if cfg.policy is None else replace(opts, policy=cfg.policy)


def _start(svc: Services, upload: Upload, dry_run: bool) -> Job:
    """Start the preview or the apply in the background; RunInProgress when one is running."""
    opts = _sync_options(svc, upload, dry_run)

    def on_done(job: Job) -> None:
        outcome = job.outcome
        if outcome is None:
            return
        kind = "preview" if dry_run else "result"
        if dry_run:
            upload.preview = outcome
        else:
            upload.result = outcome
            upload.applied_at = datetime.now().astimezone().strftime("%H:%M")
            if not _stop_counts(outcome.results)["remaining"]:
                upload.forget_sheet()  # no longer needed (kept to send the rest after a stop)
        if opts.report is not None and opts.report.is_file():
            _rewrite_report(opts.report, outcome, upload)
            upload.files[f"{kind}-report"] = opts.report
        if opts.errors is not None and opts.errors.is_file():
            if not dry_run:
                _add_unsent_rows(svc.config, upload, opts.errors, outcome)
            upload.files[f"{kind}-errors"] = opts.errors
        if outcome.summary.run_id is not None:
            svc.store.name_run(outcome.summary.run_id, upload.filename)

    svc.store.name_sheet(str(opts.sheet), upload.filename)
    return svc.jobs.start(
        upload.token, opts, svc.config.api_key, on_done, upload.owner, upload.filename
    )


def _choose_layout(
    svc: Services, upload: Upload, tab: str | None, header_text: str | None
) -> BaseResponse:
    """Read the upload again with another tab or header row (the mapping starts again)."""
    layout, token = upload.layout, upload.token
    if layout is None or upload.result is not None or token in svc.jobs.busy_uploads():
        return _back("mapping_page", "This upload can no longer change its tab or header row; "
                     "upload the sheet again.", token=token)
    if tab is not None and tab not in {t.name for t in layout.tabs}:
        return _back("mapping_page", "That tab is not in this workbook; choose one listed.",
                     token=token)
    rows = {n for n, _ in layout.grid}
    header_row = int(header_text) if header_text and header_text.isdigit() else None
    if tab is None and header_row not in rows:
        return _back("mapping_page", "Choose one of the rows shown as the header row.", token=token)
    read = functools.partial(_read_upload, svc.config, upload)
    try:
        sheet, upload.layout = layout_mod.relayout(read, layout, tab, header_row)
    except BsgSyncError as exc:
        return _back("mapping_page", f"Cannot use that: {_their_words(str(exc), upload)}",
                     token=token)
    _learn(upload, sheet)
    upload.draft = upload.draft_error = upload.preview = upload.mapping_path = None
    return redirect(url_for("mapping_page", token=token), 303)


def _learn(upload: Upload, sheet: Sheet) -> None:
    """What the page keeps of a sheet just read: its headers, row count and column profiles."""
    upload.headers, upload.rows = sheet.headers, len(sheet.rows)
    upload.profiles = columns_mod.profile_columns(sheet)
    upload.type_warnings = ()


def _add_unsent_rows(cfg: WebConfig, upload: Upload, path: Path, outcome: SyncOutcome) -> None:
    """After a stop, the rows to fix also hold the rows not sent (with why), in the sheet's
    own columns, so they can be sent again; the library's errors file lists only rows with a
    problem. (A status of their own is not a column of the file: error_code says not-sent.)"""
    unsent = {r.row for r in outcome.results if _status(r) == Status.NOT_SENT.value}
    if not unsent or not upload.sheet_path.is_file():
        return
    layout = upload.layout
    choices = {} if layout is None else {"sheet": layout.tab, "header_row": layout.header_row}
    listed = [
        replace(r, status=Status.FAILED) if r.row in unsent and _status(r) == Status.NOT_SENT.value
        else r
        for r in outcome.results
    ]
    try:
        sheet = _read_upload(cfg, upload, **choices)
        report.write_errors(path, sheet, listed)
    except (OSError, BsgSyncError):  # the run's own errors file stays
        log.exception("cannot add the rows not sent to %s", path.name)


def _rewrite_report(path: Path, outcome: SyncOutcome, upload: Upload) -> None:
    """The run's report again, its Summary in the person's terms: their file name, not the
    server's temp paths (the rows are the same)."""
    summary = outcome.summary
    options = dict(summary.options)
    if options.get("mapping"):
        options["mapping"] = "chosen on the web page"
    people = replace(summary, sheet=Path(upload.filename), report_path=None, errors_path=None,
                     options=options)
    try:
        report.write_report(path, outcome.results, people)
    except (OSError, BsgSyncError):  # the run's own report stays
        log.exception("cannot rewrite the report %s", path.name)


def _start_undo(svc: Services, upload: Upload, dry_run: bool) -> Job:
    """Start the undo's preview (a dry run) or the undo itself; RunInProgress when busy."""
    assert upload.undo_of is not None
    cfg = svc.config
    kind = "preview" if dry_run else "result"
    opts = UndoOptions(
        run_id=upload.undo_of,
        state=cfg.state,
        api_url=cfg.api_url,
        report=upload.private_path(f"{kind}.report.xlsx"),
        dry_run=dry_run,
        concurrency=cfg.concurrency,
        max_rps=cfg.max_rps,
        allow_insecure_http=cfg.allow_insecure_http,
    )
    if cfg.policy is not None:
        opts = replace(opts, policy=cfg.policy)

    def on_done(job: Job) -> None:
        if job.outcome is None:
            return
        if dry_run:
            upload.preview = job.outcome
        else:
            upload.result = job.outcome
            upload.applied_at = datetime.now().astimezone().strftime("%H:%M")
        if opts.report is not None and opts.report.is_file():
            upload.files[f"{kind}-report"] = opts.report

    api_key = cfg.api_key
    return svc.jobs.start(
        upload.token, opts.as_sync_options(), api_key, on_done, upload.owner, upload.filename,
        work=lambda hooks: run_undo(opts, api_key, hooks),
    )


def _ask_undo(svc: Services, run_id: int) -> BaseResponse:
    """History's "Undo this run": start the undo's preview, or say on History why not."""
    run = get_run(svc.config.state, run_id)
    if run is None:
        return _back("history", f"There is no run {run_id} in the history.")
    if run.dry_run:
        return _back(
            "history", f"Run {run_id} was a preview: it changed nothing, so there is nothing to undo."
        )
    if svc.jobs.running() is not None:
        return _back("history", "Another run is in progress; undo this run when it has finished.")
    upload = svc.uploads.add_undo(run_id, _session_id(create=True) or "")
    try:
        return _to_job(_start_undo(svc, upload, dry_run=True))
    except RunInProgress:
        svc.uploads.discard(upload.token)
        return _back("history", "Another run is in progress; undo this run when it has finished.")


def _to_job(job: Job) -> BaseResponse:
    return redirect(url_for("job_page", job_id=job.id), 303)


def _back(endpoint: str, message: str, **values: Any) -> BaseResponse:
    """POST/redirect/GET for a refusal too: say why on the page the person returns to."""
    flash(for_people(message), "error")
    return redirect(url_for(endpoint, **values), 303)


def _filtered(results: Sequence[RowResult], status: str | None, page: int) -> dict[str, Any]:
    rows = [r for r in results if not status or _status(r) == status]
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    return {
        "rows": rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
        "page": page,
        "pages": pages,
        "matching": len(rows),
        "status": status or "",
    }


def _status(r: RowResult) -> str:
    return str(getattr(r.status, "value", r.status))


def _int_arg(name: str, default: int) -> int:
    text = request.args.get(name, "")
    return int(text) if text.isdigit() else default


def _download(path: Path, name: str) -> BaseResponse:
    return send_file(path, as_attachment=True, download_name=name, max_age=0)


# --------------------------------------------------------------------------- the live run


def _live_view(job: Job) -> dict[str, Any]:
    """What anyone with a session may see of a run: the file, when it started, how far it is."""
    p = job.progress()
    started = job.started_at.strftime("%H:%M")
    if job.dry_run:
        what = f"A preview of {job.filename} is being worked out (started {started})"
    elif p["total"] is None:
        what = f"{job.filename} is being prepared for sending (started {started})"
    else:
        what = f"{job.filename} is being sent to BSG: {p['done']} of {p['total']} sent (started {started})"
    if p["state"] != "running":
        what = f"The run of {job.filename} (started {started}) has ended"
    return {
        "state": p["state"],
        "dry_run": job.dry_run,
        "filename": job.filename,
        "started": started,
        "done": p["done"],
        "total": p["total"],
        "counts": p["counts"],
        "rows_per_s": p["rows_per_s"],
        "eta_s": p["eta_s"],
        "stage": p["stage"],
        "sentence": what,
        "mine": _is_mine(job.owner),
        "run_id": None if job.outcome is None else job.outcome.summary.run_id,
    }


def _page_context() -> dict[str, Any]:
    """Every page: a session id for this browser, and the banner of a run in progress."""
    _session_id(create=True)
    running = services_of_request().jobs.running()
    return {"live": None if running is None else _live_view(running)}


def _blocking_run(upload: Upload) -> Job | None:
    """A run in progress that is not this upload's own (it blocks starting another)."""
    running = services_of_request().jobs.running()
    return running if running is not None and running.upload != upload.token else None


def _own_run(upload: Upload) -> Job | None:
    running = services_of_request().jobs.running()
    return running if running is not None and running.upload == upload.token else None


# --------------------------------------------------------------------------- routes


def _add_routes(app: Flask) -> None:
    _add_upload_routes(app)
    _add_job_routes(app)
    _add_outcome_routes(app)
    _add_history_routes(app)
    add_verify_routes(app)


def _add_upload_routes(app: Flask) -> None:
    @app.get("/")
    def index() -> str:
        return render_template(
            "upload.html", speed_sentence=speed_sentence(services_of_request().config)
        )

    @app.post("/upload")
    def upload_sheet() -> BaseResponse:
        svc = services_of_request()
        svc.uploads.expire(busy=svc.jobs.busy_uploads())
        file = request.files.get("sheet")
        if file is None or not file.filename:
            return _back("index", "Choose a spreadsheet file first.")
        try:
            upload = svc.uploads.add(file.filename, file.stream, _session_id(create=True) or "")
        except BsgSyncError as exc:
            return _back("index", f"Cannot use this file: {exc}")
        read = functools.partial(_read_upload, svc.config, upload)
        try:
            sheet, upload.layout = layout_mod.first_layout(read, upload.sheet_path, not upload.is_text)
        except BsgSyncError as exc:
            svc.uploads.discard(upload.token)
            return _back("index", f"Cannot use this file: {_their_words(str(exc), upload)}")
        _learn(upload, sheet)
        return redirect(url_for("mapping_page", token=upload.token), 303)

    @app.post("/u/<token>/layout")
    def choose_layout(token: str) -> BaseResponse:
        svc = services_of_request()
        upload = _upload_or_404(token)
        return _choose_layout(svc, upload, request.form.get("tab"), request.form.get("header_row"))

    @app.get("/u/<token>/mapping")
    def mapping_page(token: str) -> str | tuple[str, int]:
        svc = services_of_request()
        upload = _upload_or_404(token)
        try:
            account = _account(svc, upload)
        except BsgSyncError as exc:
            return _error_page(str(exc), 502)
        form = upload.draft
        if not isinstance(form, forms.MappingForm):
            form = forms.prefill(upload.headers, account, svc.store.saved_mapping(upload.headers))
        return _render_mapping(upload, account, form, upload.draft_error)

    @app.post("/u/<token>/mapping")
    def save_mapping(token: str) -> BaseResponse:
        svc = services_of_request()
        upload = _upload_or_404(token)
        try:
            account = _account(svc, upload)
        except BsgSyncError as exc:
            return _back("mapping_page", str(exc), token=token)
        try:
            form = forms.read_form(request.form, upload.headers, account)
        except ConfigError as exc:
            return _back("mapping_page", f"The mapping does not fit this sheet: {exc}", token=token)
        upload.draft, upload.draft_error = form, None
        text = forms.to_toml(form, None if upload.layout is None else upload.layout.header_row)
        try:
            raw = mapping_mod.parse_mapping(text, source=Path("mapping"))
            mapping_mod.resolve_mapping(raw, upload.headers, account)
        except ConfigError as exc:
            upload.draft_error = columns_mod.name_fields(str(exc), account)
            return redirect(url_for("mapping_page", token=token), 303)
        stop = _mapping_stop(upload, form, account, request.form.get("accept_types", ""))
        if stop is not None:
            return stop
        upload.mapping_path = upload.private_path("mapping.toml")
        upload.mapping_path.write_text(text, encoding="utf-8")
        upload.create_missing = form.create_missing
        svc.store.save_mapping(upload.headers, text, form.create_missing)
        try:
            return _to_job(_start(svc, upload, dry_run=True))
        except RunInProgress:
            message = "Your choices are kept; the preview can start when the other run ends."
            return _back("mapping_page", message, token=token)

    @app.post("/u/<token>/discard")
    def discard(token: str) -> BaseResponse:
        svc = services_of_request()
        upload = _upload_or_404(token)
        if token in svc.jobs.busy_uploads():
            return _back("mapping_page", "This upload has a run in progress.", token=upload.token)
        svc.uploads.discard(token)
        return redirect(url_for("index"), 303)


def _add_job_routes(app: Flask) -> None:
    @app.get("/jobs/<job_id>")
    def job_page(job_id: str) -> str:
        job = _job_or_404(job_id)
        upload = _upload_or_404(job.upload)
        return render_template(
            "progress.html",
            upload=upload,
            job=job,
            p=job.progress(),
            next_url=_next_url(job),
            hide_banner=True,
        )

    @app.get("/jobs/<job_id>.json")
    def job_status(job_id: str) -> BaseResponse:
        job = _job_or_404(job_id)
        p = job.progress()
        return jsonify({**p, "error": for_people(p["error"]), "next": _next_url(job)})

    @app.get("/jobs/<job_id>/next")
    def job_next(job_id: str) -> BaseResponse:
        job = _job_or_404(job_id)
        if job.state != "done" or job.outcome is None:
            return redirect(url_for("job_page", job_id=job.id), 303)
        endpoint = "preview" if job.dry_run else "result"
        return redirect(url_for(endpoint, token=job.upload), 303)

    @app.post("/jobs/<job_id>/stop")
    def stop_job(job_id: str) -> BaseResponse:
        job = _job_or_404(job_id)
        job.hooks.stop.set()
        return redirect(url_for("job_page", job_id=job.id), 303)

    @app.get("/running")
    def running_page() -> BaseResponse | str:
        job = services_of_request().jobs.current()
        if (
            job is not None
            and _is_mine(job.owner)
            and services_of_request().uploads.get(job.upload)
        ):
            return redirect(url_for("job_page", job_id=job.id), 303)
        return render_template(
            "live.html", view=None if job is None else _live_view(job), hide_banner=True
        )

    @app.get("/running.json")
    def running_status() -> BaseResponse:
        _require_session()
        job = services_of_request().jobs.current()
        if job is None:
            return jsonify({"state": "none"})
        view = _live_view(job)
        view["history_url"] = (
            None if view["run_id"] is None else url_for("history_run", run_id=view["run_id"])
        )
        return jsonify(view)


def _add_outcome_routes(app: Flask) -> None:
    @app.get("/u/<token>/preview")
    def preview(token: str) -> BaseResponse | str:
        upload = _upload_or_404(token)
        if upload.preview is None:
            own = _own_run(upload)
            if own is not None:
                return redirect(url_for("job_page", job_id=own.id), 303)
            if upload.undo_of is not None:
                return _back("history", "This undo has no preview; press Undo this run again.")
            return _back(
                "mapping_page", "There is no preview yet; choose the mapping first.", token=token
            )
        template = "preview.html" if upload.undo_of is None else "undo_preview.html"
        return _render_outcome(template, upload, upload.preview.results)

    @app.post("/u/<token>/apply")
    def apply(token: str) -> BaseResponse:
        upload = _upload_or_404(token)
        if upload.undo_of is not None:
            return _apply_undo(upload)
        if upload.preview is None or upload.mapping_path is None:
            return _back("mapping_page", "Preview the changes before applying them.", token=token)
        if upload.result is not None:
            return _back(
                "result",
                "This upload was already applied; upload the sheet again to re-run it.",
                token=token,
            )
        own = _own_run(upload)
        if own is not None:
            return _to_job(own)
        try:
            return _to_job(_start(services_of_request(), upload, dry_run=False))
        except RunInProgress:
            message = "Nothing was sent yet; Apply works again when the other run ends."
            return _back("preview", message, token=token)

    @app.post("/u/<token>/send-remaining")
    def send_remaining(token: str) -> BaseResponse:
        return _send_remaining(_upload_or_404(token))

    @app.get("/u/<token>/result")
    def result(token: str) -> BaseResponse | str:
        upload = _upload_or_404(token)
        if upload.result is None:
            return _back("preview", "This upload has not been applied yet.", token=token)
        template = "result.html" if upload.undo_of is None else "undo_result.html"
        return _render_outcome(template, upload, upload.result.results)

    @app.get("/u/<token>/download/<kind>")
    def download(token: str, kind: str) -> BaseResponse:
        upload = _upload_or_404(token)
        path = upload.files.get(kind)
        if path is None or not path.is_file():
            abort(404, "No such file.")
        stem = upload.stem
        name = {
            "preview-report": f"{stem}.dry-run.report.xlsx",
            "result-report": f"{stem}.report.xlsx",
        }.get(kind, f"{stem}.errors{path.suffix}")
        return _download(path, name)


def _apply_undo(upload: Upload) -> BaseResponse:
    """The undo's Apply: once, after its preview, one run at a time."""
    token = upload.token
    if upload.preview is None:
        return _back("history", "This undo has no preview; press Undo this run again.")
    if upload.result is not None:
        return _back("result", "This undo was already applied.", token=token)
    own = _own_run(upload)
    if own is not None:
        return _to_job(own)
    try:
        return _to_job(_start_undo(services_of_request(), upload, dry_run=False))
    except RunInProgress:
        message = "Nothing was restored yet; Apply works again when the other run ends."
        return _back("preview", message, token=token)


def _stop_counts(results: Sequence[RowResult]) -> dict[str, int]:
    """Of the rows a send planned: how many went to BSG, and how many a stop held back."""
    remaining = report.count_statuses(results)[Status.NOT_SENT.value]
    sent = sum(
        1
        for r in results
        if r.action in (Action.UPDATE, Action.CREATE, Action.DELETE)
        and _status(r) != Status.NOT_SENT.value
    )
    return {"sent": sent, "remaining": remaining, "total": sent + remaining}


def _send_remaining(upload: Upload) -> BaseResponse:
    """After a stop: send the same sheet again; what was sent is unchanged now, so only the
    rest goes (each change once)."""
    token = upload.token
    if upload.undo_of is not None or upload.result is None or upload.mapping_path is None:
        return _back("preview", "There is nothing left to send for this upload.", token=token)
    own = _own_run(upload)
    if own is not None:
        return _to_job(own)
    if not _stop_counts(upload.result.results)["remaining"] or not upload.sheet_path.is_file():
        return _back("result", "Every row of this upload has been sent.", token=token)
    try:
        return _to_job(_start(services_of_request(), upload, dry_run=False))
    except RunInProgress:
        message = "Nothing more was sent yet; this works again when the other run ends."
        return _back("result", message, token=token)


def _add_history_routes(app: Flask) -> None:
    @app.post("/history/<int:run_id>/undo")
    def undo_run(run_id: int) -> BaseResponse:
        _require_session()
        return _ask_undo(services_of_request(), run_id)

    @app.get("/history")
    def history() -> str:
        svc = services_of_request()
        runs = list_runs(svc.config.state)
        live = _live_runs(runs)
        return render_template(
            "history.html",
            runs=runs,
            sends=[r for r in runs if not r.dry_run],
            previews=[r for r in runs if r.dry_run],
            names=_run_names(runs),
            live_runs=live,
            fixable=_problem_runs(runs),
        )

    @app.get("/history/<int:run_id>/rows-to-fix.csv")
    def history_rows_to_fix(run_id: int) -> BaseResponse:
        _require_session()  # phone numbers: not for a request without the cookie
        svc = services_of_request()
        run = get_run(svc.config.state, run_id)
        results = [r for r in run_results(svc.config.state, run_id)
                   if _status(r) in PROBLEM_STATUSES]
        if run is None or not results:
            abort(404, "This run has no rows to fix.")
        data = _rows_to_fix(run_id, run, results, svc)
        name = Path(_run_names([run])[run_id]).stem
        return send_file(io.BytesIO(data), as_attachment=True, mimetype="text/csv",
                         download_name=f"{name}.run-{run_id}.rows-to-fix.csv")

    @app.get("/history/<int:run_id>")
    def history_run(run_id: int) -> str:
        _require_session()  # row data (phone numbers): not for a request without the cookie
        svc = services_of_request()
        run = get_run(svc.config.state, run_id)
        if run is None:
            abort(404, "No such run in the state store.")
        results = run_results(svc.config.state, run_id)
        status = request.args.get("status") or None
        live = _live_runs([run]).get(run_id)
        return render_template(
            "run.html",
            run=run,
            name=_run_names([run])[run_id],
            view=_filtered(results, status, _int_arg("page", 1)),
            counts=report.count_statuses(results) if live is None
            else _all_statuses(live["counts"]),
            live_run=live,
        )

    @app.get("/history/<int:run_id>/report.xlsx")
    def history_report(run_id: int) -> BaseResponse:
        _require_session()
        svc = services_of_request()
        run = get_run(svc.config.state, run_id)
        if run is None:
            abort(404, "No such run in the state store.")
        data = _history_report(run_id, run, run_results(svc.config.state, run_id), svc)
        name = Path(_run_names([run])[run_id]).stem
        return send_file(
            io.BytesIO(data), as_attachment=True, download_name=f"{name}.run-{run_id}.report.xlsx"
        )


def _run_names(runs: Sequence[RunInfo]) -> dict[int, str]:
    """Each run's sheet as the person named it: recorded by this page, or the live upload's."""
    svc = services_of_request()
    by_sheet = svc.store.sheet_names([r.sheet for r in runs])
    recorded = svc.store.run_names()
    names: dict[int, str] = {}
    for run in runs:
        stored = run.sheet.replace("\\", "/").split("/")[-1]
        # run_names is keyed by run id only, so trusted only for a sheet this page stored
        # (another state store in the same folder, or the command line, numbers its own runs)
        by_id = recorded.get(run.id) if _STORED_NAME.fullmatch(stored) else None
        known = by_sheet.get(run.sheet) or svc.uploads.name_of_sheet(run.sheet) or by_id
        names[run.id] = known or stored
    return names


def _live_runs(runs: Sequence[RunInfo]) -> dict[int, dict[str, Any]]:
    """The unfinished run that the run in progress is writing (newest match), with live counts."""
    running = services_of_request().jobs.running()
    if running is None or running.sheet is None:
        return {}
    sheet = str(running.sheet)
    match = max((r.id for r in runs if r.ended_at is None and r.sheet == sheet), default=None)
    return {} if match is None else {match: _live_view(running)}


def _all_statuses(counts: dict[str, int]) -> dict[str, int]:
    return {s.value: counts.get(s.value, 0) for s in Status}


def _next_url(job: Job) -> str | None:
    """Where the page goes when the run is done: a URL that itself needs this session."""
    if job.state != "done" or job.outcome is None:
        return None
    return url_for("job_next", job_id=job.id)


def _mapping_stop(
    upload: Upload, form: forms.MappingForm, account: Account, accepted: str
) -> BaseResponse | None:
    """Back to the mapping before any preview when the sheet names lists BSG lacks, or when
    a column's values do not fit its target and the person has not said to go on anyway."""
    for c in form.columns:
        profile = next((p for p in upload.profiles if p.index == c.index), None)
        unknown = [] if c.target != "groups" or profile is None else (
            columns_mod.unknown_lists(profile, account))
        if unknown:
            upload.draft_error = columns_mod.unknown_list_error(c.header, unknown, account)
            return redirect(url_for("mapping_page", token=upload.token), 303)
    warnings = tuple(_type_warnings(upload, form, account))
    if warnings and not hmac.compare_digest(accepted, _warnings_key(warnings)):
        return redirect(url_for("mapping_page", token=upload.token), 303)
    upload.type_warnings = warnings
    return None


def _type_warnings(upload: Upload, form: forms.MappingForm, account: Account) -> list[str]:
    targets = [(c.index, c.target) for c in form.columns]
    return columns_mod.type_warnings(targets, upload.profiles, account)


def _warnings_key(warnings: Sequence[str]) -> str:
    """What the "preview anyway" box carries: these warnings, and no others, were seen."""
    return hashlib.sha256("\n".join(warnings).encode()).hexdigest()[:16]


def _mapping_rows(upload: Upload, account: Account, form: forms.MappingForm) -> list[Any]:
    """Per column: its choice, samples, the warning for each kind of target, why ignored."""
    profiles = {p.index: p for p in upload.profiles}
    rows = []
    for c in form.columns:
        p = profiles.get(c.index)
        misfit = {} if p is None else {
            k: columns_mod.misfit_sentence(p, k) for k in columns_mod.KINDS
        }
        rows.append({
            "choice": c,
            "samples": () if p is None else p.samples,
            "filled": None if p is None else p.filled,
            "misfit": {k: v for k, v in misfit.items() if v},
            "ignored": columns_mod.ignored_reason(p, c.header, c.index),
        })
    return rows


def _render_mapping(
    upload: Upload, account: Account, form: forms.MappingForm, error: str | None
) -> str:
    blocking = _blocking_run(upload)
    warnings = _type_warnings(upload, form, account)
    choices = forms.target_choices(account)
    return render_template(
        "mapping.html",
        upload=upload,
        form=form,
        choices=choices,
        kinds={v: columns_mod.target_kind(v, account) or "" for v, _label in choices},
        types=forms.target_types(account),
        rows=_mapping_rows(upload, account, form),
        countries=country_choices(),
        warnings=warnings,
        warnings_key=_warnings_key(warnings) if warnings else "",
        lists_sentence=columns_mod.lists_sentence(account),
        error=error,
        blocking=None if blocking is None else _live_view(blocking),
        grid_columns=_grid_columns(upload.layout),
    )


REQUESTS_PER_CHANGE = 2  # the fresh read right before each write, and the write


def speed_sentence(cfg: WebConfig) -> str:
    """How fast an apply sends, as the server was started (--concurrency, --max-rps)."""
    cap = (
        "with no cap on requests a second"
        if cfg.max_rps is None
        else f"at most {cfg.max_rps:g} requests a second"
    )
    return f"Changes go to BSG {cfg.concurrency} at a time, {cap}."


def apply_eta(cfg: WebConfig, changes: int) -> str:
    """About how long sending `changes` takes at the rate cap ("" without a cap)."""
    if cfg.max_rps is None or changes <= 0:
        return ""
    seconds = changes * REQUESTS_PER_CHANGE / cfg.max_rps
    took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
    return (
        f"BSG is sent at most {cfg.max_rps:g} requests a second: {changes} changes take "
        f"about {took}"
    )


def _ignored_columns(upload: Upload) -> list[str]:
    """The sheet's named columns the mapping leaves out (shown so nothing is silently lost)."""
    form = upload.draft
    if not isinstance(form, forms.MappingForm):
        return []
    return [c.header for c in form.columns if c.target == forms.IGNORE and c.header.strip()]


def _ignored_reasons(upload: Upload) -> list[tuple[str, str]]:
    """(column, why it sends nothing) for every column the mapping leaves out."""
    form = upload.draft
    if not isinstance(form, forms.MappingForm):
        return []
    profiles = {p.index: p for p in upload.profiles}
    return [
        (c.header or f"column {column_letter(c.index)}",
         columns_mod.ignored_reason(profiles.get(c.index), c.header, c.index))
        for c in form.columns if c.target == forms.IGNORE
    ]


def _grid_columns(layout: layout_mod.Layout | None) -> list[str]:
    """The grid's column letters as Excel shows them (A, B, ...)."""
    width = max((len(cells) for _, cells in layout.grid), default=0) if layout else 0
    return [column_letter(i) for i in range(width)]


def _render_outcome(template: str, upload: Upload, results: Sequence[RowResult]) -> str:
    outcome = upload.result if template.endswith("result.html") else upload.preview
    assert outcome is not None
    status = request.args.get("status") or None
    blocking, own = _blocking_run(upload), _own_run(upload)
    counts = report.count_statuses(results)
    return render_template(
        template,
        upload=upload,
        outcome=outcome,
        summary=outcome.summary,
        sentence=report.summary_sentence(
            replace(outcome.summary, report_path=None, errors_path=None)
        ),
        hlr_sentence=report.hlr_sentence(outcome.summary),
        counts=counts,
        problems=[r for r in results if _status(r) in PROBLEM_STATUSES],
        skipped=[r for r in results if _status(r) == Status.SKIPPED.value],
        stop=_stop_counts(results),
        apply_eta=apply_eta(services_of_request().config, counts[Status.PLANNED.value]),
        ignored=_ignored_columns(upload),
        ignored_reasons=_ignored_reasons(upload),
        view=_filtered(results, status, _int_arg("page", 1)),
        planned=counts[Status.PLANNED.value],
        blocking=None if blocking is None else _live_view(blocking),
        own_job=own,
    )


def _problem_runs(runs: Sequence[RunInfo]) -> set[int]:
    """The runs with a row that needs fixing (from their recorded counts)."""
    return {r.id for r in runs if any(r.counts.get(s, 0) for s in PROBLEM_STATUSES)}


def _rows_to_fix(run_id: int, run: RunInfo, results: list[RowResult], svc: Services) -> bytes:
    """The rows of a past run that need fixing, with why, as the report's CSV columns (the
    sheet itself is gone, so not its original columns)."""
    return _history_report(run_id, run, results, svc, suffix=".csv")


def _history_report(
    run_id: int, run: RunInfo, results: list[RowResult], svc: Services, suffix: str = ".xlsx"
) -> bytes:
    """A report of a past run, rebuilt from the results the state store journalled."""
    summary = report.summary_of_run(run, results, None, sheet=Path(_run_names([run])[run_id]))
    with tempfile.TemporaryDirectory(dir=svc.uploads.root) as tmp:
        path = Path(tmp) / f"report{suffix}"
        report.write_report(path, results, summary)
        return path.read_bytes()


def _local_minute(text: str | None) -> str:
    """A state store time as History shows it: local, to the minute."""
    when = report.parse_store_time(text or "")
    return (text or "") if when is None else when.astimezone().strftime("%Y-%m-%d %H:%M")
