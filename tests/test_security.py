"""Security promises: where the key comes from, where it never goes, who can read our files,
plain http, and never overwriting the input sheet."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from reliability_helpers import (
    API_KEY,
    EmulatorProcess,
    World,
    cli_env,
    journal,
    make_world,
    run_cli,
    start_cli,
    sync_args,
    wait_until,
)

from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator, EmulatorConfig

NON_ROUTABLE = "http://10.255.255.1"  # nothing answers: a connect attempt would hang


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return make_world(tmp_path / "w", 6)


@pytest.fixture()
def emu(world: World) -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(), seed=world.seed) as server:
        yield server


def _invoke(args: list[str], state: Path, **env: str) -> click.testing.Result:
    full_env = {"BSG_API_KEY": API_KEY, "BSG_STATE": str(state), **env}
    return CliRunner(env=full_env).invoke(cli, args)


# --------------------------------------------------------------------------- where the key is


def test_no_command_takes_the_key_as_an_argument() -> None:
    assert isinstance(cli, click.Group)
    for name, command in cli.commands.items():
        if name == "emulator":  # the emulator's --api-key is the key it accepts, not ours
            continue
        for param in command.params:
            assert not any(o in ("--api-key", "--key", "--token") for o in param.opts), name


def test_an_api_key_option_is_rejected(world: World) -> None:
    result = _invoke(["sync", str(world.sheet), "--api-key", API_KEY], world.state)
    assert result.exit_code == 2
    assert "No such option '--api-key'" in result.stderr


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_a_key_file_readable_by_others_gets_a_warning(
    world: World, emu: Emulator, mode: int, warned: bool
) -> None:
    key_file = world.dir / "key.txt"
    key_file.write_text(API_KEY + "\n", encoding="utf-8")
    key_file.chmod(mode)
    result = CliRunner(env={"BSG_API_KEY": None}).invoke(
        cli, ["fields", "--api-url", emu.url, "--api-key-file", str(key_file)]
    )
    assert result.exit_code == 0, result.stderr
    assert ("readable by other users" in result.stderr) is warned
    assert "City" in result.stdout  # the key from the file logged in


# --------------------------------------------------------------------------- plain http



@pytest.mark.parametrize("command", ["fields", "lists", "pull"])
def test_plain_http_to_a_remote_host_is_refused_at_once(world: World, command: str) -> None:
    t0 = time.monotonic()
    result = _invoke([command, "--api-url", NON_ROUTABLE], world.state)
    assert time.monotonic() - t0 < 2  # refused before any connection attempt
    assert result.exit_code == 2, result.output
    assert "refusing plain http to 10.255.255.1" in result.stderr


def test_sync_refuses_plain_http_to_a_remote_host(world: World) -> None:
    t0 = time.monotonic()
    done = run_cli(sync_args(world, NON_ROUTABLE), cli_env(world.state), timeout=10)
    assert time.monotonic() - t0 < 5
    assert "Traceback" not in done.stderr
    assert done.returncode == 2, done.stderr
    assert "refusing plain http" in done.stderr.strip().splitlines()[-1]
    assert not world.report().exists()


# --------------------------------------------------------------------------- file modes


def test_state_store_and_reports_are_private_even_with_umask_0(world: World) -> None:
    with EmulatorProcess(world.seed, log=world.dir / "emu.log", verbose=False) as emu:
        for report in ("r.xlsx", "r.csv", "r.jsonl"):
            args = sync_args(world, emu.url, "--errors", str(world.dir / f"{report}.errors.csv"),
                             report=world.dir / report)
            done = run_cli(args, cli_env(world.state), umask=0)
            assert done.returncode == 0, done.stderr
    made = [world.state, *world.state.parent.glob("*"), *world.dir.glob("r.*")]
    assert len(made) >= 7
    for path in made:
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is {oct(path.stat().st_mode)}"


# --------------------------------------------------------------------------- the input sheet


def _same_sheet_spellings(world: World) -> list[Path]:
    link = world.dir / "link.csv"
    link.symlink_to(world.sheet)
    hard = world.dir / "hard.csv"
    os.link(world.sheet, hard)
    return [world.sheet, world.dir / "sub" / ".." / world.sheet.name, link, hard]


@pytest.mark.parametrize("option", ["--report", "--errors"])
def test_report_and_errors_never_overwrite_the_input_sheet(
    world: World, emu: Emulator, option: str
) -> None:
    (world.dir / "sub").mkdir()
    original = world.sheet.read_bytes()
    for target in _same_sheet_spellings(world):
        args = ["sync", str(world.sheet), "--api-url", emu.url, option, str(target)]
        if option == "--errors":
            args += ["--report", str(world.dir / "r.jsonl")]
        result = _invoke(args, world.state)
        assert result.exit_code == 2, (target, result.output)
        assert "overwrite the input sheet" in result.stderr, target
        assert world.sheet.read_bytes() == original
    assert emu.stats()["writes"] == 0


# --------------------------------------------------------------------------- secret scan


def _scan(key: str, texts: list[str], files: list[Path]) -> list[str]:
    leaks = [f"output {i}" for i, t in enumerate(texts) if key in t]
    needle = key.encode()
    for f in files:
        data = f.read_bytes()
        if needle in data or key.encode("utf-16-le") in data:
            leaks.append(str(f))
    return leaks


def test_the_key_never_appears_in_output_reports_or_state(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w", 40)
    outputs: list[str] = []
    verbose = ("-vv", "--traceback", "--errors", str(world.dir / "errors.csv"))
    # a run killed while sending leaves its -wal behind: scan that too
    with EmulatorProcess(world.seed, "--latency-ms", "10", log=world.dir / "e1.log") as emu:
        proc = start_cli(sync_args(world, emu.url, "-vv", "--max-rps", "20"),
                         cli_env(world.state), world.dir / "killed.out")
        wait_until(lambda: len(emu.put_ids()) >= 3, 30, "sending")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wal = Path(f"{world.state}-wal")
        assert wal.exists() and wal.stat().st_size > 0
        outputs.append((world.dir / "killed.out").read_text())
        wal_copy = world.dir / "killed.sqlite3-wal.copy"
        wal_copy.write_bytes(wal.read_bytes())
        assert any(s == "ok" for *_, s in journal(world.state))
        # a successful run, and the same with every row refused (test mode), at -vv
        done = run_cli(sync_args(world, emu.url, *verbose, "--no-rate-limit"),
                       cli_env(world.state))
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    test_key = "test_" + API_KEY[5:]
    with EmulatorProcess(world.seed, "--test-mode", log=world.dir / "e2.log") as emu:
        refused = run_cli(sync_args(world, emu.url, *verbose, "--no-rate-limit",
                                    report=world.dir / "refused.xlsx"),
                          cli_env(tmp_path / "other" / "state.sqlite3", key=test_key))
        assert refused.returncode == 1, refused.stderr
        assert "test-mode" in (world.dir / "errors.csv").read_text(encoding="utf-8-sig")
        outputs += [refused.stdout, refused.stderr]
    # a key BSG rejects, with --traceback: exit 3 and a traceback, still without the key
    with EmulatorProcess(world.seed, "--api-key", "live_the_only_key",
                         log=world.dir / "e3.log") as emu:
        rejected = run_cli(sync_args(world, emu.url, *verbose), cli_env(world.state))
        assert rejected.returncode == 1  # --traceback re-raises (exit 3 without it)
        assert "Traceback" in rejected.stderr and "API Key not found" in rejected.stderr
        outputs += [rejected.stdout, rejected.stderr]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".log"]
    assert any(p.name.endswith("-wal.copy") for p in files)
    assert len(files) >= 6
    assert _scan(API_KEY, outputs, files) == []
    assert _scan(test_key, outputs, files) == []
