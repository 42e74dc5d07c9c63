"""`bsg-sync sync`, `init` and `pull` through the CLI against the real emulator: exit codes,
the message on stderr, and a clean stdout."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kit import SAMPLE_SEED, Emulators

from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.models import RowResult, Status
from bsg_sync.state import StateStore

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"
KEY = "live_cli_tests"
SHEETS = ["contacts.csv", "contacts-eu.csv", "newsletter.xlsx"]


@pytest.fixture(scope="module")
def emu(module_emulator: Emulators) -> Emulator:
    return module_emulator(SAMPLE_SEED)


@pytest.fixture()
def work(emu: Emulator, tmp_path: Path) -> Path:
    """A fresh emulator and a copy of the sample sheets and mappings."""
    emu.reset()
    for f in SAMPLES.iterdir():
        if f.suffix in {".csv", ".xlsx", ".toml"}:
            shutil.copy2(f, tmp_path / f.name)
    return tmp_path


def _run(args: list[str], key: str | None = KEY) -> Result:
    env = {"BSG_API_KEY": key} if key else {"BSG_API_KEY": ""}
    env.update({"BSG_STATE": "", "BSG_API_URL": ""})
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def _sync(emu: Emulator, work: Path, *extra: str, sheet: str = "contacts.csv",
          key: str | None = KEY) -> Result:
    mapping = Path(sheet).stem + ".toml"
    return _run(["sync", str(work / sheet), "--mapping", str(work / mapping),
                 "--state", str(work / "state.sqlite3"), "--api-url", emu.url,
                 "--report", str(work / "report.jsonl"), "--no-rate-limit", *extra], key)


def _writes(emu: Emulator) -> int:
    return int(emu.stats()["writes"])


def _last_line(result: Result) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_sync_then_second_sync(emu: Emulator, work: Path) -> None:
    first = _sync(emu, work)
    assert first.exit_code == 1, first.stderr  # the sample has invalid and not-found rows
    assert first.stdout == ""
    assert _last_line(first) == (
        f"42 rows: 28 unchanged, 11 updated, 2 invalid, 1 not found — report: "
        f"{work / 'report.jsonl'}")
    writes = _writes(emu)
    second = _sync(emu, work)
    assert second.exit_code == 1 and second.stdout == ""
    assert _writes(emu) == writes
    assert _last_line(second).startswith("42 rows: 39 unchanged, 2 invalid, 1 not found")


def test_json_prints_one_object_on_stdout(emu: Emulator, work: Path) -> None:
    result = _sync(emu, work, "--json", "--dry-run")
    assert result.exit_code == 1, result.stderr
    assert result.stdout.count("\n") == 1
    summary = json.loads(result.stdout)
    assert isinstance(summary["run_id"], int)
    assert summary["counts"]["planned"] == 11 and summary["counts"]["unchanged"] == 28
    assert summary["requests"] > 0
    assert summary["report_path"] == str(work / "report.jsonl")
    assert _writes(emu) == 0


@pytest.mark.parametrize("sheet", SHEETS)
def test_init_writes_a_mapping_that_sync_accepts(emu: Emulator, work: Path, sheet: str) -> None:
    mapping = work / f"{sheet}.generated.toml"
    made = _run(["init", str(work / sheet), "-o", str(mapping), "--api-url", emu.url])
    assert made.exit_code == 0, made.stderr
    assert mapping.is_file()
    result = _run(["sync", str(work / sheet), "--mapping", str(mapping), "--dry-run",
                   "--state", str(work / "state.sqlite3"), "--api-url", emu.url,
                   "--report", str(work / "r.jsonl"), "--no-rate-limit"])
    assert result.exit_code in (0, 1), result.stderr
    assert result.stdout == ""
    records = [json.loads(line) for line in (work / "r.jsonl").read_text().splitlines()]
    assert any(r["status"] in ("planned", "unchanged") for r in records)
    assert _writes(emu) == 0


# --------------------------------------------------------------------------- aborts


def test_max_changes_exit_3_and_nothing_sent(emu: Emulator, work: Path) -> None:
    result = _sync(emu, work, "--max-changes", "10%")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert _last_line(result) == (
        "bsg-sync: the plan changes 11 of 42 rows, more than --max-changes 10%; "
        "check that this is the right sheet, or raise the limit")
    assert _writes(emu) == 0


def _phone_changes(work: Path, n: int) -> Path:
    """A sheet moving n contacts to new (unverified) numbers."""
    sheet = work / "renumber.csv"
    lines = ["Contact ID,Mobile"] + [f"2484000{i:02d},+4477009001{i:02d}" for i in range(1, n + 1)]
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (work / "renumber.toml").write_text('[columns]\n"Contact ID" = "id"\n"Mobile" = "phone"\n',
                                        encoding="utf-8")
    return sheet


def test_max_failures_exit_3_rest_not_sent(work: Path) -> None:
    # Test mode refuses a new unverified number with a 403: each row fails, none is retried.
    with Emulator(EmulatorConfig(test_mode=True), seed=SAMPLES / "seed.json") as emu:
        _phone_changes(work, 6)
        result = _sync(emu, work, "--max-failures", "1", "--concurrency", "1",
                       sheet="renumber.csv")
        assert result.exit_code == 3, result.stderr
        assert result.stdout == ""
        assert "max-failures" in result.stderr
        records = [json.loads(line) for line in (work / "report.jsonl").read_text().splitlines()]
        statuses = [r["status"] for r in records]
        assert statuses == ["failed", "failed", "not_sent", "not_sent", "not_sent", "not_sent"]
        assert {r["error_code"] for r in records if r["status"] == "failed"} == {"test-mode"}
        assert _writes(emu) == 2


def test_auth_rejected_exit_3(work: Path) -> None:
    with Emulator(EmulatorConfig(api_key="live_the_right_one"),
                  seed=SAMPLES / "seed.json") as emu:
        result = _sync(emu, work, key="live_a_wrong_one")
        assert result.exit_code == 3
        assert result.stdout == ""
        assert _last_line(result) == ("bsg-sync: BSG did not accept the API key (API Key not "
                                      "found); check BSG_API_KEY or the key file")
        assert "live_a_wrong_one" not in result.stderr
        assert _writes(emu) == 0


def test_missing_api_key_exit_2(emu: Emulator, work: Path) -> None:
    result = _sync(emu, work, key=None)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert _last_line(result).startswith("bsg-sync: no API key: set BSG_API_KEY")


def _closed_port_url() -> str:
    with Emulator() as emu:
        return emu.url  # the port is closed again once the emulator stops


@pytest.mark.slow
def test_api_unreachable_exit_3_fast(work: Path) -> None:
    """Connection refused is known at once; the user should not wait through a retry loop.

    Run as a subprocess so that a slow answer fails the test after a few seconds instead of
    holding the suite.
    """
    url = _closed_port_url()
    cmd = [sys.executable, "-m", "bsg_sync", "sync", str(work / "contacts.csv"), "--mapping",
           str(work / "contacts.toml"), "--state", str(work / "s.sqlite3"), "--api-url", url,
           "--report", str(work / "r.jsonl")]
    env = {**os.environ, "BSG_API_KEY": KEY}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("an unreachable API kept `bsg-sync sync` retrying for more than 5 s")
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.strip().splitlines()[-1].startswith(
        "bsg-sync: cannot reach the BSG API: could not connect to 127.0.0.1:")


def test_lock_held_exit_3_names_the_holder(emu: Emulator, work: Path) -> None:
    with StateStore(work / "state.sqlite3") as holder:
        holder.acquire_lock()
        info = holder.lock_holder()
        assert info is not None
        result = _sync(emu, work)
    assert result.exit_code == 3
    assert result.stdout == ""
    line = _last_line(result)
    assert line.startswith(
        f"bsg-sync: another sync holds {work / 'state.sqlite3'}: pid {info.pid} on host "
        f"{info.host} since {info.started_at}")
    assert _writes(emu) == 0


def test_stale_lock_of_a_dead_pid_is_taken_over(emu: Emulator, work: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    with StateStore(work / "state.sqlite3") as store:
        store.acquire_lock()
        store._conn.execute("UPDATE lock SET pid = ?", (int(dead.stdout),))
        store._conn.commit()
        store._holds_lock = False  # as a killed sync leaves it
    with caplog.at_level(logging.WARNING, logger="bsg_sync.state"):
        result = _sync(emu, work)
    assert result.exit_code == 1, result.stderr
    assert f"left by pid {int(dead.stdout)}" in caplog.text
    assert _writes(emu) == 11
    with StateStore(work / "state.sqlite3") as store:
        assert store.lock_holder() is None


# --------------------------------------------------------------------------- pull / offline


def test_offline_dry_run_after_pull_sends_no_request(emu: Emulator, work: Path) -> None:
    pulled = _run(["pull", "--state", str(work / "state.sqlite3"), "--api-url", emu.url])
    assert pulled.exit_code == 0, pulled.stderr
    assert pulled.stdout == ""
    before: dict[str, Any] = emu.stats()["requests"]
    result = _sync(emu, work, "--offline", "--dry-run", "--json", key=None)
    assert result.exit_code == 1, result.stderr
    assert emu.stats()["requests"] == before
    summary = json.loads(result.stdout)
    assert summary["requests"] == 0
    assert summary["counts"]["planned"] == 11


def test_offline_without_a_snapshot_is_a_usage_error(emu: Emulator, work: Path) -> None:
    result = _sync(emu, work, "--offline", "--dry-run", key=None)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "bsg-sync pull" in _last_line(result)


# --------------------------------------------------------------------------- retention


def _backdated_run(store: StateStore, days_ago: float, *, dry: bool = False) -> int:
    started = (datetime.now(timezone.utc) - timedelta(days=days_ago)).isoformat(
        timespec="seconds")
    run_id = store.begin_run(sheet="old.csv", sheet_sha256="0" * 64, mapping="m",
                             options={"dry run": str(dry)}, started_at=started)
    store.record_results(run_id, [RowResult(row=2, status=Status.UNCHANGED)])
    store.end_run(run_id, {"unchanged": 1})
    return run_id


def _run_ids(path: Path) -> dict[int, tuple[str | None, str | None]]:
    with StateStore(path) as store:
        return {i: (e, o) for i, e, o in store._query("SELECT id, ended_at, outcome FROM runs")}


def test_a_sync_prunes_old_runs_and_closes_a_killed_one(emu: Emulator, work: Path) -> None:
    """At its start a sync closes the run a kill left open and removes the kill's temp
    report; at its end it drops what is past the retention."""
    state = work / "state.sqlite3"
    with StateStore(state) as store:
        old = _backdated_run(store, 91)
        old_dry = _backdated_run(store, 8, dry=True)
        recent = _backdated_run(store, 30)
        killed = store.begin_run(sheet="k.csv", sheet_sha256="1" * 64, mapping="m",
                                 options={})
    stale_tmp = work / ".report.jsonl.k1ll3d.tmp"
    stale_tmp.write_text("half a report", encoding="utf-8")
    result = _sync(emu, work)
    assert result.exit_code == 1, result.stderr
    runs = _run_ids(state)
    assert old not in runs and old_dry not in runs
    assert runs[recent][1] == "finished"
    assert runs[killed][0] is not None and runs[killed][1] == "interrupted"
    assert runs[max(runs)][1] == "finished"
    assert not stale_tmp.exists()


def test_prune_command_drops_runs_older_than_days(work: Path) -> None:
    state = work / "state.sqlite3"
    with StateStore(state) as store:
        _backdated_run(store, 10)
        _backdated_run(store, 3)
        kept = _backdated_run(store, 1)
    result = _run(["prune", "--older-than", "2", "--state", str(state)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == f"pruned 2 runs (2 results) from {state}"
    assert result.stdout == ""
    assert set(_run_ids(state)) == {kept}
    default = _run(["prune", "--state", str(state)])
    assert default.stderr.strip() == f"pruned 0 runs (0 results) from {state}"


def test_a_title_above_the_header_is_found_and_said(emu: Emulator, work: Path) -> None:
    lines = (work / "contacts.csv").read_text(encoding="utf-8-sig").splitlines()
    titled = work / "titled.csv"
    titled.write_text("\n".join(["Spring campaign export,,,,,", ",,,,,", *lines]) + "\n",
                      encoding="utf-8")
    done = _run(["sync", str(titled), "--mapping", str(work / "contacts.toml"), "--dry-run",
                 "--state", str(work / "state.sqlite3"), "--api-url", emu.url,
                 "--report", str(work / "report.jsonl"), "--no-rate-limit"])
    assert done.exit_code == 1, done.stderr
    assert "warning: the header is row 3 (the rows above it look like a title or notes)" in (
        done.stderr)
    assert _last_line(done).startswith("42 rows: 28 unchanged, 11 planned")
    init = _run(["init", str(titled), "-o", str(work / "t.toml"), "--offline"])
    assert init.exit_code == 0, init.stderr
    assert "header: row 3" in init.stdout
    assert "header_row = 3" in (work / "t.toml").read_text(encoding="utf-8")
