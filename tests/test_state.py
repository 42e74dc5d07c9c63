"""Tests for the SQLite state store."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bsg_sync.errors import LockHeld, StateStoreError
from bsg_sync.models import Account, Action, Contact, Field, Group, RowResult, Status
from bsg_sync.state import (
    DRY_RUN_RETENTION_DAYS,
    MIGRATIONS,
    RETENTION_DAYS,
    PruneStats,
    StateStore,
    default_state_path,
)

REPO = Path(__file__).resolve().parent.parent


def _contact(cid: int, phone: str = "447700900123", **fields: str) -> Contact:
    values = {int(k[1:]): v for k, v in fields.items()}
    return Contact(cid, phone, values, frozenset({5, 7}), "active", "2025-01-02 03:04:05")


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state.sqlite3")
    yield s
    s.close()


def test_default_path_is_per_user() -> None:
    p = default_state_path()
    assert p.name == "state.sqlite3"
    assert "bsg-sync" in p.parts


def test_new_store_is_migrated_wal_and_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.sqlite3"
    with StateStore(path) as s:
        s.save_seen([_contact(1)])
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        con.close()
        for suffix in ("", "-wal", "-shm"):
            mode = stat.S_IMODE(Path(f"{path}{suffix}").stat().st_mode)
            assert mode == 0o600, (suffix, oct(mode))


def test_reopen_keeps_data_and_does_not_remigrate(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as s:
        s.save_seen([_contact(1, f387="Ann")])
    with StateStore(path) as s:
        assert s.load_known([1])[1].seen.fields == {387: "Ann"}


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    StateStore(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    con.commit()
    con.close()
    with pytest.raises(StateStoreError, match="newer bsg-sync"):
        StateStore(path)


def test_corrupt_file_is_a_state_store_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is a spreadsheet, honest\n" * 200)
    with pytest.raises(StateStoreError, match=r"not a valid bsg-sync state file"):
        StateStore(path)


def test_path_that_is_a_directory_is_a_state_store_error(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="Cannot open the state store"):
        StateStore(tmp_path)


_READONLY_SCRIPT = """
import sys
from pathlib import Path
from bsg_sync.errors import StateStoreError
from bsg_sync.models import Contact
from bsg_sync.state import StateStore
try:
    s = StateStore(Path(sys.argv[1]))
    s.save_seen([Contact(2, "447700900124", {}, frozenset())])
except StateStoreError as exc:
    print("StateStoreError:", exc)
    sys.exit(7)
sys.exit(0)
"""


def test_read_only_store_is_a_state_store_error() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bsg-state-ro-"))
    try:
        path = folder / "state.sqlite3"
        with StateStore(path) as s:
            s.save_seen([_contact(1)])
        path.chmod(0o444)
        command = [sys.executable, "-c", _READONLY_SCRIPT, str(path)]
        if os.geteuid() == 0:  # root ignores file modes unless it drops these capabilities
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv: cannot make a file read-only")
            command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=30,
                              cwd=Path(__file__).parent.parent)
        assert proc.returncode == 7, proc.stderr
        assert "read-only" in proc.stdout
        assert str(path) in proc.stdout
    finally:
        folder.chmod(0o755)
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


def test_save_seen_keeps_written_and_load_known(store: StateStore) -> None:
    assert store.save_seen([_contact(1, f387="Ann"), _contact(2, "447700900124")]) == 2
    store.record_written(_contact(1, f387="Bob"))
    store.save_seen([_contact(1, f387="Eve")])  # someone edited it in BSG
    known = store.load_known([1, 2, 3])
    assert set(known) == {1, 2}
    assert known[1].seen.fields == {387: "Eve"}
    assert known[1].written is not None and known[1].written.fields == {387: "Bob"}
    assert known[1].seen.groups == frozenset({5, 7})
    assert known[1].seen.hlr_status == "active"
    assert known[2].written is None
    assert set(store.load_known()) == {1, 2}
    assert store.count_contacts() == 2


def test_load_known_many_ids_in_chunks(store: StateStore) -> None:
    store.save_seen(_contact(i, f"4477{i:08d}") for i in range(1, 1300))
    assert len(store.load_known(range(1, 2000))) == 1299


def test_ids_by_phone(store: StateStore) -> None:
    store.save_seen([_contact(1, "447700900123"), _contact(2, "447700900124")])
    assert store.ids_by_phone(["447700900124", "449999999999"]) == {"447700900124": 2}


def test_field_values_with_quotes_and_accents_round_trip(store: StateStore) -> None:
    store.save_seen([_contact(1, f1='Zoë "the" \\ boss\n', f2="")])
    assert store.load_known([1])[1].seen.fields == {1: 'Zoë "the" \\ boss\n', 2: ""}


def test_account_round_trip(store: StateStore) -> None:
    assert store.load_account() is None
    account = Account((Field(387, "First name"), Field(388, "Born", "date")),
                      (Group(5, "VIP"),))
    store.save_account(account)
    assert store.load_account() == account


def test_record_result_journal_survives_a_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    first = StateStore(path)
    run = first.begin_run(sheet="a.csv", sheet_sha256="ab", mapping="m.toml",
                          options={"dry_run": False})
    result = RowResult(2, 1, "447700900123", Action.UPDATE, Status.OK, changes="City: A → B",
                       attempts=2, http_status=200, hlr_status="active")
    first.record_result(run, result, confirmed=_contact(1, f9="B"))
    # no close: as if the process were killed right after the commit
    with StateStore(path) as second:
        assert second.run_results(run) == [result]
        known = second.load_known([1])[1]
        assert known.seen.fields == {9: "B"}
        assert known.written is not None and known.written.fields == {9: "B"}
        second.end_run(run, {"ok": 1})
        assert [r.id for r in second.runs(1)] == [run]
    first.close()


def test_lock_held_then_released(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as a, StateStore(path) as b:
        a.acquire_lock()
        a.acquire_lock()  # re-entrant for its holder
        with pytest.raises(LockHeld, match=rf"another sync holds .*: pid {os.getpid()} on host"):
            b.acquire_lock()
        a.release_lock()
        b.acquire_lock()
        assert b.lock_holder() is not None


def test_close_releases_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as a:
        a.acquire_lock()
    with StateStore(path) as b:
        assert b.lock_holder() is None


def test_stale_lock_of_dead_process_is_taken_over(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as s:
        con = sqlite3.connect(path)
        con.execute("INSERT INTO lock VALUES (1, ?, ?, '2026-01-01T00:00:00+00:00')",
                    (dead.pid, __import__("socket").gethostname()))
        con.commit()
        con.close()
        s.acquire_lock()
        holder = s.lock_holder()
        assert holder is not None and holder.pid == os.getpid()
    assert f"left by pid {dead.pid}" in caplog.text and "no longer holds the lock" in caplog.text


@pytest.mark.parametrize("host", ["this", "elsewhere"])
def test_a_lock_row_of_a_live_pid_without_the_kernel_lock_does_not_block(tmp_path: Path,
                                                                        host: str) -> None:
    """The row names a process that is alive (a reused PID: our parent here) but holds no
    lock: it used to block every run until someone deleted the row."""
    name = __import__("socket").gethostname() if host == "this" else host
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as s:
        con = sqlite3.connect(path)
        con.execute("INSERT INTO lock VALUES (1, ?, ?, '2026-01-01T00:00:00')",
                    (os.getppid(), name))
        con.commit()
        con.close()
        s.acquire_lock()
        holder = s.lock_holder()
        assert holder is not None and holder.pid == os.getpid()


_HOLD = """
import sys, time
from pathlib import Path
from bsg_sync.state import StateStore
store = StateStore(Path(sys.argv[1]))
store.acquire_lock()
print("held", flush=True)
time.sleep(60)
"""


def test_a_live_holder_in_another_process_blocks_and_sigkill_frees_it(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with StateStore(path) as s:
            with pytest.raises(LockHeld, match=(
                    rf"another sync holds {re.escape(str(path))}: pid {holder.pid} on host "
                    r".+ since \d{4}-\d\d-\d\dT.*; wait for it to finish")):
                s.acquire_lock()
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            s.acquire_lock()  # the kernel dropped the dead holder's lock; no row to delete
            info = s.lock_holder()
            assert info is not None and info.pid == os.getpid()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_concurrent_record_result_from_threads(store: StateStore) -> None:
    run = store.begin_run(sheet="a.csv", sheet_sha256="x", mapping="m", options={})

    def work(base: int) -> None:
        for i in range(base, base + 40):
            store.record_result(run, RowResult(i, i, status=Status.OK),
                                confirmed=_contact(i, f"4477{i:08d}"))

    threads = [threading.Thread(target=work, args=(t * 1000,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.run_results(run)) == 240
    assert len(store.load_known()) == 240


def test_forget_contacts(store: StateStore) -> None:
    store.save_seen([_contact(1), _contact(2, "447700900124"), _contact(3, "447700900125")])
    assert store.forget_contacts([2, 3, 2]) == 2
    assert store.contact_ids() == {1}


def test_record_results_commits_many_rows_at_once(store: StateStore, tmp_path: Path) -> None:
    run_id = store.begin_run(sheet="s.csv", sheet_sha256="0" * 64, mapping="m.toml", options={})
    rows = [RowResult(row=n, contact_id=n, phone="447700900123", status=Status.UNCHANGED)
            for n in range(2, 1002)]
    store.record_results(run_id, rows)
    with StateStore(tmp_path / "state.sqlite3") as again:  # a second connection sees them
        assert again.run_results(run_id) == rows


# --------------------------------------------------------------------------- retention


def _old_run(store: StateStore, days_ago: float, *, dry: bool, rows: int = 3) -> int:
    started = (datetime.now(timezone.utc) - timedelta(days=days_ago)).isoformat(
        timespec="seconds")
    run_id = store.begin_run(sheet="s.csv", sheet_sha256="0" * 64, mapping="m.toml",
                             options={"dry run": str(dry)}, started_at=started)
    store.record_results(run_id, [RowResult(row=n, status=Status.UNCHANGED)
                                  for n in range(2, 2 + rows)])
    store.end_run(run_id, {"unchanged": rows})
    return run_id


def test_prune_keeps_each_run_for_its_retention(store: StateStore) -> None:
    """90 days for runs, 7 for dry runs (and web previews, which are dry runs)."""
    old_real = _old_run(store, RETENTION_DAYS + 1, dry=False)
    kept_real = _old_run(store, RETENTION_DAYS - 1, dry=False)
    old_dry = _old_run(store, DRY_RUN_RETENTION_DAYS + 1, dry=True)
    kept_dry = _old_run(store, DRY_RUN_RETENTION_DAYS - 1, dry=True)
    assert store.prune() == PruneStats(runs=2, results=6)
    ids = {r[0] for r in store._query("SELECT id FROM runs")}
    assert ids == {kept_real, kept_dry}
    assert store.run_results(old_real) == store.run_results(old_dry) == []
    assert len(store.run_results(kept_real)) == 3
    assert store.prune() == PruneStats(0, 0)


def test_prune_truncates_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as s:
        _old_run(s, 200, dry=False, rows=5000)
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 100_000
        s.prune()
        assert wal.stat().st_size == 0


def test_the_next_lock_holder_closes_runs_that_never_ended(store: StateStore) -> None:
    killed = store.begin_run(sheet="s.csv", sheet_sha256="0" * 64, mapping="m", options={})
    store.record_results(killed, [RowResult(row=2, status=Status.OK)])
    store.acquire_lock()
    assert store.close_interrupted_runs() == [killed]
    ended, counts, outcome = store._query("SELECT ended_at, counts, outcome FROM runs")[0]
    assert ended is not None and outcome == "interrupted" and json.loads(counts) == {"ok": 1}
    assert store.close_interrupted_runs() == []
