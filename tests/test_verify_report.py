"""The HLR checks in the sync's report (CSV/JSONL/XLSX), its summary and `--json`, stored with
the run (`show RUN`, a report rebuilt later), and `bsg-sync verify`'s own per-number report."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner, Result

from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.models import REPORT_COLUMNS
from bsg_sync.report import REPORT_HEADINGS
from bsg_sync.state import MIGRATIONS, StateStore

HLR_KEY = "hlrReportKey0123"
SEED = {"fields": [{"id": 387714, "name": "Name", "type": "text"}], "groups": [],
        "contacts": [{"id": 1001, "phone": 447700900101, "fields": {"387714": "A"}}]}
# last digit: 4 active, 5 active (ported), 6 absent, 7 unknown, 9 active (roaming)
SHEET = "phone,Name\n447700900101,A2\n447700900104,D\n447700900105,E\n447700900106,F\n" \
        "447700900117,G\n447700900119,I\n447700900104,D\n"
LOOKED_UP = {"447700900104", "447700900105", "447700900106", "447700900117", "447700900119"}
VERIFY_COLUMNS = ["verify_status", "network", "country", "ported", "roaming", "verified_at",
                  "verify_cost"]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    seed = tmp_path_factory.mktemp("seed") / "seed.json"
    seed.write_text(json.dumps(SEED))
    with Emulator(EmulatorConfig(hlr_api_key=HLR_KEY, hlr_delay=0.05), seed=seed) as server:
        yield server


@pytest.fixture()
def work(emu: Emulator, tmp_path: Path) -> Path:
    emu.reset()
    (tmp_path / "sheet.csv").write_text(SHEET)
    (tmp_path / "sheet.toml").write_text('[columns]\n"phone" = "phone"\n"Name" = "field:Name"\n')
    return tmp_path


ENV = {"BSG_API_KEY": "live_vreport", "BSG_HLR_API_KEY": HLR_KEY, "BSG_STATE": "",
       "BSG_API_URL": "", "BSG_HLR_URL": ""}


def _sync(emu: Emulator, work: Path, report: str, *extra: str) -> Result:
    args = ["sync", str(work / "sheet.csv"), "--state", str(work / "state.sqlite3"),
            "--api-url", emu.url, "--hlr-url", emu.url + "/rest", "--hlr-poll-interval", "0.02",
            "--report", str(work / report), "--no-rate-limit", "--create-missing", *extra]
    return CliRunner().invoke(cli, args, env=ENV, catch_exceptions=False)


def _verify(emu: Emulator, work: Path, *extra: str) -> Result:
    args = ["verify", str(work / "sheet.csv"), "--state", str(work / "state.sqlite3"),
            "--api-url", emu.url, "--hlr-url", emu.url + "/rest", "--hlr-poll-interval", "0.02",
            "--max-rps", "1000", *extra]
    return CliRunner().invoke(cli, args, env=ENV, catch_exceptions=False)


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _by_phone(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(r["phone"]): r for r in rows}


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text("utf-8-sig").splitlines()))


def test_report_columns_end_with_the_verify_columns() -> None:
    assert list(REPORT_COLUMNS[-7:]) == VERIFY_COLUMNS
    assert REPORT_COLUMNS[:12][-2:] == ("hlr_status", "hlr_last_check")  # the contract's 12 first


def test_sync_verify_fills_the_verify_columns_of_the_checked_rows(emu: Emulator, work: Path
                                                                  ) -> None:
    result = _sync(emu, work, "report.jsonl", "--verify", "new")
    assert result.exit_code == 0, result.stderr
    rows = _jsonl(work / "report.jsonl")
    assert [list(r)[-7:] for r in rows] == [VERIFY_COLUMNS] * 7
    by = _by_phone(rows)
    assert {k: by["447700900104"][k] for k in VERIFY_COLUMNS[:5]} == {
        "verify_status": "active", "network": "23410", "country": "United Kingdom",
        "ported": 0, "roaming": 0}
    assert (by["447700900105"]["ported"], by["447700900119"]["roaming"]) == (1, 1)
    assert by["447700900106"]["verify_status"] == "absent"
    assert by["447700900117"]["verify_status"] == "unknown"
    assert by["447700900104"]["verify_cost"] == "0.0050000"
    assert datetime.fromisoformat(str(by["447700900104"]["verified_at"])) > (
        datetime.now(timezone.utc) - timedelta(minutes=5))
    # in the book already, so `--verify new` did not check it: every verify column empty
    assert {k: by["447700900101"][k] for k in VERIFY_COLUMNS} == dict.fromkeys(VERIFY_COLUMNS)
    # the repeated row of ...104 carries the same check (one lookup, paid once)
    assert [r["verify_status"] for r in rows if r["phone"] == "447700900104"] == ["active"] * 2


def test_a_later_sync_without_verify_shows_the_cached_checks_at_no_cost(emu: Emulator,
                                                                        work: Path) -> None:
    assert _sync(emu, work, "first.jsonl", "--verify", "new").exit_code == 0
    paid = emu.hlr_stats()["lookups"]
    result = _sync(emu, work, "second.csv")
    assert result.exit_code == 0, result.stderr
    assert emu.hlr_stats()["lookups"] == paid
    by = {r["phone"]: r for r in _csv(work / "second.csv")}
    assert (by["447700900106"]["verify_status"], by["447700900106"]["verify_cost"]) == (
        "absent", "0")
    assert by["447700900105"]["ported"] == "1"
    assert by["447700900101"]["verify_status"] == ""
    assert "HLR check of 5 numbers" in result.stderr and "5 from the cache" in result.stderr


def test_a_sync_with_nothing_verified_leaves_the_columns_empty(emu: Emulator, work: Path
                                                               ) -> None:
    result = _sync(emu, work, "report.csv", "--dry-run")
    assert result.exit_code == 0, result.stderr
    rows = _csv(work / "report.csv")
    assert rows and all(r[c] == "" for r in rows for c in VERIFY_COLUMNS)
    assert "HLR check" not in result.stderr


def test_xlsx_report_has_the_verify_columns(emu: Emulator, work: Path) -> None:
    assert _sync(emu, work, "report.xlsx", "--verify", "new").exit_code == 0
    ws = openpyxl.load_workbook(work / "report.xlsx")["Report"]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0] == [REPORT_HEADINGS[c] for c in REPORT_COLUMNS]  # people's words in XLSX
    status = REPORT_COLUMNS.index("verify_status")
    by = {r[REPORT_COLUMNS.index("phone")]: r for r in rows[1:]}
    assert by["447700900106"][status] == "absent"
    assert by["447700900101"][status] is None
    assert ws.auto_filter.ref == f"A1:S{len(rows)}"


def test_sync_summary_and_json_give_counts_cost_and_currency(emu: Emulator, work: Path
                                                             ) -> None:
    result = _sync(emu, work, "report.jsonl", "--verify", "new", "--json")
    assert result.exit_code == 0, result.stderr
    verified = json.loads(result.stdout)["verified"]
    assert verified == {"numbers": 5, "counts": {"absent": 1, "active": 3, "unknown": 1},
                        "looked_up": 5, "from_cache": 0, "cost": "0.0250000",
                        "currency": "EUR"}
    lines = result.stderr.strip().splitlines()
    assert lines[-2] == ("HLR check of 5 numbers: 1 absent, 3 active, 1 unknown; "
                         "5 looked up for 0.0250000 EUR")
    assert lines[-1].startswith("7 rows:")  # the summary sentence stays the last line


def test_json_of_a_sync_without_checks_says_none(emu: Emulator, work: Path) -> None:
    result = _sync(emu, work, "report.jsonl", "--dry-run", "--json")
    assert json.loads(result.stdout)["verified"]["numbers"] == 0


def test_show_and_a_rebuilt_report_carry_the_runs_checks(emu: Emulator, work: Path) -> None:
    assert _sync(emu, work, "report.jsonl", "--verify", "new").exit_code == 0
    original = _jsonl(work / "report.jsonl")
    # a later verification must not rewrite what this run recorded
    assert _verify(emu, work, "--verify", "all").exit_code == 0
    shown = CliRunner().invoke(cli, ["show", "1", "--state", str(work / "state.sqlite3"),
                                     "--report", str(work / "again.jsonl")])
    assert shown.exit_code == 0, shown.stderr
    assert "HLR check of 5 numbers: 1 absent, 3 active, 1 unknown; 5 looked up for " \
           "0.0250000 EUR" in shown.stdout
    again = _jsonl(work / "again.jsonl")
    assert [{c: r[c] for c in VERIFY_COLUMNS} for r in again] == [
        {c: r[c] for c in VERIFY_COLUMNS} for r in original]


def test_the_check_writes_its_own_report_beside_the_sheet(emu: Emulator, work: Path) -> None:
    result = _verify(emu, work, "--verify", "new", "--json")
    assert result.exit_code == 0, result.stderr
    path = work / "sheet.verify.csv"
    assert json.loads(result.stdout)["report_path"] == str(path)
    assert result.stderr.strip().splitlines()[-1].endswith(f"— report: {path}")
    rows = _csv(path)
    assert {r["msisdn"] for r in rows} == LOOKED_UP
    assert {r["msisdn"]: r["verify_status"] for r in rows}["447700900106"] == "absent"


def test_a_dry_check_writes_no_report(emu: Emulator, work: Path) -> None:
    result = _verify(emu, work, "--verify", "new", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert not (work / "sheet.verify.csv").exists()
    assert "report:" not in result.stderr


def test_an_unwritable_report_folder_is_refused_before_paying(emu: Emulator, work: Path
                                                                  ) -> None:
    result = _verify(emu, work, "--verify", "new", "--report", str(work / "no" / "v.csv"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert emu.hlr_stats()["lookups"] == 0


def test_store_migrates_and_prune_drops_a_runs_checks(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with StateStore(path) as store:
        run = store.begin_run(sheet="s.csv", sheet_sha256="0" * 64, mapping="m.toml",
                              options={})
        store.record_run_verified(run, [("447700900104", "active", "23410", "United Kingdom",
                                         0, 0, "2026-01-01T00:00:00+00:00", "0.005", "EUR",
                                         0)])
        assert len(store.run_verified(run)) == 1
        store.prune(days=0, dry_run_days=0, now=datetime.now(timezone.utc) + timedelta(days=1))
        assert store.run_verified(run) == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 5


def test_with_verified_keeps_every_other_field() -> None:
    import dataclasses
    from decimal import Decimal

    from bsg_sync.models import Action, RowResult, Status
    from bsg_sync.verify import Verified, verify_cells, with_verified

    r = RowResult(7, 1001, "447700900104", Action.UPDATE, Status.OK, "c", "e", "x", 2, 200,
                  "active", "2025-01-01 00:00:00")
    v = Verified("447700900104", "absent", "23410", "United Kingdom", True, False,
                 "2026-01-01T00:00:00+00:00", Decimal("0.005"), "EUR")
    assert with_verified(r, verify_cells(v)) == dataclasses.replace(
        r, verify_status="absent", network="23410", country="United Kingdom", ported=1,
        roaming=0, verified_at="2026-01-01T00:00:00+00:00", verify_cost="0.005")
    cached = dataclasses.replace(v, cached=True)
    assert with_verified(r, verify_cells(cached)).verify_cost == "0"
    assert with_verified(r, None) is r
