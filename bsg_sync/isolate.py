"""Read a sheet in a child process with a memory and a time limit, so no file can take the caller down.

`read_sheet` checks what a file declares before parsing (`filecheck`), but parsers are large
and a damaged file may still find a way to allocate without bound or to abort (a Rust panic
in calamine prints a backtrace and kills the process). `read_sheet_isolated` runs the same
read in a fresh interpreter (`python -m bsg_sync.isolate`: no threads or state inherited,
about 0.2 s to start) that first sets its own `RLIMIT_AS` to `READ_MEMORY_LIMIT` (4 GiB;
`BSG_READ_MEMORY_MB` overrides) and is killed after `READ_TIME_LIMIT` (600 s;
`BSG_READ_TIMEOUT` overrides). A child that dies, is killed, aborts or outlasts its time
becomes one sentence (InputFileError, exit 2); the child's stderr (where a panic prints) is
logged at DEBUG, never shown. Its log records come back and are logged in the caller.

Where: every workbook (XLSX/XLSM/XLSB/XLS/ODS: native parsers) and every text file from
INLINE_TEXT_BYTES (8 MiB) up. A smaller CSV/TXT is read in the caller: Python's csv module
cannot abort, and 8 MiB of text makes at most a few hundred MB of rows; this keeps the
0.2 s start-up off the common small sheet.

The Sheet comes back on stdout as one joined string of cells plus row numbers. Measured by
bench/bench_isolate.py for a 100k x 12 XLSX on a loaded 2-core machine: 4.1 s isolated vs
3.3 s in-process, of which ~0.2 s is the child's start-up and 0.5-0.7 s the transport
(splitting 1.2 M cells again and rebuilding the rows; pickling the Sheet itself took 5-6 s).
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import subprocess
import sys
from array import array
from pathlib import Path
from typing import Any

import bsg_sync
from bsg_sync.errors import BsgSyncError, InputFileError
from bsg_sync.models import CellProblem, CompactRows, Sheet, SheetRow, paused_gc

log = logging.getLogger(__name__)

READ_MEMORY_LIMIT = 4 << 30
READ_TIME_LIMIT = 600.0
INLINE_TEXT_BYTES = 8 << 20
_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
_STDERR_TAIL = 4096
_SEP = "\x1e"  # joins the cells on the way back (a cell holding it takes the slow path)


def memory_limit_from_env() -> int:
    """READ_MEMORY_LIMIT, or BSG_READ_MEMORY_MB mebibytes."""
    text = os.environ.get("BSG_READ_MEMORY_MB", "").strip()
    return int(text) << 20 if text.isdigit() and int(text) > 0 else READ_MEMORY_LIMIT


def time_limit_from_env() -> float:
    """READ_TIME_LIMIT, or BSG_READ_TIMEOUT seconds."""
    text = os.environ.get("BSG_READ_TIMEOUT", "").strip()
    try:
        value = float(text)
    except ValueError:
        return READ_TIME_LIMIT
    return value if value > 0 else READ_TIME_LIMIT


def read_sheet_isolated(
    path: Path,
    *,
    memory_limit: int | None = None,
    time_limit: float | None = None,
    **read_sheet_kwargs: Any,
) -> Sheet:
    """`reader.read_sheet(path, **read_sheet_kwargs)` in a child process with limits."""
    path = Path(path)
    if _small_text(path):
        from bsg_sync.reader import read_sheet

        return read_sheet(path, **read_sheet_kwargs)
    memory = _effective(memory_limit or memory_limit_from_env())
    seconds = time_limit or time_limit_from_env()
    request = pickle.dumps((str(path), read_sheet_kwargs, memory))
    reply = _run_child(path, request, memory, seconds)
    return _unpack(reply, path, memory)


def _effective(memory: int) -> int:
    """The child inherits this process's hard RLIMIT_AS: it cannot get more than that."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    return memory if hard == resource.RLIM_INFINITY else min(memory, hard)


def _small_text(path: Path) -> bool:
    """A text file below INLINE_TEXT_BYTES, or no file at all (read_sheet says what is wrong)."""
    try:
        if path.stat().st_size >= INLINE_TEXT_BYTES or path.is_dir():
            return not path.is_file()
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return True
    return not head.startswith(_WORKBOOK_MAGIC)


def _child_env() -> dict[str, str]:
    """The caller's environment, with this very package first on the child's path."""
    env = dict(os.environ)
    root = str(Path(bsg_sync.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _run_child(path: Path, request: bytes, memory: int, seconds: float) -> tuple[Any, ...]:
    command = [sys.executable, "-m", "bsg_sync.isolate"]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=_child_env(), close_fds=True,
    ) as child:
        try:
            out, err = child.communicate(request, timeout=seconds)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise _too_slow(path, seconds) from None
    if err:
        log.debug("the sheet reader's own output: %s", err[-_STDERR_TAIL:].decode("utf-8", "replace"))
    try:
        reply: tuple[Any, ...] = pickle.loads(out)
    except Exception:  # no answer: the child died (memory limit, abort, kill)
        log.debug("reading %s: the child ended with exit code %s", path, child.returncode)
        raise _too_big(path, memory) from None
    return reply


def _too_big(path: Path, memory: int) -> InputFileError:
    return InputFileError(
        f"{path} needs more memory than {_size(memory)} to read; it is probably "
        "damaged or not made by a spreadsheet program: open it in Excel and save a new copy, "
        "or export it as .csv."
    )


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _too_slow(path: Path, seconds: float) -> InputFileError:
    return InputFileError(
        f"{path} takes longer than {seconds:.0f} s to read; it is probably damaged or not made "
        "by a spreadsheet program: open it in Excel and save a new copy, or export it as .csv."
    )


# --------------------------------------------------------------------------- the child


def child_main() -> None:
    """`python -m bsg_sync.isolate`: a pickled request on stdin, a pickled reply on stdout."""
    path, kwargs, memory = pickle.loads(sys.stdin.buffer.read())
    reply_to = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into the reply
    sys.stdout = sys.stderr
    _limit_memory(memory)
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    with paused_gc():
        reply = _read_in_child(path, kwargs)
    root.removeHandler(handler)
    kept = [(r.name, r.levelno, r.getMessage()) for r in records]
    data = pickle.dumps((*reply, kept), protocol=pickle.HIGHEST_PROTOCOL)
    del reply  # the rows go before their pickled copy is written: one copy at a time
    reply_to.write(data)
    reply_to.flush()


def _read_in_child(path: str, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    from bsg_sync.reader import read_sheet

    try:
        return ("ok", _pack(read_sheet(Path(path), **kwargs)))
    except BsgSyncError as exc:
        return ("error", type(exc), str(exc))
    except MemoryError:
        return ("memory", None)
    except BaseException as exc:  # a pyo3 PanicException is a BaseException
        return ("crash", f"{type(exc).__name__}: {exc}"[:300])


def _limit_memory(memory: int) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_effective(memory), hard))


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.INFO)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("bsg_sync"):
            self.records.append(record)


# --------------------------------------------------------------------------- transport


def _pack(sheet: Sheet) -> tuple[Any, ...]:
    """The Sheet as a few large objects: one joined string of every cell (split again in the
    caller) instead of a million small ones, which pickle about ten times slower."""
    meta = (str(sheet.path), sheet.headers, sheet.sha256, sheet.sheet_name, sheet.encoding,
            sheet.delimiter, sheet.header_row)
    rows = sheet.rows
    if isinstance(rows, CompactRows):  # already a few large objects: sent as they are
        numbers_array, columns, ends, held = rows.parts()
        compact = (columns, [(e.typecode, e.tobytes()) for e in ends])
        problems = {i: [tuple(p) for p in found] for i, found in held.items()}
        return meta, ("compact", compact), numbers_array.tobytes(), problems
    width = len(sheet.headers)
    joined = _SEP.join(itertools.chain.from_iterable(r.values for r in rows))
    if rows and all(len(r.values) == width for r in rows) and (
        joined.count(_SEP) == len(rows) * width - 1
    ):
        cells: tuple[str, Any] = ("joined", joined)
    else:  # a cell holds the separator itself (a control character): plain tuples
        cells = ("tuples", [r.values for r in rows])
    numbers = array("q", (r.row for r in rows)).tobytes()
    problems = {i: [tuple(p) for p in r.problems] for i, r in enumerate(rows) if r.problems}
    return meta, cells, numbers, problems


def _unpack_sheet(body: tuple[Any, ...]) -> Sheet:
    with paused_gc():
        return _build_sheet(body)


def _build_sheet(body: tuple[Any, ...]) -> Sheet:
    meta, (how, cells), numbers, problems = body
    path, headers, sha256, sheet_name, encoding, delimiter, header_row = meta
    width = len(headers)
    if how == "compact":
        columns, ends = cells
        found = {int(i): tuple(CellProblem(*p) for p in ps) for i, ps in problems.items()}
        compact = CompactRows(array("q", numbers), columns,
                              [array(code, raw) for code, raw in ends], found)
        return Sheet(Path(path), headers, compact, sha256, sheet_name=sheet_name,
                     encoding=encoding, delimiter=delimiter, header_row=header_row)
    if how == "joined":
        flat = cells.split(_SEP)
        values = [tuple(flat[i : i + width]) for i in range(0, len(flat), width)]
    else:
        values = cells
    rows = [SheetRow(n, v) for n, v in zip(array("q", numbers), values, strict=True)]
    for i, found in problems.items():
        rows[i] = SheetRow(rows[i].row, rows[i].values, tuple(CellProblem(*p) for p in found))
    return Sheet(Path(path), headers, rows, sha256, sheet_name=sheet_name, encoding=encoding,
                 delimiter=delimiter, header_row=header_row)


def _unpack(reply: tuple[Any, ...], path: Path, memory: int) -> Sheet:
    kind, *body, records = reply
    for name, level, message in records:
        logging.getLogger(name).log(level, "%s", message)
    if kind == "ok":
        return _unpack_sheet(body[0])
    if kind == "error":
        error_type, message = body
        raise error_type(message)
    if kind == "memory":
        raise _too_big(path, memory)
    raise InputFileError(
        f"{path} cannot be read ({body[0]}); open it in Excel and save a new copy, "
        "or export it as .csv."
    )


__all__ = ["READ_MEMORY_LIMIT", "READ_TIME_LIMIT", "read_sheet_isolated"]

if __name__ == "__main__":
    child_main()
