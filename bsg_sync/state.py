"""SQLite state store: snapshot of contacts, what we wrote, runs, row results, the lock."""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from json.encoder import encode_basestring as _esc
from pathlib import Path
from typing import Any, NamedTuple

from platformdirs import user_data_dir

from bsg_sync.errors import LockHeld, StateStoreError
from bsg_sync.models import Account, Action, Contact, Field, Group, Known, RowResult, Status

log = logging.getLogger(__name__)

_CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit
_ENC = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

# Each entry upgrades the schema by one version (PRAGMA user_version = its index + 1).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE contacts (
            id INTEGER PRIMARY KEY, phone TEXT NOT NULL, fields TEXT NOT NULL,
            groups TEXT NOT NULL, hlr_status TEXT, hlr_last_check TEXT, seen_at TEXT,
            written TEXT, written_at TEXT)""",
        "CREATE INDEX contacts_phone ON contacts(phone)",
        """CREATE TABLE account (
            id INTEGER PRIMARY KEY CHECK (id = 1), fields TEXT NOT NULL, groups TEXT NOT NULL,
            saved_at TEXT NOT NULL)""",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, sheet TEXT NOT NULL, sha256 TEXT NOT NULL,
            mapping TEXT NOT NULL, options TEXT NOT NULL, started_at TEXT NOT NULL,
            ended_at TEXT, counts TEXT)""",
        """CREATE TABLE results (
            run_id INTEGER NOT NULL REFERENCES runs(id), row INTEGER NOT NULL,
            contact_id INTEGER, phone TEXT, action TEXT NOT NULL, status TEXT NOT NULL,
            error_code TEXT NOT NULL, error TEXT NOT NULL, changes TEXT NOT NULL,
            attempts INTEGER NOT NULL, http_status INTEGER, hlr_status TEXT,
            hlr_last_check TEXT, recorded_at TEXT NOT NULL, PRIMARY KEY (run_id, row))""",
        """CREATE TABLE lock (
            id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL,
            started_at TEXT NOT NULL)""",
    ),
    (  # 2: what each confirmed write changed: the contact before it (NULL: created) and after
        """CREATE TABLE writes (
            run_id INTEGER NOT NULL REFERENCES runs(id), row INTEGER NOT NULL,
            contact_id INTEGER NOT NULL, before TEXT, after TEXT NOT NULL,
            PRIMARY KEY (run_id, row))""",
        "CREATE INDEX writes_contact ON writes(contact_id)",
        "ALTER TABLE runs ADD COLUMN exit_code INTEGER",
    ),
)

_UPSERT_SEEN = """INSERT INTO contacts (id, phone, fields, groups, hlr_status, hlr_last_check,
    seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET phone = excluded.phone, fields = excluded.fields,
    groups = excluded.groups, hlr_status = excluded.hlr_status,
    hlr_last_check = excluded.hlr_last_check, seen_at = excluded.seen_at"""

_UPSERT_WRITTEN = """INSERT INTO contacts (id, phone, fields, groups, hlr_status, hlr_last_check,
    seen_at, written, written_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET phone = excluded.phone, fields = excluded.fields,
    groups = excluded.groups, hlr_status = excluded.hlr_status,
    hlr_last_check = excluded.hlr_last_check, seen_at = excluded.seen_at,
    written = excluded.written, written_at = excluded.written_at"""

_RESULT_COLUMNS = (
    "row, contact_id, phone, action, status, error_code, error, changes, attempts, "
    "http_status, hlr_status, hlr_last_check"
)


def default_state_path() -> Path:
    """<user data dir>/bsg-sync/state.sqlite3 (platformdirs)."""
    return Path(user_data_dir("bsg-sync", appauthor=False)) / "state.sqlite3"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fields_json(fields: Mapping[int, str]) -> str:
    # Hand-rolled because json.dumps costs ~3 µs a call, too slow for 500k-contact pulls.
    return "{" + ",".join([f'"{int(k)}":{_esc(v)}' for k, v in fields.items()]) + "}"


def _groups_json(groups: frozenset[int]) -> str:
    return "[" + ",".join([str(int(g)) for g in sorted(groups)]) + "]"


def _seen_row(c: Contact, now: str) -> tuple[Any, ...]:
    return (c.id, c.phone, _fields_json(c.fields), _groups_json(c.groups),
            c.hlr_status, c.hlr_last_check, now)


def _written_json(c: Contact) -> str:
    return _ENC.encode({"phone": c.phone, "fields": {str(k): v for k, v in c.fields.items()},
                        "groups": sorted(c.groups)})


def _load_fields(text: str) -> dict[int, str]:
    raw = json.loads(text)
    return {int(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _known_from_row(row: Sequence[Any]) -> Known:
    cid, phone, fields, groups, hlr, hlr_check, written = row
    seen = Contact(cid, phone, _load_fields(fields), frozenset(json.loads(groups)), hlr, hlr_check)
    return Known(seen, None if written is None else _contact_json(cid, written))


def _contact_json(cid: int, text: str) -> Contact:
    """A contact from _written_json's text (phone, fields, groups)."""
    w = json.loads(text)
    return Contact(cid, w["phone"], {int(k): str(v) for k, v in w["fields"].items()},
                   frozenset(w["groups"]))


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
    exit_code: int | None = None  # None: not finished (still running, or killed)

    @property
    def dry_run(self) -> bool:
        return self.options.get("dry run") == "True"

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


_RUN_SQL = ("SELECT id, sheet, sha256, started_at, ended_at, options, counts, exit_code "
            "FROM runs")


def run_info(row: Sequence[object]) -> RunInfo:
    """A RunInfo from a row of _RUN_SQL."""
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
        exit_code=None if row[7] is None else int(str(row[7])),
    )


class Write(NamedTuple):
    """One confirmed write of a run: the contact before it (None: created) and after."""

    row: int
    contact_id: int
    before: Contact | None
    after: Contact


def _result_from_row(row: Sequence[Any]) -> RowResult:
    r, cid, phone, action, status, code, error, changes, attempts, http, hlr, check = row
    return RowResult(r, cid, phone, Action(action), Status(status), code, error, changes,
                     attempts, http, hlr, check)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _describe(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return "it is read-only; check its permissions and those of its folder"
    if "full" in text:
        return "the disk is full; free some space"
    if "not a database" in text or "malformed" in text:
        return "it is not a valid bsg-sync state file (corrupt?); move it away or pass --state"
    if "locked" in text or "busy" in text:
        return "another process keeps it busy; try again when it has finished"
    return f"SQLite said: {text}"


@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    started_at: str


_INSERT_RESULT = (f"INSERT OR REPLACE INTO results (run_id, {_RESULT_COLUMNS}, recorded_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


_INSERT_WRITE = ("INSERT OR REPLACE INTO writes (run_id, row, contact_id, before, after) "
                 "VALUES (?, ?, ?, ?, ?)")


def _result_values(run_id: int, r: RowResult, now: str) -> tuple[object, ...]:
    return (run_id, r.row, r.contact_id, r.phone, Action(r.action).value,
            Status(r.status).value, r.error_code, r.error, r.changes, r.attempts,
            r.http_status, r.hlr_status, r.hlr_last_check, now)


class StateStore:
    """Thread-safe (one connection guarded by a lock); every write commits at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._mutex = threading.Lock()
        self._holds_lock = False
        self._conn = self._open()
        try:
            self._configure()
            self._migrate()
        except StateStoreError:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ plumbing

    def _fail(self, action: str, exc: BaseException) -> StateStoreError:
        reason = _describe(exc) if isinstance(exc, sqlite3.Error) else str(exc)
        return StateStoreError(f"Cannot {action} the state store {self.path}: {reason}.")

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            return sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise self._fail("open", exc) from exc

    def _configure(self) -> None:
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: bulk pulls touch many pages
        except sqlite3.Error as exc:
            raise self._fail("open", exc) from exc
        if str(mode).lower() != "wal":
            raise StateStoreError(f"Cannot open the state store {self.path}: SQLite refused "
                                  f"WAL mode (got {mode}); put it on a local disk.")
        self._restrict_permissions()

    def _restrict_permissions(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            p = Path(f"{self.path}{suffix}")
            try:
                if p.exists() and p.stat().st_mode & 0o077:
                    p.chmod(0o600)
            except OSError as exc:  # not ours to change: say so, but it still works
                log.warning("could not restrict permissions of %s: %s", p, exc)

    def _migrate(self) -> None:
        with self._tx("upgrade") as cur:
            version = cur.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StateStoreError(
                    f"The state store {self.path} was written by a newer bsg-sync (schema "
                    f"{version}); upgrade bsg-sync or pass --state with another path.")
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number]:
                    cur.execute(statement)
                cur.execute(f"PRAGMA user_version = {number + 1}")
                log.info("state store %s migrated to schema %d", self.path, number + 1)

    @contextmanager
    def _tx(self, action: str) -> Iterator[sqlite3.Cursor]:
        """One write transaction under the mutex; sqlite errors become StateStoreError."""
        with self._mutex:
            try:
                cur = self._conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    self._conn.rollback()
                    raise
                cur.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise self._fail(action, exc) from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._mutex:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._fail("read", exc) from exc

    def close(self) -> None:
        if self._holds_lock:
            self.release_lock()
        with self._mutex:
            self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ lock

    def lock_holder(self) -> LockInfo | None:
        rows = self._query("SELECT pid, host, started_at FROM lock")
        return LockInfo(*rows[0]) if rows else None

    def acquire_lock(self) -> None:
        """Take the one-sync-per-store lock; raise LockHeld naming a live holder."""
        if self._holds_lock:
            return
        me = LockInfo(os.getpid(), socket.gethostname(), _now())
        with self._tx("lock") as cur:
            row = cur.execute("SELECT pid, host, started_at FROM lock").fetchone()
            if row is not None:
                holder = LockInfo(*row)
                if holder.host != me.host or _pid_alive(holder.pid):
                    raise self._held(holder)
                log.warning("taking over the lock of %s left by pid %d (no longer running)",
                            self.path, holder.pid)
            cur.execute("INSERT OR REPLACE INTO lock (id, pid, host, started_at) "
                        "VALUES (1, ?, ?, ?)", (me.pid, me.host, me.started_at))
        self._holds_lock = True

    def _held(self, h: LockInfo) -> LockHeld:
        return LockHeld(
            f"another sync holds {self.path}: pid {h.pid} on host {h.host} since "
            f"{h.started_at}; wait for it to finish, or if that process is gone, clear the "
            f"lock with: sqlite3 '{self.path}' 'DELETE FROM lock'")

    def release_lock(self) -> None:
        with self._tx("unlock") as cur:
            cur.execute("DELETE FROM lock WHERE pid = ? AND host = ?",
                        (os.getpid(), socket.gethostname()))
        self._holds_lock = False

    # ------------------------------------------------------------------ snapshot

    def save_seen(self, contacts: Iterable[Contact]) -> int:
        """Store what BSG returned (keeping what we wrote), in one transaction."""
        now = _now()
        count = 0

        def rows() -> Iterator[tuple[Any, ...]]:
            nonlocal count
            for c in contacts:
                count += 1
                yield _seen_row(c, now)

        with self._tx("save contacts to") as cur:
            cur.executemany(_UPSERT_SEEN, rows())
        return count

    def record_written(self, contact: Contact) -> None:
        """What we wrote AND BSG confirmed: it is both the seen and the written state."""
        with self._tx("save a contact to") as cur:
            self._upsert_written(cur, contact)

    @staticmethod
    def _upsert_written(cur: sqlite3.Cursor, contact: Contact) -> None:
        now = _now()
        cur.execute(_UPSERT_WRITTEN, (*_seen_row(contact, now), _written_json(contact), now))

    def load_known(self, ids: Iterable[int] | None = None) -> dict[int, Known]:
        base = ("SELECT id, phone, fields, groups, hlr_status, hlr_last_check, written "
                "FROM contacts")
        if ids is None:
            return {r[0]: _known_from_row(r) for r in self._query(base)}
        wanted = sorted(set(ids))
        out: dict[int, Known] = {}
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for r in self._query(f"{base} WHERE id IN ({marks})", chunk):
                out[r[0]] = _known_from_row(r)
        return out

    def ids_by_phone(self, phones: Iterable[str]) -> dict[str, int]:
        """Snapshot lookup; where a phone appears twice, the most recently seen contact wins."""
        wanted = sorted(set(phones))
        out: dict[str, int] = {}
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT phone, id FROM contacts WHERE phone IN ({marks}) "
                               "ORDER BY seen_at, id", chunk)
            out.update((phone, cid) for phone, cid in rows)
        return out

    def contact_ids(self) -> set[int]:
        return {r[0] for r in self._query("SELECT id FROM contacts")}

    def forget_contacts(self, ids: Iterable[int]) -> int:
        """Drop contacts that BSG no longer has (seen and written state alike)."""
        rows = [(i,) for i in set(ids)]
        with self._tx("remove contacts from") as cur:
            cur.executemany("DELETE FROM contacts WHERE id = ?", rows)
        return len(rows)

    def count_contacts(self) -> int:
        return int(self._query("SELECT count(*) FROM contacts")[0][0])

    def save_account(self, account: Account) -> None:
        fields = _ENC.encode([{"id": f.id, "name": f.name, "type": f.type}
                              for f in account.fields])
        groups = _ENC.encode([{"id": g.id, "name": g.name} for g in account.groups])
        with self._tx("save the account to") as cur:
            cur.execute("INSERT OR REPLACE INTO account (id, fields, groups, saved_at) "
                        "VALUES (1, ?, ?, ?)", (fields, groups, _now()))

    def load_account(self) -> Account | None:
        rows = self._query("SELECT fields, groups FROM account WHERE id = 1")
        if not rows:
            return None
        fields = tuple(Field(f["id"], f["name"], f.get("type", "text"))
                       for f in json.loads(rows[0][0]))
        groups = tuple(Group(g["id"], g["name"]) for g in json.loads(rows[0][1]))
        return Account(fields, groups)

    # ------------------------------------------------------------------ runs and results

    def begin_run(self, *, sheet: str, sheet_sha256: str, mapping: str,
                  options: Mapping[str, Any]) -> int:
        with self._tx("start a run in") as cur:
            cur.execute("INSERT INTO runs (sheet, sha256, mapping, options, started_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (sheet, sheet_sha256, mapping, json.dumps(dict(options), default=str),
                         _now()))
            return int(cur.lastrowid or 0)

    def record_result(self, run_id: int, result: RowResult,
                      confirmed: Contact | None = None, before: Contact | None = None) -> None:
        """Commit one row result; with `confirmed`, also the contact's new seen+written state
        and the write's pre-image `before` (None: the run created it), in the same
        transaction (this is the journal that makes a kill lose nothing, and undo possible)."""
        with self._tx("record a result in") as cur:
            cur.execute(_INSERT_RESULT, _result_values(run_id, result, _now()))
            if confirmed is not None:
                self._upsert_written(cur, confirmed)
                cur.execute(_INSERT_WRITE, (run_id, result.row, confirmed.id,
                                            None if before is None else _written_json(before),
                                            _written_json(confirmed)))

    def runs(self, limit: int = 200) -> list[RunInfo]:
        """The most recent runs first."""
        return [run_info(r) for r in self._query(f"{_RUN_SQL} ORDER BY id DESC LIMIT ?",
                                                 (limit,))]

    def run(self, run_id: int) -> RunInfo | None:
        rows = self._query(f"{_RUN_SQL} WHERE id = ?", (run_id,))
        return run_info(rows[0]) if rows else None

    def run_writes(self, run_id: int) -> list[Write]:
        """The confirmed writes of one run, in row order, with their pre-images."""
        rows = self._query("SELECT row, contact_id, before, after FROM writes WHERE run_id = ? "
                           "ORDER BY row", (run_id,))
        return [Write(r, cid, None if b is None else _contact_json(cid, b), _contact_json(cid, a))
                for r, cid, b, a in rows]

    def record_results(self, run_id: int, results: Iterable[RowResult]) -> None:
        """Commit many results that confirm no write (unchanged, invalid, …) in one transaction."""
        now = _now()
        values = [_result_values(run_id, r, now) for r in results]
        with self._tx("record results in") as cur:
            cur.executemany(_INSERT_RESULT, values)

    def end_run(self, run_id: int, counts: Mapping[str, int],
                exit_code: int | None = None) -> None:
        with self._tx("finish a run in") as cur:
            cur.execute("UPDATE runs SET ended_at = ?, counts = ?, exit_code = ? WHERE id = ?",
                        (_now(), json.dumps(dict(counts)), exit_code, run_id))

    def run_results(self, run_id: int) -> list[RowResult]:
        rows = self._query(f"SELECT {_RESULT_COLUMNS} FROM results WHERE run_id = ? "
                           "ORDER BY row", (run_id,))
        return [_result_from_row(r) for r in rows]

    def last_run_id(self) -> int | None:
        rows = self._query("SELECT max(id) FROM runs")
        return int(rows[0][0]) if rows and rows[0][0] is not None else None
