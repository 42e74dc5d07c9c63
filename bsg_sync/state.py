"""SQLite state store: snapshot of contacts, what we wrote, runs, row results, the lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from json.encoder import encode_basestring as _esc
from pathlib import Path
from typing import Any, NamedTuple

from platformdirs import user_data_dir

from bsg_sync.errors import LockHeld, StateStoreError
from bsg_sync.models import (
    Account,
    Action,
    Contact,
    Field,
    Group,
    Known,
    KnownBook,
    KnownBuilder,
    RowResult,
    Status,
)
from bsg_sync.scrub import scrub

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
    (
        # finished | aborted | interrupted (a killed run, closed by the next one)
        "ALTER TABLE runs ADD COLUMN outcome TEXT",
        "CREATE INDEX runs_started ON runs(started_at)",
    ),
    (  # 3: what each confirmed write changed: the contact before it (NULL: created) and after
        """CREATE TABLE writes (
            run_id INTEGER NOT NULL REFERENCES runs(id), row INTEGER NOT NULL,
            contact_id INTEGER NOT NULL, before TEXT, after TEXT NOT NULL,
            PRIMARY KEY (run_id, row))""",
        "CREATE INDEX writes_contact ON writes(contact_id)",
        "ALTER TABLE runs ADD COLUMN exit_code INTEGER",
    ),
    (  # 4: HLR verification: open verifications, their journalled lookups, the result cache
        """CREATE TABLE hlr_verifications (
            id INTEGER PRIMARY KEY AUTOINCREMENT, token TEXT NOT NULL, started_at TEXT NOT NULL,
            ended_at TEXT)""",
        """CREATE TABLE hlr_lookups (
            verification INTEGER NOT NULL REFERENCES hlr_verifications(id), msisdn TEXT NOT NULL,
            reference TEXT NOT NULL, lookup_id TEXT, price TEXT, currency TEXT, status TEXT,
            error TEXT, PRIMARY KEY (verification, msisdn))""",
        """CREATE TABLE hlr_cache (
            msisdn TEXT PRIMARY KEY, status TEXT NOT NULL, network TEXT NOT NULL,
            country TEXT NOT NULL, ported INTEGER NOT NULL, roaming INTEGER NOT NULL,
            verified_at TEXT NOT NULL, price TEXT NOT NULL, currency TEXT NOT NULL,
            lookup_id TEXT NOT NULL)""",
    ),
    (  # 5: each run's HLR check results, one per number of its rows (the report's verify_*)
        """CREATE TABLE run_verified (
            run_id INTEGER NOT NULL REFERENCES runs(id), msisdn TEXT NOT NULL,
            status TEXT NOT NULL, network TEXT NOT NULL, country TEXT NOT NULL,
            ported INTEGER NOT NULL, roaming INTEGER NOT NULL, verified_at TEXT NOT NULL,
            cost TEXT NOT NULL, currency TEXT NOT NULL, cached INTEGER NOT NULL,
            PRIMARY KEY (run_id, msisdn))""",
    ),
)

# How long results are kept (README "Nightly use"): real runs, and dry runs / web previews.
RETENTION_DAYS = 90.0
DRY_RUN_RETENTION_DAYS = 7.0

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
# a run's results with the HLR check of each row's phone (run_verified), for show / reports
_RESULTS_VERIFIED_SQL = (
    "SELECT " + ", ".join(f"r.{c.strip()}" for c in _RESULT_COLUMNS.split(",")) + ", "
    "v.status, v.network, v.country, v.ported, v.roaming, v.verified_at, v.cost "
    "FROM results r LEFT JOIN run_verified v ON v.run_id = r.run_id AND v.msisdn = r.phone "
    "WHERE r.run_id = ? ORDER BY r.row"
)
_VERIFIED_COLUMNS = ("msisdn, status, network, country, ported, roaming, verified_at, cost, "
                     "currency, cached")


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


def _known_by_id(rows: Sequence[Sequence[Any]]) -> KnownBook:
    """`_known_from_row` of each row, by id, held as a KnownBook (a Known made when read):
    each distinct groups text decoded once, each distinct set of field keys converted once,
    and the fields by the JSON scanner (a json.loads per cell was most of loading the known
    state of a 100k-contact book)."""
    fields = _fields_of_rows([r[2] for r in rows])
    groups_of: dict[str, frozenset[int]] = {}
    keys_of: dict[tuple[str, ...], tuple[int, ...]] = {}
    book = KnownBuilder()
    add = book.add
    for (cid, phone, _, groups, hlr, hlr_check, written), raw in zip(rows, fields, strict=True):
        g = groups_of.get(groups)
        if g is None:
            g = groups_of[groups] = frozenset(json.loads(groups))
        if isinstance(raw, dict) and raw:
            keys = tuple(raw)
            ids = keys_of.get(keys)
            if ids is None:
                ids = keys_of[keys] = tuple(map(int, keys))
            values: Iterable[str] = map(str, raw.values())
        else:
            ids, values = (), ()
        add(cid, phone, ids, values, g, hlr, hlr_check,
            None if written is None else _contact_json(cid, written))
    return book.build()


# what json.loads runs, without its wrappers (not in the stubs)
_scan_json: Callable[[str, int], tuple[Any, int]] = (
    json.JSONDecoder().scan_once)  # type: ignore[attr-defined]


def _fields_of_rows(texts: list[str]) -> list[Any]:
    """json.loads of each text: the decoder's scanner called directly (half the cost of a
    json.loads call), and json.loads itself for any text the scanner does not read whole
    (leading or trailing space, or not JSON: the same value or the same error)."""
    out: list[Any] = []
    for text in texts:
        try:
            value, end = _scan_json(text, 0)
        except (StopIteration, ValueError):
            end = -1
        out.append(value if end == len(text) else json.loads(text))
    return out


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
    r, cid, phone, action, status, code, error, changes, attempts, http, hlr, check = row[:12]
    return RowResult(r, cid, phone, Action(action), Status(status), code, error, changes,
                     attempts, http, hlr, check, *row[12:])


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
class PruneStats:
    """What a prune removed."""

    runs: int
    results: int


def _is_dry_run(options: str) -> bool:
    try:
        return str(json.loads(options).get("dry run")) == "True"
    except (ValueError, AttributeError):
        return False


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
            Status(r.status).value, r.error_code, scrub(r.error), scrub(r.changes), r.attempts,
            r.http_status, r.hlr_status, r.hlr_last_check, now)


class StateStore:
    """Thread-safe (one connection guarded by a lock); every write commits at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._mutex = threading.Lock()
        self._holds_lock = False
        self._lock_fd: int | None = None  # the flock'd <store>.lock while we hold the lock
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
        self._unlock_file()
        with self._mutex:
            self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ lock

    @property
    def lock_path(self) -> Path:
        """The file whose kernel lock (flock) is the one-sync-per-store lock."""
        return Path(f"{self.path}.lock")

    def lock_holder(self) -> LockInfo | None:
        """Who took the lock last (the lock row); only meaningful while someone holds it."""
        rows = self._query("SELECT pid, host, started_at FROM lock")
        return LockInfo(*rows[0]) if rows else None

    def acquire_lock(self) -> None:
        """Take the one-sync-per-store lock; raise LockHeld naming its holder.

        The lock is the kernel's (flock on <store>.lock), so it goes when its process ends,
        however it ends; the lock row only says who holds it, for the message."""
        if self._holds_lock:
            return
        fd = self._lock_file()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._held(self._holder_of(self.lock_path)) from None
        except OSError as exc:
            os.close(fd)
            raise self._fail("lock", exc) from exc
        self._lock_fd = fd
        try:
            self._record_holder(fd)
        except BaseException:
            self._unlock_file()
            raise
        self._holds_lock = True

    def _lock_file(self) -> int:
        try:
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._fail("lock", exc) from exc

    def _record_holder(self, fd: int) -> None:
        me = LockInfo(os.getpid(), socket.gethostname(), _now())
        text = json.dumps({"pid": me.pid, "host": me.host, "started_at": me.started_at})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)
        except OSError as exc:
            raise self._fail("lock", exc) from exc
        with self._tx("lock") as cur:
            row = cur.execute("SELECT pid, host, started_at FROM lock").fetchone()
            if row is not None:
                log.warning("taking over the lock row of %s left by pid %d on %s (that "
                            "process no longer holds the lock)", self.path, row[0], row[1])
            cur.execute("INSERT OR REPLACE INTO lock (id, pid, host, started_at) "
                        "VALUES (1, ?, ?, ?)", (me.pid, me.host, me.started_at))

    def _holder_of(self, lock_path: Path) -> LockInfo | None:
        """The holder as it wrote itself into the lock file, else the lock row."""
        try:
            raw = json.loads(lock_path.read_text(encoding="utf-8"))
            return LockInfo(int(raw["pid"]), str(raw["host"]), str(raw["started_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return self.lock_holder()

    def _held(self, h: LockInfo | None) -> LockHeld:
        who = (f"pid {h.pid} on host {h.host} since {h.started_at}" if h is not None
               else "another process")
        return LockHeld(
            f"another sync holds {self.path}: {who}; wait for it to finish (the lock goes "
            "by itself when that process ends)")

    def release_lock(self) -> None:
        try:
            with self._tx("unlock") as cur:
                cur.execute("DELETE FROM lock WHERE pid = ? AND host = ?",
                            (os.getpid(), socket.gethostname()))
        finally:
            self._holds_lock = False
            self._unlock_file()

    def _unlock_file(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

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

    def load_known(self, ids: Iterable[int] | None = None) -> KnownBook:
        """The known state of these contacts (every contact: None), a Known made when read,
        in the order the ids come (each at its first), so that a sheet's rows and the book
        they are planned against are in one order (the plan then compares their columns
        whole: differ._fields_differ)."""
        base = ("SELECT id, phone, fields, groups, hlr_status, hlr_last_check, written "
                "FROM contacts")
        if ids is None:
            return _known_by_id(self._query(base))
        order = list(dict.fromkeys(ids))
        wanted = sorted(order)
        by_id: dict[int, Sequence[Any]] = {}
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            by_id.update((r[0], r) for r in self._query(f"{base} WHERE id IN ({marks})", chunk))
        return _known_by_id(list(filter(None, map(by_id.get, order))))

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
                  options: Mapping[str, Any], started_at: str | None = None) -> int:
        with self._tx("start a run in") as cur:
            cur.execute("INSERT INTO runs (sheet, sha256, mapping, options, started_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (sheet, sheet_sha256, mapping, json.dumps(dict(options), default=str),
                         started_at or _now()))
            return int(cur.lastrowid or 0)

    def close_interrupted_runs(self) -> list[int]:
        """Close the runs that never ended (killed) as `interrupted`, with the counts of what
        they journalled. Only for the lock's holder: no other run can still be going."""
        with self._tx("close interrupted runs in") as cur:
            ids = [r[0] for r in cur.execute("SELECT id FROM runs WHERE ended_at IS NULL")]
            for run_id in ids:
                counts = dict(cur.execute("SELECT status, count(*) FROM results "
                                          "WHERE run_id = ? GROUP BY status", (run_id,)))
                cur.execute("UPDATE runs SET ended_at = ?, counts = ?, outcome = 'interrupted' "
                            "WHERE id = ?", (_now(), json.dumps(counts), run_id))
        for run_id in ids:
            log.warning("run %d of %s never ended (killed?); closed it as interrupted",
                        run_id, self.path)
        return ids

    def prune(self, *, days: float = RETENTION_DAYS,
              dry_run_days: float = DRY_RUN_RETENTION_DAYS,
              now: datetime | None = None) -> PruneStats:
        """Drop the runs (and their results) that started longer ago than their retention,
        then give the WAL's space back to the disk."""
        now = now or datetime.now(timezone.utc)
        cutoff = (now - timedelta(days=days)).isoformat(timespec="seconds")
        dry_cutoff = (now - timedelta(days=dry_run_days)).isoformat(timespec="seconds")
        with self._tx("prune") as cur:
            candidates = cur.execute("SELECT id, started_at, options FROM runs "
                                     "WHERE started_at < ?", (max(cutoff, dry_cutoff),))
            old = [(run_id,) for run_id, started, options in candidates.fetchall()
                   if started < (dry_cutoff if _is_dry_run(options) else cutoff)]
            results = 0
            for run_id in old:
                results += cur.execute("DELETE FROM results WHERE run_id = ?", run_id).rowcount
                cur.execute("DELETE FROM writes WHERE run_id = ?", run_id)  # undo goes too
                cur.execute("DELETE FROM run_verified WHERE run_id = ?", run_id)
            cur.executemany("DELETE FROM runs WHERE id = ?", old)
        self.checkpoint()
        if old:
            log.info("pruned %d runs (%d results) from %s", len(old), results, self.path)
        return PruneStats(len(old), results)

    def checkpoint(self) -> None:
        """Copy the WAL into the store and truncate it (a big run leaves a big WAL)."""
        with self._mutex:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                raise self._fail("checkpoint", exc) from exc

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
        values = (_result_values(run_id, r, now) for r in results)  # streamed: a million rows
        with self._tx("record results in") as cur:
            cur.executemany(_INSERT_RESULT, values)

    def end_run(self, run_id: int, counts: Mapping[str, int],
                outcome: str = "finished", exit_code: int | None = None) -> None:
        with self._tx("finish a run in") as cur:
            cur.execute("UPDATE runs SET ended_at = ?, counts = ?, outcome = ?, exit_code = ? "
                        "WHERE id = ?",
                        (_now(), json.dumps(dict(counts)), outcome, exit_code, run_id))

    def run_results(self, run_id: int) -> list[RowResult]:
        """The run's row results, each with its phone's HLR check as the run recorded it."""
        rows = self._query(_RESULTS_VERIFIED_SQL, (run_id,))
        return [_result_from_row(r) for r in rows]

    def record_run_verified(self, run_id: int, rows: Iterable[tuple[Any, ...]]) -> None:
        """The HLR check of each number of the run's rows: (msisdn, status, network, country,
        ported, roaming, verified_at, cost this run paid, currency, cached) each."""
        values = [(run_id, *r) for r in rows]
        if not values:
            return
        with self._tx("record the run's verification results in") as cur:
            cur.executemany(f"INSERT OR REPLACE INTO run_verified (run_id, {_VERIFIED_COLUMNS})"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def run_verified(self, run_id: int) -> list[tuple[Any, ...]]:
        """The rows `record_run_verified` stored for the run, by number."""
        return [tuple(r) for r in self._query(
            f"SELECT {_VERIFIED_COLUMNS} FROM run_verified WHERE run_id = ? ORDER BY msisdn",
            (run_id,))]

    def has_verified(self) -> bool:
        """Whether any number was ever verified (a sync without verification skips the cache)."""
        return bool(self._query("SELECT EXISTS (SELECT 1 FROM hlr_cache)")[0][0])

    # ------------------------------------------------------------------ HLR verification

    def open_verification(self, token: str) -> tuple[int, str]:
        """The unfinished verification (id, token) to resume, else a new one with `token`."""
        rows = self._query("SELECT id, token FROM hlr_verifications WHERE ended_at IS NULL "
                           "ORDER BY id DESC LIMIT 1")
        if rows:
            return int(rows[0][0]), str(rows[0][1])
        with self._tx("start a verification in") as cur:
            cur.execute("INSERT INTO hlr_verifications (token, started_at) VALUES (?, ?)",
                        (token, _now()))
            return int(cur.lastrowid or 0), token

    def end_verification(self, verification: int) -> None:
        with self._tx("end a verification in") as cur:
            cur.execute("UPDATE hlr_verifications SET ended_at = ? WHERE id = ?",
                        (_now(), verification))

    def journal_lookups(self, verification: int, items: Iterable[tuple[str, str]]) -> None:
        """Before a create: each (msisdn, reference) about to be paid for (kept if present)."""
        with self._tx("journal lookups in") as cur:
            cur.executemany("INSERT OR IGNORE INTO hlr_lookups (verification, msisdn, reference)"
                            " VALUES (?, ?, ?)", [(verification, m, r) for m, r in items])

    def record_lookup(self, verification: int, msisdn: str, *, lookup_id: str | None = None,
                      price: str | None = None, currency: str | None = None,
                      status: str | None = None, error: str | None = None) -> None:
        """After a create or a poll: what BSG answered for one journalled number."""
        with self._tx("journal a lookup in") as cur:
            cur.execute("UPDATE hlr_lookups SET lookup_id = COALESCE(?, lookup_id), price = "
                        "COALESCE(?, price), currency = COALESCE(?, currency), status = "
                        "COALESCE(?, status), error = COALESCE(?, error) WHERE verification = ?"
                        " AND msisdn = ?", (lookup_id, price, currency, status, error,
                                            verification, msisdn))

    def journalled_lookups(self, verification: int) -> list[tuple[str, str, str | None,
                                                                  str | None, str | None]]:
        """(msisdn, reference, lookup_id, status, error) of every journalled number."""
        return [tuple(r) for r in self._query(  # type: ignore[misc]
            "SELECT msisdn, reference, lookup_id, status, error FROM hlr_lookups WHERE "
            "verification = ? ORDER BY rowid", (verification,))]

    def save_verified(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Cache results: (msisdn, status, network, country, ported, roaming, verified_at,
        price, currency, lookup_id) each."""
        with self._tx("cache verification results in") as cur:
            cur.executemany("INSERT OR REPLACE INTO hlr_cache (msisdn, status, network, country,"
                            " ported, roaming, verified_at, price, currency, lookup_id) VALUES "
                            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(rows))

    def load_verified(self, msisdns: Iterable[str]) -> dict[str, tuple[Any, ...]]:
        """The cached rows (as in `save_verified`) of these numbers."""
        wanted = sorted(set(msisdns))
        out: dict[str, tuple[Any, ...]] = {}
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for r in self._query("SELECT msisdn, status, network, country, ported, roaming, "
                                 "verified_at, price, currency, lookup_id FROM hlr_cache "
                                 f"WHERE msisdn IN ({marks})", chunk):
                out[r[0]] = tuple(r)
        return out

    def verified_with_status(self, statuses: Sequence[str]) -> list[tuple[str, str]]:
        """(msisdn, verified_at) of cached results with one of these statuses."""
        marks = ",".join("?" * len(statuses)) or "NULL"
        return [(r[0], r[1]) for r in self._query(
            f"SELECT msisdn, verified_at FROM hlr_cache WHERE status IN ({marks})",
            list(statuses))]
