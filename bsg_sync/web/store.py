"""The web page's own small SQLite file (mappings per header set, upload names per run) and
the state store's run history, read through StateStore."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from bsg_sync.errors import StateStoreError
from bsg_sync.models import RowResult
from bsg_sync.state import RunInfo, StateStore
from bsg_sync.sync import now_text

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
                (header_key(headers), json.dumps(list(headers)), toml, int(create_missing), now_text()),
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
# through StateStore, the one reader of the state store's tables; a store that does not
# exist yet is not created by looking at History


def list_runs(state: Path, limit: int = 200) -> list[RunInfo]:
    """The most recent runs first."""
    if not state.is_file():
        return []
    with StateStore(state) as store:
        return store.runs(limit)


def get_run(state: Path, run_id: int) -> RunInfo | None:
    if not state.is_file():
        return None
    with StateStore(state) as store:
        return store.run(run_id)


def run_results(state: Path, run_id: int) -> list[RowResult]:
    """The row results of one run, in row order."""
    if not state.is_file():
        return []
    with StateStore(state) as store:
        return store.run_results(run_id)

