"""Outputs that cannot be written: refused before anything is sent when the folder says so,
and after sending an exit 3 with one sentence, the summary, and the run closed."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from kit import Emulators
from reliability_helpers import API_KEY, World, make_world

from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator


@contextmanager
def _tmpfs(where: Path, *options: str) -> Iterator[Path]:
    """A tiny tmpfs (root only: the only way to get a read-only or full folder as root)."""
    where.mkdir(parents=True)
    args = ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(where)]
    if subprocess.run(args, capture_output=True, timeout=10, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10,
                       check=False)


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return make_world(tmp_path / "w", 40)


@pytest.fixture()
def emu(world: World, emulator: Emulators) -> Emulator:
    return emulator(world.seed)


def _sync(world: World, emu: Emulator, *extra: str) -> click.testing.Result:
    env = {"BSG_API_KEY": API_KEY, "BSG_STATE": str(world.state)}
    return CliRunner(env=env).invoke(cli, ["sync", str(world.sheet), "--api-url", emu.url,
                                           "--no-rate-limit", *extra])


@pytest.mark.parametrize("option", ["--report", "--errors"])
def test_a_read_only_output_folder_is_exit_2_and_nothing_is_sent(
    world: World, emu: Emulator, tmp_path: Path, option: str
) -> None:
    with _tmpfs(tmp_path / "ro", "ro", "size=64k") as folder:
        other = "--errors" if option == "--report" else "--report"
        result = _sync(world, emu, option, str(folder / "out.csv"),
                       other, str(world.dir / "fine.csv"))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"bsg-sync: {option}: cannot write in {folder} (Read-only file system); choose a "
        "folder you can write to"]
    assert emu.stats()["writes"] == 0
    assert emu.stats()["requests"]["GET"] == 0


def test_a_disk_that_fills_up_after_sending_is_exit_3_with_the_summary(
    world: World, emu: Emulator, tmp_path: Path
) -> None:
    """16 pages, 15 filled: the probe fits in the last one, the 40-row report does not."""
    with _tmpfs(tmp_path / "full", "size=64k") as folder:
        (folder / "filler").write_bytes(b"x" * 60 * 1024)
        report = folder / "report.jsonl"
        errors = world.dir / "errors.csv"
        result = _sync(world, emu, "--report", str(report), "--errors", str(errors))
        leftovers = sorted(p.name for p in folder.iterdir())
    assert result.exit_code == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines[-2] == (
        f"bsg-sync: the report {report} could not be written (No space left on device); the "
        "rows were sent and are recorded in the state store as run 1: fix the folder or free "
        "some space before the next run")
    assert lines[-1] == f"40 rows: 40 updated — errors: {errors}"
    assert emu.stats()["writes"] == 40
    assert errors.exists()  # written: its folder is fine
    assert leftovers == ["filler"]  # no half-written report, no temp file
    con = sqlite3.connect(world.state)
    ended = con.execute("SELECT ended_at FROM runs WHERE id = 1").fetchone()[0]
    con.close()
    assert ended is not None
