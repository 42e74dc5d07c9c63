"""Fault scenarios end to end: the real CLI in a subprocess against an emulator subprocess."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from reliability_helpers import (
    EmulatorProcess,
    World,
    cli_env,
    free_port,
    journal,
    make_world,
    mismatches,
    read_report,
    run_cli,
    start_cli,
    sync_args,
    wait_until,
)

FAST = ("--no-rate-limit", "--concurrency", "8")


def _statuses(report: Path) -> Counter[str]:
    return Counter(r["status"] for r in read_report(report))


def _emulator(world: World, *flags: str) -> EmulatorProcess:
    return EmulatorProcess(world.seed, *flags, log=world.dir / "emulator.log")


# --------------------------------------------------------------------------- random faults


@pytest.mark.slow
def test_random_faults_every_row_ends_ok_and_bsg_equals_the_sheet(tmp_path: Path) -> None:
    """fail 30 %, drop 5 %, throttle 5 %: every row ends ok and BSG holds the sheet.

    The CLI cannot shorten the client's waits (backoff, Retry-After 1 s, 10 s between a 4th
    identical PUT), so this takes ~10 s. A request fails all 6 attempts with p ~ 0.25 %; the
    row is then `failed` (retries-exhausted) and, as the contract promises, a second run
    completes it, sending only what was not confirmed."""
    world = make_world(tmp_path, 20)
    flags = ("--fail-rate", "0.3", "--drop-rate", "0.05", "--throttle-rate", "0.05")
    with _emulator(world, *flags) as emu:
        t0 = time.monotonic()
        first = run_cli(sync_args(world, emu.url, *FAST), cli_env(world.state), timeout=90)
        elapsed = time.monotonic() - t0
        assert "Traceback" not in first.stderr
        if first.returncode == 0:
            assert _statuses(world.report()) == {"ok": world.rows}
        else:  # only an exhausted retry budget may stop a row or the run
            assert first.returncode in (1, 3), first.stderr
            report = read_report(world.report()) if world.report().exists() else []
            for r in report:
                assert r["status"] == "ok" or r["error_code"] == "retries-exhausted", r
            confirmed = {c for _, c, s in journal(world.state) if s == "ok"}
            before = len(emu.requests_logged())
            again = run_cli(sync_args(world, emu.url, *FAST), cli_env(world.state), timeout=90)
            assert again.returncode == 0, again.stderr
            assert not set(emu.put_ids(before)) & confirmed
        assert mismatches(world, emu.contacts()) == []
        assert emu.stats()["requests"]["PUT"] > world.rows  # faults did happen
    assert elapsed < 60


# --------------------------------------------------------------------------- auth


@pytest.mark.slow
def test_token_expiring_mid_run_logs_in_again_and_completes(tmp_path: Path) -> None:
    world = make_world(tmp_path, 30)
    with _emulator(world, "--token-ttl", "1", "--latency-ms", "20") as emu:
        t0 = time.monotonic()
        done = run_cli(sync_args(world, emu.url, "--max-rps", "15", "--concurrency", "2"),
                       cli_env(world.state))
        elapsed = time.monotonic() - t0
        assert done.returncode == 0, done.stderr
        assert elapsed > 2  # the token (1 s) expired during the run
        logins = [p for m, p in emu.requests_logged() if p == "/api/auth/login"]
        assert len(logins) >= 2
        assert _statuses(world.report()) == {"ok": world.rows}
        assert mismatches(world, emu.contacts()) == []


# --------------------------------------------------------------------------- kill / term


def _start_and_wait_for_sending(world: World, emu: EmulatorProcess
                                ) -> subprocess.Popen[bytes]:
    proc = start_cli(sync_args(world, emu.url, "--max-rps", "20", "--concurrency", "2"),
                     cli_env(world.state), world.dir / "run1.out")
    wait_until(lambda: emu.put_ids() or proc.poll() is not None, 30, "the first PUT")
    assert proc.poll() is None, (world.dir / "run1.out").read_text()
    return proc


@pytest.mark.slow
def test_sigkill_while_sending_then_rerun_finishes_without_resending(tmp_path: Path) -> None:
    world = make_world(tmp_path, 60)
    pause = random.uniform(0.2, 1.5)
    with _emulator(world, "--latency-ms", "10") as emu:
        proc = _start_and_wait_for_sending(world, emu)
        time.sleep(pause)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL

        first = journal(world.state)
        confirmed = {cid for _, cid, status in first if status == "ok"}
        assert 0 < len(confirmed) < world.rows, f"killed after {pause:.2f} s"
        before = len(emu.requests_logged())

        again = run_cli(sync_args(world, emu.url, *FAST), cli_env(world.state))
        assert again.returncode == 0, again.stderr
        report = read_report(world.report())
        assert sorted(r["row"] for r in report) == [w.row for w in world.wanted]
        assert {r["status"] for r in report} <= {"ok", "unchanged"}
        resent = set(emu.put_ids(before)) & confirmed
        assert not resent, f"confirmed rows sent again after a kill at {pause:.2f} s: {resent}"
        assert mismatches(world, emu.contacts()) == []
        con = sqlite3.connect(world.state)
        runs = con.execute("SELECT ended_at IS NOT NULL, outcome FROM runs ORDER BY id").fetchall()
        con.close()
        assert runs == [(1, "interrupted"), (1, "finished")]  # the rerun closed the killed one


@pytest.mark.slow
def test_sigterm_while_sending_writes_the_report_and_exits_130(tmp_path: Path) -> None:
    world = make_world(tmp_path, 60)
    with _emulator(world, "--latency-ms", "10") as emu:
        proc = _start_and_wait_for_sending(world, emu)
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 130, (world.dir / "run1.out").read_text()
        assert time.monotonic() - t0 < 5
        report = read_report(world.report())
        assert sorted(r["row"] for r in report) == [w.row for w in world.wanted]
        by_status = Counter(r["status"] for r in report)
        assert set(by_status) <= {"ok", "not_sent"} and by_status["not_sent"] > 0, by_status
        never_sent = {r["contact_id"] for r in report if r["status"] == "not_sent"
                      and "interrupted" in r["error"]}
        assert never_sent and not never_sent & set(emu.put_ids())
        assert dict(Counter(s for *_, s in journal(world.state))) == dict(by_status)
        assert "interrupted" in (world.dir / "run1.out").read_text()


# --------------------------------------------------------------------------- state store


@pytest.mark.slow
def test_read_only_state_store_is_exit_3_and_keeps_what_was_confirmed(tmp_path: Path) -> None:
    world = make_world(tmp_path, 10)
    with _emulator(world) as emu:
        first = run_cli(sync_args(world, emu.url, *FAST), cli_env(world.state))
        assert first.returncode == 0, first.stderr
        before = journal(world.state)
        assert [s for *_, s in before] == ["ok"] * world.rows
        for suffix in ("", "-wal", "-shm"):
            p = Path(f"{world.state}{suffix}")
            if p.exists():
                p.chmod(0o444)
        # root ignores file modes unless it gives up CAP_DAC_OVERRIDE for the child
        prefix: tuple[str, ...] = ()
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv: cannot make a file read-only")
            prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search")
        try:
            second = run_cli(sync_args(world, emu.url, *FAST, report=world.report("r2.jsonl")),
                             cli_env(world.state), prefix=prefix)
        finally:
            world.state.chmod(stat.S_IRUSR | stat.S_IWUSR)
        assert second.returncode == 3, second.stderr
        last = second.stderr.strip().splitlines()[-1]
        assert "state store" in last and "read-only" in last, last
        assert "Traceback" not in second.stderr
        assert journal(world.state, 1) == before


# --------------------------------------------------------------------------- garbage answers


@pytest.mark.slow
def test_garbage_answers_are_retried_and_the_run_goes_on(tmp_path: Path) -> None:
    """html (502 page), truncated JSON, an empty 200 and a 10 MB body, each on one PUT."""
    world = make_world(tmp_path, 6)
    one_by_one = ("--no-rate-limit", "--concurrency", "1")
    with _emulator(world) as emu:
        dry = run_cli(sync_args(world, emu.url, "--dry-run", *one_by_one), cli_env(world.state))
        assert dry.returncode == 0, dry.stderr
        before_sending = sum(emu.stats()["requests"].values())  # login + GETs, as a real run
        garbage = ("html", "truncated", "empty200", "huge")
        script = ["timeout:0"] * before_sending  # pass-through faults for the same GETs
        for kind in garbage:
            script += ["timeout:0", kind, "timeout:0"]  # the row's fresh GET, its PUT, again
        emu.inject(*script)
        done = run_cli(sync_args(world, emu.url, "-v", *one_by_one), cli_env(world.state))
        assert done.returncode == 0, done.stderr
        report = read_report(world.report())
        assert [r["status"] for r in report] == ["ok"] * world.rows
        # a GET and a PUT a row, and one retry per garbage answer (a row waiting to retry
        # lets the next row go on, so which row meets which fault is not fixed)
        assert sum(r["attempts"] for r in report) == 2 * world.rows + len(garbage)
        for text in ("HTTP 502 Bad Gateway", "not valid JSON", "empty body", "more than 5 MB"):
            assert text in done.stderr, text
        assert mismatches(world, emu.contacts()) == []


# --------------------------------------------------------------------------- API down


def test_api_down_is_exit_3_within_a_few_seconds(tmp_path: Path) -> None:
    world = make_world(tmp_path, 3)
    t0 = time.monotonic()
    done = run_cli(sync_args(world, f"http://127.0.0.1:{free_port()}"), cli_env(world.state),
                   timeout=30)
    elapsed = time.monotonic() - t0
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("bsg-sync: cannot reach the BSG API")
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not world.report().exists()
    assert elapsed < 5

