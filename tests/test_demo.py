"""The self-contained demo: three syncs against a bundled emulator, the third sending nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bsg_sync import demo
from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator
from bsg_sync.sync import Hooks, SyncOptions, SyncOutcome, run_sync


def _writes(emu: Emulator) -> int:
    return int(emu.stats()["writes"])


def test_demo_runs_three_syncs_and_the_third_sends_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    servers: list[Emulator] = []
    writes: list[int] = []

    class Recorded(Emulator):
        def start(self) -> Emulator:
            servers.append(self)
            return super().start()

    def recorded_run_sync(opts: SyncOptions, key: str | None,
                          hooks: Hooks | None = None) -> SyncOutcome:
        before = _writes(servers[0])
        outcome = run_sync(opts, key, hooks)
        writes.append(_writes(servers[0]) - before)
        return outcome

    monkeypatch.setattr(demo, "Emulator", Recorded)
    monkeypatch.setattr(demo, "run_sync", recorded_run_sync)
    lines: list[str] = []
    outcomes = demo.run_demo(tmp_path / "demo", lines.append)
    assert len(outcomes) == 3
    assert writes == [0, 11, 0]
    dry, real, second = outcomes
    assert dry.summary.dry_run and dry.summary.counts["planned"] == 11
    assert real.summary.counts["ok"] == 11
    assert second.summary.counts["ok"] == 0 and second.summary.counts["planned"] == 0
    assert "3. second sync (nothing left to send): 0 writes sent" in lines
    for o in outcomes:
        assert o.summary.report_path is not None and o.summary.report_path.is_file()


def test_demo_command_prints_to_stderr_only(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path)], env={"BSG_API_KEY": ""})
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("emulator of BSG One-API running at http://127.0.0.1:")
    assert "3. second sync (nothing left to send): 0 writes sent" in lines
    assert lines[-1] == f"reports and the errors file are in {tmp_path}"
    for name in ("contacts.dry-run.report.xlsx", "contacts.report.xlsx",
                 "contacts.second.report.xlsx", "contacts.errors.csv", "state.sqlite3"):
        assert (tmp_path / name).is_file(), name


def test_demo_samples_are_found() -> None:
    samples = demo.find_samples()
    assert (samples / "seed.json").is_file() and (samples / demo.DEMO_SHEET).is_file()
