"""Keep secrets and terminal control sequences out of everything the tool shows or stores."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

MIN_PIECE = 8  # any run of this many characters of a secret is hidden
MASK = "***"

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_prefilter: re.Pattern[str] | None = None  # cheap test: can the text hold a piece at all?
_factory_installed = False


def add_secret(secret: str) -> None:
    """Hide `secret` (and every piece of it of MIN_PIECE characters or more) from now on,
    in every log record of the process and in every text passed through `scrub`."""
    secret = secret.strip()
    if not secret:
        return
    global _pattern, _prefilter
    with _lock:
        if secret in _secrets:
            return
        _secrets.add(secret)
        _pattern, _prefilter = _compile(_secrets), _compile_prefilter(_secrets)
    _install_record_factory()


def _compile(secrets: set[str]) -> re.Pattern[str]:
    pieces: set[str] = set()
    for s in secrets:
        if len(s) < MIN_PIECE:
            pieces.add(s)
        else:
            pieces.update(s[i:i + MIN_PIECE] for i in range(len(s) - MIN_PIECE + 1))
    # a lookahead finds every (overlapping) start, so a piece longer than 8 is covered whole
    alternatives = "|".join(re.escape(p) for p in sorted(pieces, key=len, reverse=True))
    return re.compile(f"(?=({alternatives}))")


def _compile_prefilter(secrets: set[str]) -> re.Pattern[str]:
    """Every 8-character piece of a secret holds one of its 4-grams that start at a multiple
    of 4, so a text holding none of those holds no piece (one fast C search, no lookahead)."""
    grams: set[str] = set()
    for s in secrets:
        if len(s) < MIN_PIECE:
            grams.add(s)
        else:
            grams.update(s[i:i + 4] for i in range(0, len(s) - 3, 4))
    return re.compile("|".join(re.escape(g) for g in sorted(grams)))


def scrub(text: str) -> str:
    """`text` with every secret, and every 8-character-or-longer piece of one, replaced."""
    pattern, prefilter = _pattern, _prefilter
    if pattern is None or prefilter is None or not text or prefilter.search(text) is None:
        return text
    spans: list[list[int]] = []
    for match in pattern.finditer(text):
        start, end = match.start(1), match.end(1)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


def scrub_value(value: Any) -> Any:
    """`scrub` for a str; any other value unchanged (for rows of mixed cells)."""
    return scrub(value) if isinstance(value, str) else value


# ---------------------------------------------------------------- logging


def _install_record_factory() -> None:
    """Scrub every log record as it is made, whatever logger or handler it goes to.

    A logging.Filter on a logger sees only records made by that very logger (not its
    children), and one on a handler misses handlers added later; the record factory sees all.
    """
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
        previous = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_scrubbing_factory(previous))


def _scrubbing_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub_record(record)
        return record

    return factory


def scrub_record(record: logging.LogRecord) -> None:
    """Replace the record's message (and traceback text) by their scrubbed form."""
    if _pattern is None:
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it later, scrub what we have
        message = str(record.msg)
    record.msg, record.args = scrub(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


class ScrubFilter(logging.Filter):
    """The same scrubbing as a filter, for a handler that was built before any secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


class TerminalFilter(ScrubFilter):
    """For a handler that writes to a terminal: also escape control characters, since a log
    line may quote a server's answer or a sheet's cell."""

    def filter(self, record: logging.LogRecord) -> bool:
        super().filter(record)
        record.msg = for_terminal(str(record.msg), multiline=True)
        if record.exc_text:
            record.exc_text = for_terminal(record.exc_text, multiline=True)
        return True


# ---------------------------------------------------------------- terminals

_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}
_CONTROL.update({c: f"\\u{c:04x}" for c in _BIDI})
_KEEP_NEWLINES = {k: v for k, v in _CONTROL.items() if k != 0x0A}
_JSON = {c: f"\\u{c:04x}" for c in _CONTROL}  # valid inside a JSON string


def for_terminal(text: str, *, multiline: bool = False, json_escapes: bool = False) -> str:
    """`text` safe to print: control characters (ESC, BEL, CSI, …) and bidi overrides shown
    as escapes (`\\x1b`), so nothing from a sheet or a server can drive the terminal; and
    secrets scrubbed. With `multiline`, newlines are kept; with `json_escapes`, the escapes
    are JSON's own (`\\u001b`), for text that is a JSON document."""
    table = _JSON if json_escapes else _KEEP_NEWLINES if multiline else _CONTROL
    return scrub(text).translate(table)
