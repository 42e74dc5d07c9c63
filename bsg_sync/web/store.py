"""The web page's own small SQLite file (mappings per header set, upload names per run) and
read-only queries of the state store's run history."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from bsg_sync.errors import StateStoreError
from bsg_sync.models import Action, RowResult, Status

WEB_DB_NAME = "bsg-sync-web.sqlite3"
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS mappings (
        header_key TEXT PRIMARY KEY, headers TEXT NOT NULL, toml TEXT NOT NULL,
        create_missing INTEGER NOT NULL, saved_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS run_names (
        run_id INTEGER PRIMARY KEY, filename TEXT NOT NULL)""",
    # keyed by the upload's stored path (random, unique), which the run records as its sheet:
    # written when a run starts, so even a run cut short is named, whatever the state store
    """CREATE TABLE IF NOT EXISTS sheet_names (
        sheet TEXT PRIMARY KEY, filename TEXT NOT NULL)""",
)
_RESULT_COLUMNS = (
    "row, contact_id, phone, action, status, error_code, error, changes, attempts, "
    "http_status, hlr_status, hlr_last_check"
)


def header_key(headers: Sequence[str]) -> str:
    """The same key for the same set of headers, whatever their order or case."""
    names = sorted({" ".join(h.casefold().split()) for h in headers if h.strip()})
    return hashlib.sha256(json.dumps(names, ensure_ascii=False).encode()).hexdigest()


class WebStore:
    """Remembered mappings (per header set) and the uploaded file name of each run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False)
            with self._conn:
                for sql in _SCHEMA:
                    self._conn.execute(sql)
            if os.name == "posix":
                os.chmod(path, 0o600)
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreError(f"cannot open the web page's store {path}: {exc}") from None

    def close(self) -> None:
        self._conn.close()

    def saved_mapping(self, headers: Sequence[str]) -> tuple[str, bool] | None:
        """The mapping TOML (and the create-missing choice) last used for this header set."""
        with self._lock:
            row = self._conn.execute(
                "SELECT toml, create_missing FROM mappings WHERE header_key = ?",
                (header_key(headers),),
            ).fetchone()
        return (str(row[0]), bool(row[1])) if row else None

    def save_mapping(self, headers: Sequence[str], toml: str, create_missing: bool) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO mappings VALUES (?, ?, ?, ?, ?)",
                (header_key(headers), json.dumps(list(headers)), toml, int(create_missing), _now()),
            )

    def name_run(self, run_id: int, filename: str) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO run_names VALUES (?, ?)", (run_id, filename))

    def name_sheet(self, sheet: str, filename: str) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO sheet_names VALUES (?, ?)", (sheet, filename)
            )

    def sheet_names(self, sheets: Sequence[str]) -> dict[str, str]:
        """The person's file name of each stored sheet path that this page uploaded."""
        wanted = sorted(set(sheets))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT sheet, filename FROM sheet_names WHERE sheet IN ({marks})", wanted
            ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def run_names(self) -> dict[int, str]:
        with self._lock:
            rows = self._conn.execute("SELECT run_id, filename FROM run_names").fetchall()
        return {int(r[0]): str(r[1]) for r in rows}


# --------------------------------------------------------------------------- run history


@dataclass(frozen=True)
class RunInfo:
    """One run as the state store recorded it."""

    id: int
    sheet: str
    sha256: str
    started_at: str
    ended_at: str | None
    options: dict[str, str]
    counts: dict[str, int]

    @property
    def dry_run(self) -> bool:
        return self.options.get("dry run") == "True"

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


@contextlib.contextmanager
def _read_only(state: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to the state store, or None when it does not exist yet."""
    if not state.is_file():
        yield None
        return
    try:
        conn = sqlite3.connect(f"file:{quote(str(state.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StateStoreError(f"cannot read the state store {state}: {exc}") from None
    try:
        yield conn
    except sqlite3.Error as exc:
        raise StateStoreError(f"cannot read the state store {state}: {exc}") from None
    finally:
        conn.close()


def _run_info(row: Sequence[object]) -> RunInfo:
    options = json.loads(str(row[5] or "{}"))
    counts = json.loads(str(row[6])) if row[6] else {}
    return RunInfo(
        id=int(str(row[0])),
        sheet=str(row[1]),
        sha256=str(row[2]),
        started_at=str(row[3]),
        ended_at=str(row[4]) if row[4] else None,
        options={str(k): str(v) for k, v in options.items()},
        counts={str(k): int(v) for k, v in counts.items()},
    )


_RUN_SQL = "SELECT id, sheet, sha256, started_at, ended_at, options, counts FROM runs"


def list_runs(state: Path, limit: int = 200) -> list[RunInfo]:
    """The most recent runs first."""
    with _read_only(state) as conn:
        if conn is None or not _has_runs(conn):
            return []
        rows = conn.execute(f"{_RUN_SQL} ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [_run_info(r) for r in rows]


def get_run(state: Path, run_id: int) -> RunInfo | None:
    with _read_only(state) as conn:
        if conn is None or not _has_runs(conn):
            return None
        row = conn.execute(f"{_RUN_SQL} WHERE id = ?", (run_id,)).fetchone()
    return _run_info(row) if row else None


def run_results(state: Path, run_id: int) -> list[RowResult]:
    """The row results of one run, in row order."""
    with _read_only(state) as conn:
        if conn is None or not _has_runs(conn):
            return []
        rows = conn.execute(
            f"SELECT {_RESULT_COLUMNS} FROM results WHERE run_id = ? ORDER BY row", (run_id,)
        ).fetchall()
    return [
        RowResult(
            row=int(r[0]),
            contact_id=r[1],
            phone=r[2],
            action=Action(r[3]),
            status=Status(r[4]),
            error_code=r[5],
            error=r[6],
            changes=r[7],
            attempts=int(r[8]),
            http_status=r[9],
            hlr_status=r[10],
            hlr_last_check=r[11],
        )
        for r in rows
    ]


def _has_runs(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'")
    return row.fetchone() is not None


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")
