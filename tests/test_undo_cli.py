"""`bsg-sync runs`, `show` and `undo` through the CLI against an emulator process: a SIGKILL
during an undo, then a re-run, restores every contact exactly once."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import (
    PYTHON,
    EmulatorProcess,
    World,
    cli_env,
    journal,
    make_world,
    read_report,
    run_cli,
    start_cli,
    sync_args,
    wait_until,
)

FAST = ("--no-rate-limit", "--concurrency", "8")


def _book(emu: EmulatorProcess) -> dict[int, tuple[Any, ...]]:
    out = {}
    for cid, c in emu.contacts().items():
        f = c["fields"]
        fields = tuple(sorted((str(k), v) for k, v in (f.items() if isinstance(f, dict) else [])))
        groups = tuple(sorted(int(g["id"]) if isinstance(g, dict) else int(g)
                              for g in c["groups"]))
        out[cid] = (str(c["phone"]), fields, groups)
    return out


def _undo_args(world: World, url: str, run_id: int, *extra: str) -> list[str]:
    return [PYTHON, "-m", "bsg_sync", "undo", str(run_id), "--api-url", url,
            "--report", str(world.report("undo.jsonl")), *extra]


@pytest.mark.slow
def test_runs_show_and_undo_through_the_cli(tmp_path: Path) -> None:
    world = make_world(tmp_path, 12)
    with EmulatorProcess(world.seed, log=world.dir / "emulator.log") as emu:
        before = _book(emu)
        done = run_cli(sync_args(world, emu.url, *FAST), cli_env(world.state))
        assert done.returncode == 0, done.stderr
        listed = run_cli([PYTHON, "-m", "bsg_sync", "runs", "--json"], cli_env(world.state))
        (run,) = json.loads(listed.stdout)
        assert (run["dry_run"], run["counts"]["ok"], run["exit_code"]) == (False, 12, 0)
        shown = run_cli([PYTHON, "-m", "bsg_sync", "show", str(run["id"])],
                        cli_env(world.state))
        assert shown.returncode == 0 and "row 2: ok contact 248500000: " in shown.stdout
        dry = run_cli(_undo_args(world, emu.url, run["id"], "--dry-run", *FAST),
                      cli_env(world.state))
        assert dry.returncode == 0, dry.stderr
        assert _book(emu) != before
        undone = run_cli(_undo_args(world, emu.url, run["id"], *FAST), cli_env(world.state))
        assert undone.returncode == 0, undone.stderr
        assert undone.stderr.strip().splitlines()[-1].startswith("12 rows: 12 updated")
        assert _book(emu) == before


@pytest.mark.slow
def test_sigkill_during_an_undo_then_rerun_restores_each_contact_once(tmp_path: Path) -> None:
    world = make_world(tmp_path, 60)
    with EmulatorProcess(world.seed, "--latency-ms", "10",
                         log=world.dir / "emulator.log") as emu:
        before = _book(emu)
        done = run_cli(sync_args(world, emu.url, *FAST), cli_env(world.state))
        assert done.returncode == 0, done.stderr
        synced_puts = len(emu.put_ids())
        proc = start_cli(_undo_args(world, emu.url, 1, "--max-rps", "20", "--concurrency", "2"),
                         cli_env(world.state), world.dir / "undo1.out")
        wait_until(lambda: len(emu.put_ids()) > synced_puts or proc.poll() is not None, 30,
                   "the undo's first PUT")
        time.sleep(random.uniform(0.2, 1.0))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        first = {cid for _, cid, status in journal(world.state) if status == "ok"}
        assert 0 < len(first) < world.rows
        logged = len(emu.requests_logged())
        again = run_cli(_undo_args(world, emu.url, 1, *FAST), cli_env(world.state))
        assert again.returncode == 0, again.stderr
        statuses = {r["contact_id"]: r["status"] for r in read_report(world.report("undo.jsonl"))}
        assert {cid for cid, s in statuses.items() if s == "unchanged"} >= first
        assert not set(emu.put_ids(logged)) & first  # nothing restored twice
        assert _book(emu) == before
