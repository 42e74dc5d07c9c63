"""Security promises: where the key comes from, where it never goes, who can read our files,
plain http, and never overwriting the input sheet."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hostile_servers import (
    Answer,
    ScriptedProxy,
    echo_html,
    echo_json_500,
    refuse_echoing,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from kit import Emulators
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
from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator
from bsg_sync.errors import BsgSyncError
from bsg_sync.scrub import add_secret, scrub
from bsg_sync.sync import SyncOptions, run_sync

NON_ROUTABLE = "http://10.255.255.1"  # nothing answers: a connect attempt would hang


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return make_world(tmp_path / "w", 6)


@pytest.fixture()
def emu(world: World, emulator: Emulators) -> Emulator:
    return emulator(world.seed)


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


@pytest.mark.slow
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


@pytest.mark.slow
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


# --------------------------------------------------------------------------- answers that echo


def _pieces(key: str) -> list[str]:
    """Every 8-character piece of the key: none may appear anywhere."""
    return [key[i:i + 8] for i in range(len(key) - 7)]


def _leaks(key: str, texts: list[str], files: list[Path]) -> list[str]:
    found = []
    for piece in _pieces(key):
        found += [f"output {i}: {piece}" for i, t in enumerate(texts) if piece in t]
        found += [f"{f.name}: {piece}" for f in files if piece.encode() in f.read_bytes()]
    return found


def _quote_in_row_error(text: str) -> Answer:
    def answer(_body: bytes) -> tuple[int, str, bytes]:
        return 422, "application/json", json.dumps({"message": text}).encode()

    return answer


@pytest.mark.slow
def test_login_answers_that_echo_the_key_never_show_it_at_vv(world: World, emu: Emulator
                                                              ) -> None:
    """Three login answers quote the request (500 JSON, 200 HTML page, 502 HTML page) before
    the fourth succeeds; two PUT answers quote the key whole and in part. At -vv nothing of
    the key reaches stderr, the report, the errors file or the state store."""
    errors = world.dir / "errors.csv"
    with ScriptedProxy(emu.url) as proxy:
        proxy.script("/api/auth/login", echo_json_500, echo_html(200), echo_html(502))
        proxy.script("/api/contacts/2485", _quote_in_row_error(f"key {API_KEY} refused"),
                     _quote_in_row_error(f"partial {API_KEY[3:20]}…"))
        done = run_cli(sync_args(world, proxy.url, "-vv", "--no-rate-limit", "--concurrency",
                                 "1", "--errors", str(errors)), cli_env(world.state),
                       timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("/api/auth/login failed") == 3  # the retries were logged
    assert "http-422" in errors.read_text(encoding="utf-8-sig")
    state_files = [p for p in world.state.parent.iterdir() if p.is_file()]
    files = [world.report(), errors, *state_files]
    assert _leaks(API_KEY, [done.stdout, done.stderr], files) == []


@pytest.mark.parametrize("answer", [echo_json_500, echo_html(200), echo_html(502),
                                    refuse_echoing], ids=["500-json", "200-html", "502-html",
                                                          "422-echo"])
def test_a_login_that_keeps_echoing_the_key_fails_without_quoting_it(
    world: World, answer: Answer, caplog: pytest.LogCaptureFixture
) -> None:
    """The default exit-3 sentence (and every log line at debug) of a login that never works:
    a 60-character snippet of the HTML page used to cut the key and show 18 characters."""
    caplog.set_level(logging.DEBUG)
    opts = SyncOptions(sheet=world.sheet, state=world.state, report=world.report(),
                       policy=RetryPolicy.fast(), api_url="", max_rps=None)
    with ScriptedProxy() as proxy:
        proxy.script("/api/auth/login", *[answer] * 6)
        opts = dataclasses.replace(opts, api_url=proxy.url)
        with pytest.raises(BsgSyncError) as caught:
            run_sync(opts, API_KEY)
        assert len(proxy.seen) == (1 if answer is refuse_echoing else 6)
    assert caught.value.exit_code == 3
    message = str(caught.value)
    assert "login" in message or "API key" in message, message
    assert _leaks(API_KEY, [message, caplog.text], []) == []


def test_the_scrubber_hides_every_piece_of_eight_or_more() -> None:
    add_secret("live_scrub_me_0123456789")
    text = "a live_scrub_me_0123456789 b _scrub_m c 12345678 d 0123456 e"
    assert scrub(text) == "a *** b *** c *** d 0123456 e"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # a runaway read stops at 1 GiB


def test_a_key_file_that_never_ends_is_refused_in_one_sentence(world: World) -> None:
    args = [sys.executable, "-m", "bsg_sync", "fields", "--api-url", "http://127.0.0.1:9",
            "--api-key-file", "/dev/zero"]
    done = subprocess.run(args, env=cli_env(world.state, key=None), capture_output=True,
                          text=True, timeout=30, preexec_fn=_limit_memory, check=False)
    assert done.returncode == 2, done.stderr[-500:]
    assert done.stderr.strip().splitlines() == [
        "bsg-sync: the API key file /dev/zero holds more than 4 KiB; it should hold only the "
        "key, on its first line"]


# --------------------------------------------------------------------------- terminals

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e"


def test_escape_sequences_from_a_sheet_never_reach_the_terminal(world: World, emu: Emulator
                                                                 ) -> None:
    """A header with OSC/CSI sequences: `sync` warns about it and `init` lists it, escaped."""
    text = world.sheet.read_text(encoding="utf-8").splitlines()
    text[0] += f",Notes{ESCAPES}"
    world.sheet.write_text("\n".join(f"{line}," if i else line for i, line in enumerate(text))
                           + "\n", encoding="utf-8")
    result = _invoke(["sync", str(world.sheet), "--api-url", emu.url, "--report",
                      str(world.report()), "--dry-run"], world.state)
    assert result.exit_code == 0, result.stderr
    assert "ignored columns (not in the mapping): Notes\\x1b]0;pwned\\x07\\x1b[2J" in result.stderr
    # init lists the headers it did not map, on stdout
    bad = _invoke(["init", str(world.sheet), "--offline", "-o", str(world.dir / "m.toml")],
                  world.state)
    assert bad.exit_code == 0, bad.stderr
    assert "Notes\\u001b]0;pwned" in bad.stdout and "\\x9b31m\\u202e" in bad.stdout, bad.stdout
    for out in (result.stderr, result.stdout, bad.stderr, bad.stdout):
        assert not any(c in out for c in "\x1b\x07\x9b\u202e"), repr(out)


def test_escape_sequences_in_a_server_answer_never_reach_the_terminal_at_v(world: World,
                                                                         emu: Emulator) -> None:
    """A 503 whose message holds OSC/CSI sequences is logged at -v (the retry line) escaped."""
    def hostile(_body: bytes) -> tuple[int, str, bytes]:
        return 503, "application/json", json.dumps({"message": f"busy{ESCAPES}"}).encode()

    with ScriptedProxy(emu.url) as proxy:
        proxy.script("/api/contacts/fields", hostile)
        done = run_cli(sync_args(world, proxy.url, "-v", "--dry-run"), cli_env(world.state))
    assert done.returncode == 0, done.stderr
    assert "busy\\x1b]0;pwned\\x07" in done.stderr
    assert not any(c in done.stderr for c in "\x1b\x07\x9b\u202e"), repr(done.stderr)


SCRUB_KEY = "live_Pr0p3rty-k3y.with~odd+chars_0042"


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_no_eight_character_piece_of_the_key_survives_scrubbing(data: st.DataObject) -> None:
    add_secret(SCRUB_KEY)
    start = data.draw(st.integers(0, len(SCRUB_KEY) - 8))
    end = data.draw(st.integers(start + 8, len(SCRUB_KEY)))
    around = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
    text = data.draw(around) + SCRUB_KEY[start:end] + data.draw(around)
    out = scrub(text)
    assert not any(SCRUB_KEY[i:i + 8] in out for i in range(len(SCRUB_KEY) - 7)), out
