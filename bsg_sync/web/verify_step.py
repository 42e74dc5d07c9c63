"""The web page's "Check numbers first" step, between the preview and Apply.

1. POST /u/<token>/verify/quote: work out which numbers would be looked up and their price
   (a dry verification: BSG's prices and balance are read, nothing is paid).
2. GET /u/<token>/verify: the price, then (POST /u/<token>/verify/check, bound to the price
   shown: a higher one is refused) the check's progress, then the results per status.
3. POST /u/<token>/verify/apply: Apply, choosing whether rows whose number is unreachable are
   left out (`invalid`, `number-unreachable`); the apply's report carries every check.

Without an HLR API key (`serve --hlr-api-key-file` or BSG_HLR_API_KEY) the step says so and
the page works as before. The work runs in a thread per upload, like the page's runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from bsg_sync.errors import BsgSyncError, Cancelled, Interrupted
from bsg_sync.hlr import HlrKeyRejected
from bsg_sync.verify import (
    Mode,
    Quote,
    Verified,
    VerifyCostRefused,
    VerifyOptions,
    VerifyOutcome,
    run_verify,
    unreachable_numbers,
)

if TYPE_CHECKING:
    from bsg_sync.sync import SyncOptions
    from bsg_sync.web.app import Services
    from bsg_sync.web.uploads import Upload

log = logging.getLogger(__name__)

RUNNING = frozenset({"quoting", "checking"})
MODES = {  # what the person chooses, in their words
    Mode.NEW.value: "numbers new to the contact book",
    Mode.CHANGED.value: "numbers new to the book or changed by this sheet",
    Mode.STALE.value: "those, and numbers not checked in the last 30 days",
}
STATUS_WORDS = {
    "active": "Reachable",
    "absent": "Switched off or out of coverage",
    "failed": "Does not exist",
    "undeliverable": "Cannot be reached",
    "unknown": "Unknown",
    "invalid-number": "Not a valid number",
    "pending": "No answer yet",
}
NOT_SET_UP = ("Checking numbers is not set up on this page: it needs an HLR API key, which "
              "whoever started the page can give it. You can apply without checking.")


@dataclass
class Check:
    """One upload's check: its price, then its results (read by the page while a thread works)."""

    mode: Mode
    state: str = "quoting"  # quoting | quoted | checking | checked | failed
    done: int = 0
    total: int = 0
    quote: Quote | None = None
    cached: dict[str, Verified] = field(default_factory=dict)  # known before paying
    outcome: VerifyOutcome | None = None
    problem: str = ""  # why the price cannot be paid (over the balance)
    error: str = ""
    skip_unreachable: bool = False  # chosen on Apply from this step
    only: frozenset[str] = frozenset()  # the phones of the rows Apply would send
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def results(self) -> dict[str, Verified]:
        """Every number's check known so far (this check's, else the cache's)."""
        if self.outcome is not None:
            return dict(self.outcome.results)
        return dict(self.cached)

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total


class Checks:
    """The checks of the live uploads, by upload token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checks: dict[str, Check] = {}

    def get(self, token: str) -> Check | None:
        with self._lock:
            return self._checks.get(token)

    def running(self) -> bool:
        with self._lock:
            return any(c.state in RUNNING for c in self._checks.values())

    def start(self, token: str, check: Check, work: Callable[[Check], None]) -> bool:
        """Run `work(check)` in a thread; False when this upload's check is still working."""
        with self._lock:
            old = self._checks.get(token)
            if old is not None and old.state in RUNNING:
                return False
            self._checks[token] = check
        threading.Thread(target=_guarded, args=(work, check), daemon=True,
                         name=f"bsg-sync-web-check-{check.mode.value}").start()
        return True

    def forget_gone(self, alive: Callable[[str], bool]) -> None:
        """Drop the finished checks of uploads that expired or were discarded."""
        with self._lock:
            for token in [t for t, c in self._checks.items()
                          if c.state not in RUNNING and not alive(t)]:
                del self._checks[token]



def _guarded(work: Callable[[Check], None], check: Check) -> None:
    try:
        work(check)
    except (Interrupted, Cancelled):  # a stop during a call, or between calls
        check.error = ("Stopped. What was looked up so far is kept: check again to finish "
                       "(no number is paid for twice).")
        check.state = "failed"
    except HlrKeyRejected:
        check.error = ("BSG did not accept this page's HLR API key; ask whoever started the "
                       "page to check it. Nothing was paid.")
        check.state = "failed"
    except BsgSyncError as exc:
        check.error = str(exc)
        check.state = "failed"
    except Exception as exc:  # a bug must not leave the page polling forever
        log.exception("the number check failed")
        check.error = f"unexpected error ({type(exc).__name__}); see the server log"
        check.state = "failed"


def checks_of(app: Flask) -> Checks:
    found: Checks = app.extensions["bsg_sync_checks"]
    return found


def with_checks(opts: SyncOptions, checks: Checks, token: str) -> SyncOptions:
    """An apply's options with this upload's checks (report columns) and, when the person chose
    so on this step, its unreachable numbers left out."""
    check = checks.get(token)
    if opts.dry_run or check is None or check.state in RUNNING:
        return opts
    results = check.results
    dead = unreachable_numbers(results) if check.skip_unreachable else frozenset()
    return replace(opts, verified=results, unreachable=dead)


# --------------------------------------------------------------------------- the work

def _quote(svc: Services, opts: SyncOptions, check: Check) -> None:
    """The price of the lookups; pays nothing (a dry verification)."""
    cfg = svc.config
    vopts = VerifyOptions(mode=check.mode, dry_run=True, only=check.only)
    try:
        outcome = run_verify(opts, vopts, cfg.api_key, cfg.hlr_url, cfg.hlr_api_key or "",
                             stop=check.stop)
    except VerifyCostRefused as exc:
        check.quote, check.problem = exc.quote, str(exc)
    else:
        check.quote, check.cached = outcome.quote, dict(outcome.results)
    check.state = "quoted"


def _verify(svc: Services, opts: SyncOptions, check: Check) -> None:
    """The lookups, capped at the price the person saw (a higher one is refused)."""
    cfg = svc.config
    assert check.quote is not None
    vopts = VerifyOptions(mode=check.mode, max_cost=check.quote.total, only=check.only,
                          poll_interval=cfg.hlr_poll_interval)
    try:
        check.outcome = run_verify(opts, vopts, cfg.api_key, cfg.hlr_url,
                                   cfg.hlr_api_key or "", stop=check.stop,
                                   on_progress=check.progress)
    except VerifyCostRefused as exc:
        now = exc.quote
        if now is None or now.total <= check.quote.total:
            raise  # the balance, not the price shown
        check.error = (f"The price has gone up since it was shown: now at most {now.total} "
                       f"{now.currency} for {len(now.numbers)} numbers. Nothing was paid; "
                       "work out the price again.")
        check.state = "failed"
        return
    check.state = "checked"


# --------------------------------------------------------------------------- the page

def _web() -> Any:
    from bsg_sync.web import app as web_app  # the page's helpers (app.py imports this module)

    return web_app


def _back(endpoint: str, message: str, **values: Any) -> BaseResponse:
    """The page's own refusal: 303 back, with the sentence shown there."""
    resp: BaseResponse = _web()._back(endpoint, message, **values)
    return resp


def _ready_upload(token: str) -> tuple[Upload, BaseResponse | None]:
    """The upload, and a refusal when it has no preview yet or was already applied."""
    web = _web()
    upload = web._upload_or_404(token)
    if upload.undo_of is not None or upload.preview is None or upload.mapping_path is None:
        return upload, _back("preview", "Preview the changes before checking the numbers.",
                             token=token)
    if upload.result is not None:
        return upload, _back("result", "This upload was already applied; its numbers can "
                             "no longer be checked first.", token=token)
    return upload, None


def _start(token: str, check: Check, work: Callable[[Services, SyncOptions, Check], None]
           ) -> BaseResponse:
    web = _web()
    upload, refusal = _ready_upload(token)
    if refusal is not None:
        return refusal
    svc = web.services_of_request()
    if not svc.config.hlr_api_key:
        return redirect(url_for("verify_page", token=token), 303)
    if svc.jobs.running() is not None or checks_of(_app()).running():
        return _back("verify_page", "Another run or check is in progress; check the numbers "
                     "when it has finished.", token=token)
    checks_of(_app()).forget_gone(lambda t: svc.uploads.get(t) is not None)
    opts = web._sync_options(svc, upload, dry_run=True)
    if not checks_of(_app()).start(token, check, lambda c: work(svc, opts, c)):
        return _back("verify_page", "The numbers are being checked already.", token=token)
    return redirect(url_for("verify_page", token=token), 303)


def _app() -> Flask:
    from flask import current_app

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


def _sent_phones(token: str) -> frozenset[str]:
    """The phones of the preview's planned rows: a number Apply would not send is not paid for."""
    upload = _web().services_of_request().uploads.get(token)
    preview = None if upload is None else upload.preview
    if preview is None:
        return frozenset()
    return frozenset(r.phone for r in preview.results
                     if r.phone and _web()._status(r) == "planned")


def _rows_of(upload: Upload) -> dict[str, list[int]]:
    """The preview's row numbers per phone (to say which rows an unreachable number is on)."""
    rows: dict[str, list[int]] = {}
    if upload.preview is not None:
        for r in upload.preview.results:
            if r.phone:
                rows.setdefault(r.phone, []).append(r.row)
    return rows


def _status_counts(results: Mapping[str, Verified]) -> list[tuple[str, str, int]]:
    counts: dict[str, int] = {}
    for v in results.values():
        counts[v.status] = counts.get(v.status, 0) + 1
    return [(s, STATUS_WORDS.get(s, s), n) for s, n in sorted(counts.items(),
                                                                key=lambda kv: -kv[1])]


def _page(token: str) -> str:
    web = _web()
    upload = web._upload_or_404(token)
    svc = web.services_of_request()
    check = checks_of(_app()).get(token)
    results = {} if check is None else check.results
    rows = _rows_of(upload)
    dead = sorted(unreachable_numbers(results), key=lambda m: (rows.get(m) or [0])[0])
    return render_template(
        "verify_step.html", upload=upload, check=check, ready=bool(svc.config.hlr_api_key),
        not_set_up=NOT_SET_UP, modes=MODES, mode=(check.mode.value if check else "changed"),
        statuses=_status_counts(results), dead=[(m, rows.get(m, []), results[m]) for m in dead],
        dead_rows=sum(len(rows.get(m, [])) for m in dead),
        error=web.for_people(check.error) if check else "",
        planned=sum(1 for r in (upload.preview.results if upload.preview else [])
                    if web._status(r) == "planned"),
        blocking=web._blocking_run(upload), applied=upload.result is not None,
        working=check is not None and check.state in RUNNING)


def add_verify_routes(app: Flask) -> None:
    """Register the step's routes and its registry (app.py calls this once)."""
    app.extensions["bsg_sync_checks"] = Checks()

    @app.get("/u/<token>/verify")
    def verify_page(token: str) -> str:
        return _page(token)

    @app.get("/u/<token>/verify.json")
    def verify_status(token: str) -> BaseResponse:
        _web()._upload_or_404(token)
        check = checks_of(app).get(token)
        if check is None:
            return jsonify({"state": "none"})
        return jsonify({"state": check.state, "done": check.done, "total": check.total})

    @app.post("/u/<token>/verify/quote")
    def verify_quote(token: str) -> BaseResponse:
        mode = request.form.get("mode", Mode.CHANGED.value)
        chosen = Mode(mode) if mode in MODES else Mode.CHANGED
        return _start(token, Check(chosen, only=_sent_phones(token)), _quote)

    @app.post("/u/<token>/verify/check")
    def verify_check(token: str) -> BaseResponse:
        check = checks_of(app).get(token)
        if check is None or check.state != "quoted" or check.quote is None or check.problem:
            return _back("verify_page", "Work out the price first; nothing was paid.",
                                token=token)
        if not check.quote.numbers:
            return redirect(url_for("verify_page", token=token), 303)
        priced = Check(check.mode, state="checking", total=len(check.quote.numbers),
                       quote=check.quote, cached=check.cached, only=check.only)
        return _start(token, priced, _verify)

    @app.post("/u/<token>/verify/stop")
    def verify_stop(token: str) -> BaseResponse:
        _web()._upload_or_404(token)
        check = checks_of(app).get(token)
        if check is not None and check.state in RUNNING:
            check.stop.set()  # the verification stops between requests; the journal stays
        return redirect(url_for("verify_page", token=token), 303)

    @app.post("/u/<token>/verify/apply")
    def verify_apply(token: str) -> BaseResponse:
        check = checks_of(app).get(token)
        if check is not None and check.state in RUNNING:
            return _back("verify_page", "Wait for the check to finish; nothing was sent "
                                "yet.", token=token)
        if check is not None:
            check.skip_unreachable = request.form.get("skip_unreachable") == "on"
        apply: Any = app.view_functions["apply"]
        resp: BaseResponse = apply(token=token)  # the page's own Apply, with its own checks
        return resp
