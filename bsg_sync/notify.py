"""Alerts after a run: when to tell someone, the message (counts, codes, row numbers), delivery.

Delivery goes through apprise, one URL scheme for many services (Slack `slack://`, Microsoft
Teams `workflow://`/`msteams://`, email `mailto://`/`mailtos://` over SMTP with TLS, a JSON
webhook `json://`/`jsons://`, ntfy `ntfy://`, healthcheck-style pings, ...). The message holds
no API key, no phone number and no field value: row numbers, status counts and error codes
only, plus the run's own sentence when it stopped. A notification that cannot be delivered is
retried, logged (with the URL's secrets hidden) and never changes the run's result.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bsg_sync.errors import BsgSyncError, ErrorCode, UsageError
from bsg_sync.models import RowResult, Status, Threshold

if TYPE_CHECKING:
    from bsg_sync.sync import SyncOutcome

log = logging.getLogger(__name__)

NOTIFY_ENV = "BSG_SYNC_NOTIFY"
PROBLEM_ROWS_SHOWN = 5
TOP_CODES_SHOWN = 5
PROBLEM_STATUSES = frozenset({Status.INVALID, Status.NOT_FOUND, Status.FAILED})

_LONG_NUMBER = re.compile(r"\+?\d[\d ().-]{5,}\d")  # anything that could be a phone number


class NotifyOn(str, Enum):
    """When to send: `failure` (the run failed or stopped: exit 2, 3 or 130), `problems`
    (also when rows need fixing: exit 1), `always` (every run)."""

    FAILURE = "failure"
    PROBLEMS = "problems"
    ALWAYS = "always"


@dataclass(frozen=True)
class NotifySettings:
    """Where and when to tell; `failures` only alerts exit-1 runs past that many bad rows."""

    urls: tuple[str, ...] = ()
    on: NotifyOn = NotifyOn.PROBLEMS
    failures: Threshold | None = None
    attempts: int = 3
    retry_wait: float = 2.0  # seconds, doubled after each failed attempt


@dataclass(frozen=True)
class RunNews:
    """What a run did, as far as an alert may tell it."""

    command: str  # "sync", "verify", "undo"
    sheet: str  # the file's name, not its folder
    exit_code: int
    dry_run: bool = False
    counts: Mapping[str, int] = field(default_factory=dict)  # status -> rows
    error_codes: Mapping[str, int] = field(default_factory=dict)
    problem_rows: Sequence[tuple[int, str]] = ()  # (row number, error code), in row order
    reason: str = ""  # the run's own sentence when it failed or stopped
    duration_s: float | None = None
    report: str = ""  # where the report is

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def bad_rows(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in PROBLEM_STATUSES)


def problem_rows(results: Iterable[RowResult]) -> list[tuple[int, str]]:
    """(row, error code) of the rows someone should fix, in row order."""
    return sorted((r.row, r.error_code) for r in results if r.status in PROBLEM_STATUSES)


# --------------------------------------------------------------------------- when


def should_notify(settings: NotifySettings, news: RunNews) -> bool:
    """Whether this run's outcome is worth a message under `settings`."""
    if not settings.urls:
        return False
    if settings.on is NotifyOn.ALWAYS:
        return True
    if news.exit_code >= 2:
        return True
    if settings.on is NotifyOn.FAILURE or news.exit_code == 0:
        return False
    if settings.failures is None:
        return True
    return settings.failures.exceeded(news.bad_rows, max(news.rows, 1))


# --------------------------------------------------------------------------- what


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    failed: bool  # the run failed or stopped (apprise's "failure" type), else a warning/info


def _outcome(news: RunNews) -> str:
    if news.exit_code == 0:
        return "dry run ok" if news.dry_run else "ok"
    if news.exit_code == 1:
        return f"{news.bad_rows} row{'s' if news.bad_rows != 1 else ''} need fixing"
    if news.exit_code == 130:
        return "interrupted"
    if news.exit_code == 2:
        return "refused before sending (input or configuration)"
    return "failed or aborted"


def without_values(text: str) -> str:
    """A sentence with anything that could be a phone number masked."""
    return _LONG_NUMBER.sub("[number]", text)


def compose(news: RunNews) -> Message:
    """The alert: a title line, counts, top codes, first problem rows, duration, report."""
    title = f"bsg-sync {news.command} {news.sheet}: {_outcome(news)} (exit {news.exit_code})"
    lines: list[str] = []
    if news.reason:
        lines.append(without_values(news.reason))
    if news.counts:
        shown = ", ".join(f"{n} {s}" for s, n in news.counts.items() if n)
        lines.append(f"{news.rows} rows: {shown or 'none'}")
    if news.error_codes:
        top = list(news.error_codes.items())[:TOP_CODES_SHOWN]
        lines.append("top errors: " + ", ".join(f"{code} ({n})" for code, n in top))
    if news.problem_rows:
        lines.append("first rows to fix:")
        for row, code in news.problem_rows[:PROBLEM_ROWS_SHOWN]:
            lines.append(f"  row {row}: {code} - {ErrorCode.meaning_of(code)}")
        more = len(news.problem_rows) - PROBLEM_ROWS_SHOWN
        if more > 0:
            lines.append(f"  … and {more} more")
    if news.duration_s is not None:
        lines.append(f"duration: {news.duration_s:.1f} s")
    if news.report:
        lines.append(f"report: {news.report}")
    return Message(title, "\n".join(lines), failed=news.exit_code >= 2)


# --------------------------------------------------------------------------- where


def check_urls(urls: Sequence[str]) -> tuple[str, ...]:
    """The URLs, each one apprise understands; a bad one is a usage error before the run."""
    import apprise

    for url in urls:
        if apprise.Apprise.instantiate(url) is None:
            raise UsageError(
                f"--notify: {_private(url)} is not a notification URL apprise understands "
                "(e.g. json://host/path, mailtos://user:pass@host?to=a@b.c, slack://…); "
                "see https://github.com/caronc/apprise/wiki")
    return tuple(urls)


def urls_from_env(value: str | None) -> tuple[str, ...]:
    """BSG_SYNC_NOTIFY: several URLs separated by spaces."""
    return tuple((value or "").split())


def _private(url: str) -> str:
    """The URL with its secrets hidden, for logs and messages."""
    import apprise

    server: Any = apprise.Apprise.instantiate(url)
    if server is not None:
        return str(server.url(privacy=True))
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme}://…"


def deliver(settings: NotifySettings, message: Message, *,
            sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Send the message to every URL, retrying each; returns the URLs (secrets hidden) that
    could not be reached. Never raises: an alert must not change the run's outcome."""
    failed: list[str] = []
    for url in settings.urls:
        if not _deliver_one(url, message, settings, sleep):
            failed.append(_private(url))
    return failed


def _deliver_one(url: str, message: Message, settings: NotifySettings,
                 sleep: Callable[[float], None]) -> bool:
    wait = settings.retry_wait
    for attempt in range(1, max(1, settings.attempts) + 1):
        try:
            if _send(url, message):
                return True
        except Exception as exc:  # a plugin bug or a network error: log, never raise
            log.warning("notification to %s raised %s", _private(url), type(exc).__name__)
        if attempt < settings.attempts:
            log.info("notification to %s failed (attempt %d); retrying in %.1f s",
                     _private(url), attempt, wait)
            sleep(wait)
            wait *= 2
    log.warning("could not deliver the notification to %s after %d attempts",
                _private(url), settings.attempts)
    return False


def _send(url: str, message: Message) -> bool:
    import apprise

    # apprise's own log lines carry whole URLs (webhook tokens, SMTP passwords): ours say
    # what failed with the secrets hidden
    logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)

    sender = apprise.Apprise()
    if not sender.add(url):
        return False
    kind: Any = apprise.NotifyType.FAILURE if message.failed else apprise.NotifyType.WARNING
    return bool(sender.notify(title=message.title, body=message.body, notify_type=kind))


# --------------------------------------------------------------------------- from a run


def news_of_outcome(command: str, outcome: SyncOutcome) -> RunNews:
    """What a finished (or aborted) run tells."""
    s = outcome.summary
    return RunNews(command, Path(s.sheet).name, int(outcome.exit_code), dry_run=s.dry_run,
                   counts=dict(s.counts), error_codes=dict(s.error_codes),
                   problem_rows=problem_rows(outcome.results),
                   reason=str(outcome.aborted or ""), duration_s=s.duration_s,
                   report=str(s.report_path or ""))


def news_of_error(command: str, what: Path | str, exc: BsgSyncError,
                  duration_s: float | None = None) -> RunNews:
    """What a run that failed before it had results tells (exit 2 or 3, or interrupted)."""
    name = what.name if isinstance(what, Path) else what
    return RunNews(command, name, int(exc.exit_code), reason=str(exc), duration_s=duration_s)


def tell(settings: NotifySettings, news: RunNews) -> list[str]:
    """Send the alert when the settings ask for it; the URLs that could not be reached."""
    if not should_notify(settings, news):
        return []
    return deliver(settings, compose(news))
