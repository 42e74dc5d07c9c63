"""`bsg-sync sync --verify … --skip-unreachable` against the emulator: dead numbers are not
written (invalid, number-unreachable), the rest are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kit import Emulators

from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator

HLR_KEY = "hlrSyncKey0123"
SEED = {"fields": [{"id": 387714, "name": "Name", "type": "text"}], "groups": [],
        "contacts": [{"id": 1001, "phone": 447700900101, "fields": {"387714": "A"}}]}
# last digit: 4 active, 6 absent, 7 unknown, 8 failed, 9 active (roaming)
SHEET = "phone,Name\n447700900101,A2\n447700900104,D\n447700900106,F\n447700900117,G\n" \
        "447700900108,H\n447700900119,I\n"
DEAD = {"447700900106", "447700900108"}


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory, module_emulator: Emulators) -> Emulator:
    seed = tmp_path_factory.mktemp("seed") / "seed.json"
    seed.write_text(json.dumps(SEED))
    return module_emulator(seed, hlr_api_key=HLR_KEY, hlr_delay=0.1)


@pytest.fixture()
def work(emu: Emulator, tmp_path: Path) -> Path:
    emu.reset()
    (tmp_path / "sheet.csv").write_text(SHEET)
    (tmp_path / "sheet.toml").write_text('[columns]\n"phone" = "phone"\n"Name" = "field:Name"\n')
    return tmp_path


def _sync(emu: Emulator, work: Path, *extra: str) -> Result:
    env = {"BSG_API_KEY": "live_vsync", "BSG_HLR_API_KEY": HLR_KEY, "BSG_STATE": "",
           "BSG_API_URL": "", "BSG_HLR_URL": ""}
    args = ["sync", str(work / "sheet.csv"), "--state", str(work / "state.sqlite3"),
            "--api-url", emu.url, "--hlr-url", emu.url + "/rest", "--hlr-poll-interval", "0.05",
            "--report", str(work / "report.jsonl"), "--no-rate-limit", "--create-missing",
            *extra]
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def _report(work: Path) -> dict[str, dict[str, object]]:
    rows = [json.loads(line) for line in (work / "report.jsonl").read_text().splitlines()]
    return {str(r["phone"]): r for r in rows if "phone" in r and "row" in r}


def _phones(emu: Emulator) -> set[str]:
    return {str(c["phone"]) for c in emu.contacts()}


def test_skip_unreachable_keeps_dead_numbers_out(emu: Emulator, work: Path) -> None:
    result = _sync(emu, work, "--verify", "new", "--skip-unreachable")
    assert result.exit_code == 1, result.stderr  # the dead rows need fixing
    assert "verified 5 numbers" in result.stderr
    assert set(emu.hlr_stats()["numbers"]) == {"447700900104", "447700900106", "447700900117",
                                               "447700900108", "447700900119"}
    assert not DEAD & _phones(emu)
    assert {"447700900104", "447700900117", "447700900119"} <= _phones(emu)
    report = _report(work)
    for dead in DEAD:
        assert (report[dead]["status"], report[dead]["error_code"]) == (
            "invalid", "number-unreachable")
    assert (report["447700900104"]["action"], report["447700900104"]["status"]) == ("create", "ok")


def test_verify_without_skip_writes_every_row(emu: Emulator, work: Path) -> None:
    result = _sync(emu, work, "--verify", "new")
    assert result.exit_code == 0, result.stderr
    assert _phones(emu) >= DEAD


def test_skip_unreachable_alone_uses_earlier_verifications(emu: Emulator, work: Path) -> None:
    assert _sync(emu, work, "--verify", "new", "--dry-run").exit_code == 0
    assert emu.hlr_stats()["lookups"] == 0  # a dry run pays nothing
    verify = ["verify", str(work / "sheet.csv"), "--state", str(work / "state.sqlite3"),
              "--api-url", emu.url, "--hlr-url", emu.url + "/rest", "--verify", "new",
              "--hlr-poll-interval", "0.05"]
    env = {"BSG_API_KEY": "live_vsync", "BSG_HLR_API_KEY": HLR_KEY, "BSG_STATE": ""}
    assert CliRunner().invoke(cli, verify, env=env).exit_code == 0
    paid = emu.hlr_stats()["lookups"]
    result = _sync(emu, work, "--skip-unreachable")
    assert result.exit_code == 1, result.stderr
    assert emu.hlr_stats()["lookups"] == paid  # no new lookups
    assert not DEAD & _phones(emu)


def test_sync_json_carries_the_verification(emu: Emulator, work: Path) -> None:
    result = _sync(emu, work, "--verify", "new", "--skip-unreachable", "--json")
    assert result.exit_code == 1, result.stderr
    body = json.loads(result.stdout)
    assert body["counts"]["invalid"] == 2  # the sync's own summary is unchanged
    verify = body["verify"]
    assert verify["counts"] == {"absent": 1, "active": 2, "failed": 1, "unknown": 1}
    assert (verify["lookups"], verify["cost"], verify["currency"]) == (5, "0.0250000", "EUR")
    by_number = {r["msisdn"]: r for r in verify["results"]}
    assert by_number["447700900119"]["roaming"] == 1
