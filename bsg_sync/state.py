"""SQLite state store: snapshot of contacts, what we wrote, runs, row results, the lock.

INTERFACE STUB — the signatures below are the contract other modules code against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bsg_sync.models import Account, Contact, Known, RowResult


def default_state_path() -> Path:
    """<user data dir>/bsg-sync/state.sqlite3 (platformdirs)."""
    raise NotImplementedError


@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    started_at: str


class StateStore:
    """Thread-safe (one connection per thread or a lock); every write commits at once."""

    def __init__(self, path: Path) -> None:
        raise NotImplementedError

    def close(self) -> None: ...
    def __enter__(self) -> StateStore: ...
    def __exit__(self, *exc: object) -> None: ...

    # --- lock (one sync per store); raises errors.LockHeld naming the holder
    def acquire_lock(self) -> None: ...
    def release_lock(self) -> None: ...

    # --- snapshot
    def save_seen(self, contacts: Iterable[Contact]) -> int: ...  # one transaction
    def record_written(self, contact: Contact) -> None: ...  # what we wrote AND BSG confirmed
    def load_known(self, ids: Iterable[int] | None = None) -> dict[int, Known]: ...
    def ids_by_phone(self, phones: Iterable[str]) -> dict[str, int]: ...
    def save_account(self, account: Account) -> None: ...
    def load_account(self) -> Account | None: ...

    # --- runs and results (journal)
    def begin_run(self, *, sheet: str, sheet_sha256: str, mapping: str,
                  options: Mapping[str, Any]) -> int: ...
    def record_result(self, run_id: int, result: RowResult,
                      confirmed: Contact | None = None) -> None:
        """Commit one row result; with `confirmed`, also the contact's new seen+written state,
        in the same transaction (this is the journal that makes a kill lose nothing)."""
    def end_run(self, run_id: int, counts: Mapping[str, int]) -> None: ...
    def run_results(self, run_id: int) -> list[RowResult]: ...
