"""Report cells per format: XLSX holds exact text under people's headings, CSV neutralises
formula starts, JSONL holds exact values; the Summary names the tab read (real emulator)."""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from bsg_sync import report
from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.models import REPORT_COLUMNS, Action, RowResult, Status
from bsg_sync.sync import SyncOptions, run_sync

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"
FORMULA_LIKE = ("+list VIP", "=1+2", "-5 left", "@SUM(A1)", "\tTabbed", "\rCR")
HEADINGS = ["Row", "Contact ID", "Phone", "Action", "Status", "Error code", "Problem",
            "Changes", "Attempts", "HTTP status", "HLR status", "HLR checked", "Number check",
            "Network", "Country", "Ported", "Roaming", "Number checked at", "Check cost"]


def results() -> list[RowResult]:
    """One row per formula-like text, in changes, error and phone."""
    return [
        RowResult(i + 2, 100 + i, text, Action.UPDATE, Status.PLANNED, "x-code", text,
                  changes=text)
        for i, text in enumerate(FORMULA_LIKE)
    ]


def write(tmp_path: Path, suffix: str) -> Path:
    path = tmp_path / f"cells.report{suffix}"
    rows = results()
    summary = report.summarise(
        rows, run_id=1, sheet=tmp_path / "in.csv", sheet_sha256="0" * 64, report_path=path,
        errors_path=None, dry_run=True, started_at="", finished_at="", duration_s=0.0,
        options={}, requests=0, retries=0)
    report.write_report(path, rows, summary)
    return path


def test_xlsx_text_cells_hold_the_exact_text_and_no_formula(tmp_path: Path) -> None:
    path = write(tmp_path, ".xlsx")
    ws = openpyxl.load_workbook(path)["Report"]
    col = {name: i + 1 for i, name in enumerate(REPORT_COLUMNS)}
    for r, text in enumerate(FORMULA_LIKE, 2):
        for name in ("changes", "error", "phone"):
            cell = ws.cell(r, col[name])
            assert (cell.value, cell.data_type) == (text, "s"), (name, text)
    with zipfile.ZipFile(path) as zf:
        xml = zf.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml and 't="inlineStr"' in xml
    calamine = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Report").to_python()
    assert [row[7] for row in calamine[1:]] == list(FORMULA_LIKE)


def test_xlsx_headings_are_peoples_words(tmp_path: Path) -> None:
    ws = openpyxl.load_workbook(write(tmp_path, ".xlsx"))["Report"]
    assert [c.value for c in ws[1]] == HEADINGS
    assert len(HEADINGS) == len(REPORT_COLUMNS)


def test_csv_neutralises_formula_starts_and_keeps_machine_names(tmp_path: Path) -> None:
    with write(tmp_path, ".csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(REPORT_COLUMNS)
    assert [row[7] for row in rows[1:]] == ["'" + t for t in FORMULA_LIKE]


def test_jsonl_holds_the_exact_values_under_machine_names(tmp_path: Path) -> None:
    lines = write(tmp_path, ".jsonl").read_text("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert all(list(r) == list(REPORT_COLUMNS) for r in records)
    assert [r["changes"] for r in records] == list(FORMULA_LIKE)


# --------------------------------------------------------------------------- summary


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(), seed=SAMPLES / "seed.json") as server:
        yield server


def summary_pairs(path: Path) -> dict[Any, Any]:
    ws = openpyxl.load_workbook(path)["Summary"]
    return {row[0]: row[1] for row in ws.iter_rows(values_only=True) if row and row[0]}


def dry_run(emu: Emulator, tmp_path: Path, sheet: str, mapping: str) -> Path:
    out = tmp_path / "run.report.xlsx"
    opts = SyncOptions(sheet=SAMPLES / sheet, mapping=SAMPLES / mapping,
                       state=tmp_path / "state.sqlite3", api_url=emu.url, report=out,
                       dry_run=True, policy=RetryPolicy.fast(), max_rps=None)
    run_sync(opts, "live_cells_tests")
    return out


def test_summary_names_the_tab_read_when_none_was_asked_for(
    emu: Emulator, tmp_path: Path
) -> None:
    pairs = summary_pairs(dry_run(emu, tmp_path, "newsletter.xlsx", "newsletter.toml"))
    assert pairs["sheet tab"] == "Sign-ups"


def test_summary_of_a_csv_has_no_empty_tab_row(emu: Emulator, tmp_path: Path) -> None:
    pairs = summary_pairs(dry_run(emu, tmp_path, "contacts.csv", "contacts.toml"))
    assert "sheet tab" not in pairs
    assert pairs["sheet"] == str(SAMPLES / "contacts.csv")


# --------------------------------------------------------------------------- counting


def test_statuses_are_counted_in_one_place_for_results_and_plans() -> None:
    from bsg_sync.models import PlannedRow

    rows = [*results(), RowResult(20, status=Status.OK), RowResult(21, status=Status.OK)]
    counts = report.count_statuses(rows)
    assert list(counts) == [s.value for s in Status]
    assert counts["planned"] == len(FORMULA_LIKE) and counts["ok"] == 2
    assert sum(counts.values()) == len(rows)
    plan = [PlannedRow(2, Action.UPDATE, Status.PLANNED), PlannedRow(3, Action.NONE,
                                                                      Status.UNCHANGED)]
    assert report.count_statuses(plan)["planned"] == 1
    summary = report.summarise(
        rows, run_id=1, sheet=Path("in.csv"), sheet_sha256="", report_path=None,
        errors_path=None, dry_run=True, started_at="", finished_at="", duration_s=0.0,
        options={}, requests=0, retries=0)
    assert summary.counts == counts


def test_a_summary_rebuilt_from_the_store_has_the_runs_duration_and_local_times() -> None:
    import re
    from datetime import datetime

    from bsg_sync.state import RunInfo

    info = RunInfo(4, "/data/in.csv", "ab", "2025-03-01T09:00:00+00:00",
                   "2025-03-01T09:00:05+00:00", {"dry run": "False"}, {})
    summary = report.summary_of_run(info, results(), None)
    assert summary.duration_s == 5.0
    local = datetime.fromisoformat(info.started_at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert summary.started_at == local
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", summary.finished_at)
    unfinished = report.summary_of_run(RunInfo(5, "x", "", info.started_at, None, {}, {}),
                                       [], None)
    assert (unfinished.duration_s, unfinished.finished_at) == (0.0, "")
