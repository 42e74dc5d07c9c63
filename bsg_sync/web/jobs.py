"""Runs a sync (or dry run) in a background thread, one at a time, with live progress."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bsg_sync.errors import BsgSyncError
from bsg_sync.models import Action, RowResult, Status
from bsg_sync.sync import Hooks, SyncOptions, SyncOutcome, run_sync

log = logging.getLogger(__name__)


class RunInProgress(Exception):
    """Another run (started from this page) has not finished yet."""


@dataclass
class Job:
    """One run and its live counters (read by the status endpoint while the thread writes)."""

    id: str  # unguessable: it is in the progress page's URL
    upload: str
    dry_run: bool
    owner: str = ""  # the browser session that started it
    filename: str = ""  # the person's name for the sheet
    sheet: Path | None = None  # where the upload is stored (the run records this path)
    started_at: datetime = field(default_factory=lambda: datetime.now().astimezone())
    state: str = "running"  # running | done | failed
    stage: str = "starting"
    total: int | None = None  # rows to send, known once the plan is made
    done: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    sending_since: float | None = None
    outcome: SyncOutcome | None = None
    error: str = ""
    hooks: Hooks = field(default_factory=Hooks)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_result(self, result: RowResult) -> None:
        with self._lock:  # executor workers call this concurrently
            self.counts[getattr(result.status, "value", str(result.status))] += 1
            sent = result.status != Status.NOT_SENT  # a row a stop held back is not done
            if result.action in (Action.UPDATE, Action.CREATE) and sent and not self.dry_run:
                self.done += 1

    def in_their_words(self, text: str) -> str:
        """The text with the stored sheet's path and name (ours) replaced by the person's."""
        if self.sheet is not None and self.filename:
            text = text.replace(str(self.sheet), self.filename)
            text = text.replace(self.sheet.name, self.filename)
        return text

    def on_stage(self, stage: str) -> None:
        self.stage = self.in_their_words(stage)

    def on_plan(self, n: int) -> None:
        self.total = n
        self.sending_since = time.monotonic()
        self.stage = "sending"

    def progress(self) -> dict[str, Any]:
        """The JSON the page polls: state, stage, rows done of total, rows/s, ETA, counts."""
        with self._lock:
            counts, done = dict(self.counts), self.done
        rate = eta = None
        if self.sending_since is not None and done:
            elapsed = max(time.monotonic() - self.sending_since, 1e-6)
            rate = done / elapsed
            eta = max((self.total or 0) - done, 0) / rate
        return {
            "id": self.id,
            "state": self.state,
            "stage": self.stage,
            "dry_run": self.dry_run,
            "total": self.total,
            "done": done,
            "rows_per_s": None if rate is None else round(rate, 1),
            "eta_s": None if eta is None else round(eta, 1),
            "elapsed_s": round(time.monotonic() - self.started, 1),
            "counts": counts,
            "error": self.error,
            "stopped": self.hooks.stop.is_set(),  # the person pressed Stop
        }


class JobRunner:
    """Starts jobs in threads, refusing a second one while the first runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._current: Job | None = None

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def current(self) -> Job | None:
        """The latest job started (running or just finished), or None."""
        with self._lock:
            return self._current

    def running(self) -> Job | None:
        job = self.current()
        return job if job is not None and job.state == "running" else None

    def busy_uploads(self) -> set[str]:
        with self._lock:
            current = self._current
        return {current.upload} if current is not None and current.state == "running" else set()

    def start(
        self,
        upload: str,
        opts: SyncOptions,
        api_key: str,
        on_done: Callable[[Job], None],
        owner: str = "",
        filename: str = "",
        work: Callable[[Hooks], SyncOutcome] | None = None,
    ) -> Job:
        """Run `work` (default: run_sync of `opts`) in a thread; RunInProgress if one runs."""
        with self._lock:
            if self._current is not None and self._current.state == "running":
                raise RunInProgress(
                    "a run is already in progress; wait for it to finish, then try again"
                )
            job = Job(secrets.token_urlsafe(16), upload, opts.dry_run, owner, filename, opts.sheet)
            self._jobs[job.id] = job
            self._current = job
        job.hooks = Hooks(
            on_stage=job.on_stage,
            on_plan=job.on_plan,
            on_result=job.on_result,
        )
        thread = threading.Thread(
            target=self._run, args=(job, opts, api_key, on_done, work), name=f"bsg-sync-web-{job.id}"
        )
        thread.daemon = True
        thread.start()
        return job

    def stop_all(self, timeout: float = 10.0) -> None:
        """Ask a running job to stop dispatching (rows not sent are `not_sent`)."""
        with self._lock:
            current = self._current
        if current is not None and current.state == "running":
            current.hooks.stop.set()

    def _run(
        self,
        job: Job,
        opts: SyncOptions,
        api_key: str,
        on_done: Callable[[Job], None],
        work: Callable[[Hooks], SyncOutcome] | None,
    ) -> None:
        try:
            job.outcome = (
                run_sync(opts, api_key, job.hooks) if work is None else work(job.hooks)
            )
            if job.outcome.aborted is not None:
                job.error = job.in_their_words(str(job.outcome.aborted))
        except BsgSyncError as exc:
            job.error = job.in_their_words(str(exc))
        except Exception as exc:  # a bug must not leave the page polling forever
            log.exception("web run %s failed", job.id)
            job.error = f"unexpected error ({type(exc).__name__}); see the server log"
        try:
            on_done(job)
        except Exception:
            log.exception("web run %s: cannot finish", job.id)
        job.stage = "finished"
        job.state = "done" if job.outcome is not None else "failed"
