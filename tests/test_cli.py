"""The command line: help on every command, version, and exit codes for bad invocations."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bsg_sync import __version__
from bsg_sync.cli import cli


def _commands() -> list[str]:
    assert isinstance(cli, click.Group)
    return sorted(cli.commands)


def test_every_command_is_listed() -> None:
    assert set(_commands()) >= {"sync", "init", "pull", "fields", "lists", "emulator", "demo"}


@pytest.mark.parametrize("name", _commands())
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    command = cli.commands[name]  # type: ignore[attr-defined]
    assert command.help, f"{name} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help text"


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_sync_without_key_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BSG_API_KEY", raising=False)
    sheet = tmp_path / "s.csv"
    sheet.write_text("Mobile\n447700900123\n", encoding="utf-8")
    (tmp_path / "bsg-sync.toml").write_text('[columns]\n"Mobile" = "phone"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["sync", str(sheet), "--state", str(tmp_path / "st.db")])
    assert result.exit_code == 2
    assert "BSG_API_KEY" in result.stderr
    assert result.stdout == ""


def test_bad_max_changes_is_rejected(tmp_path: Path) -> None:
    sheet = tmp_path / "s.csv"
    sheet.write_text("Mobile\n447700900123\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["sync", str(sheet), "--max-changes", "lots"])
    assert result.exit_code == 2
    assert "--max-changes" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "sentence"),
    [
        (["runs"], 2, "bsg-sync: there is no state store at "),
        (["show", "1"], 2, "bsg-sync: there is no state store at "),
        (["fields"], 2, "bsg-sync: no API key: set BSG_API_KEY"),
        (["pull"], 2, "bsg-sync: no API key: set BSG_API_KEY"),
        (["lists", "--api-url", "http://127.0.0.1:9"], 3,
         "bsg-sync: cannot reach the BSG API: could not connect to 127.0.0.1:9; check --api-url"),
        (["fields", "--api-url", "http://example.com"], 2,
         "bsg-sync: refusing plain http to example.com"),
    ],
)
def test_an_error_is_one_sentence_on_stderr_and_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, sentence: str
) -> None:
    monkeypatch.delenv("BSG_API_KEY", raising=False)
    env = {"BSG_STATE": str(tmp_path / "none.sqlite3")}
    if "--api-url" in args:
        env["BSG_API_KEY"] = "live_cli_tests"
    result = CliRunner().invoke(cli, args, env=env)
    assert (result.exit_code, result.stdout) == (code, ""), result.output
    assert result.stderr.startswith(sentence), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["--traceback", "runs"], ["--traceback", "pull"],
                                  ["pull", "--traceback"]])
def test_traceback_before_or_after_the_command_raises_the_error_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    from bsg_sync.errors import UsageError

    monkeypatch.delenv("BSG_API_KEY", raising=False)
    result = CliRunner().invoke(cli, args, env={"BSG_STATE": str(tmp_path / "none.sqlite3")})
    assert isinstance(result.exception, UsageError)
    assert result.stderr == ""


def _options_named(flag: str) -> dict[str, click.Option]:
    found = {}
    for name in _commands():
        for param in cli.commands[name].params:  # type: ignore[attr-defined]
            if isinstance(param, click.Option) and flag in param.opts:
                found[name] = param
    return found


def test_verbose_is_a_count_on_every_command_that_has_it() -> None:
    verbose = _options_named("-v")
    assert set(verbose) >= {"sync", "undo", "pull", "verify", "emulator"}
    assert all(o.count for o in verbose.values()), [n for n, o in verbose.items() if not o.count]


@pytest.mark.parametrize("flag", ["--sheet", "--encoding"])
def test_sheet_and_encoding_read_the_same_on_every_command(flag: str) -> None:
    options = _options_named(flag)
    assert set(options) == {"init", "sync", "verify"}
    assert len({(o.name, o.help) for o in options.values()}) == 1
