"""Tests for bsg_sync.report: every format read back, styles, summary, errors file, sentences."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from bsg_sync import report, xlsxwrite
from bsg_sync.errors import UsageError
from bsg_sync.models import REPORT_COLUMNS, Action, RowResult, Sheet, SheetRow, Status

# One row per status, out of order; row 9 carries every formula-start character in turn.
RESULTS = [
    RowResult(9, None, "+44 7700", Action.SKIP, Status.INVALID, "invalid-phone", "=1+2"),
    RowResult(
        2,
        101,
        "447700900001",
        Action.UPDATE,
        Status.OK,
        changes="City: A → B",
        attempts=1,
        http_status=200,
        hlr_status="active",
        hlr_last_check="2025-03-01 09:15:00",
    ),
    RowResult(3, 102, "447700900002", Action.NONE, Status.UNCHANGED, hlr_status="absent"),
    RowResult(4, 103, "447700900003", Action.UPDATE, Status.PLANNED, changes="+list News"),
    RowResult(
        5,
        None,
        "447700900004",
        Action.SKIP,
        Status.NOT_FOUND,
        "no-contact",
        "@SUM(A1)",
        hlr_status=None,
    ),
    RowResult(
        6,
        105,
        "447700900005",
        Action.UPDATE,
        Status.FAILED,
        "http-422",
        "-2+3 BSG said no",
        attempts=3,
        http_status=422,
        hlr_status="failed",
    ),
    RowResult(7, 106, "447700900006", Action.UPDATE, Status.NOT_SENT, changes="\tTabbed"),
    RowResult(
        8,
        107,
        "447700900007",
        Action.CREATE,
        Status.OK,
        changes="\rCR",
        attempts=1,
        http_status=201,
        hlr_status="absent",
    ),
]
EXPECTED: list[list[Any]] = [  # the report rows, sorted by row, as read back from the CSV
    [
        2,
        101,
        "447700900001",
        "update",
        "ok",
        "",
        "",
        "City: A → B",
        1,
        200,
        "active",
        "2025-03-01 09:15:00",
    ],
    [3, 102, "447700900002", "none", "unchanged", "", "", "", 0, None, "absent", None],
    [4, 103, "447700900003", "update", "planned", "", "", "'+list News", 0, None, None, None],
    [
        5,
        None,
        "447700900004",
        "skip",
        "not_found",
        "no-contact",
        "'@SUM(A1)",
        "",
        0,
        None,
        None,
        None,
    ],
    [
        6,
        105,
        "447700900005",
        "update",
        "failed",
        "http-422",
        "'-2+3 BSG said no",
        "",
        3,
        422,
        "failed",
        None,
    ],
    [7, 106, "447700900006", "update", "not_sent", "", "", "'\tTabbed", 0, None, None, None],
    [8, 107, "447700900007", "create", "ok", "", "", "'\rCR", 1, 201, "absent", None],
    [9, None, "'+44 7700", "skip", "invalid", "invalid-phone", "'=1+2", "", 0, None, None, None],
]
EXPECTED = [[*row, *[None] * 7] for row in EXPECTED]  # no HLR check: the verify_* columns empty


# XLSX (text cells) and JSONL hold the exact text: only the CSV neutralises formula starts
RAW: list[list[Any]] = [
    [v[1:] if isinstance(v, str) and v.startswith("'") else v for v in row] for row in EXPECTED
]


def make_summary(
    tmp_path: Path, results: list[RowResult] = RESULTS, **over: Any
) -> report.RunSummary:
    args: dict[str, Any] = {
        "run_id": 7,
        "sheet": tmp_path / "contacts.csv",
        "sheet_sha256": "ab" * 32,
        "report_path": tmp_path / "contacts.report.xlsx",
        "errors_path": None,
        "dry_run": False,
        "started_at": "2025-03-01 09:00:00",
        "finished_at": "2025-03-01 09:00:05",
        "duration_s": 5.25,
        "options": {"concurrency": "4", "mapping": "=evil.toml"},
        "requests": 12,
        "retries": 2,
    }
    args.update(over)
    return report.summarise(results, **args)


def write(tmp_path: Path, suffix: str) -> Path:
    path = tmp_path / f"out.report{suffix}"
    report.write_report(path, iter(RESULTS), make_summary(tmp_path))
    return path


# --------------------------------------------------------------------------- formats


def test_csv_report_round_trips_every_column_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path, ".csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines(keepends=True)))
    assert rows[0] == list(REPORT_COLUMNS)
    as_text = [["" if v is None else str(v) for v in row] for row in EXPECTED]
    assert rows[1:] == as_text


def test_jsonl_report_keeps_ints_and_nulls(tmp_path: Path) -> None:
    path = write(tmp_path, ".jsonl")
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [list(r) for r in records] == [list(REPORT_COLUMNS)] * len(EXPECTED)
    assert [list(r.values()) for r in records] == RAW


def test_xlsx_report_round_trips_every_column(tmp_path: Path) -> None:
    ws = openpyxl.load_workbook(write(tmp_path, ".xlsx"))["Report"]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0] == [report.REPORT_HEADINGS[c] for c in REPORT_COLUMNS]
    expected = [[None if v == "" else v for v in row] for row in RAW]
    assert rows[1:] == expected


def test_xlsx_report_styles(tmp_path: Path) -> None:
    # every status once: the sample rows plus an undo row left alone
    skipped = RowResult(10, 110, "447700900010", Action.SKIP, Status.SKIPPED, "changed-since")
    path = tmp_path / "styles.report.xlsx"
    report.write_report(path, iter([*RESULTS, skipped]), make_summary(tmp_path))
    ws = openpyxl.load_workbook(path)["Report"]
    assert all(c.font.b for c in ws[1])
    assert not ws["A2"].font.b
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:S{len(RESULTS) + 2}"  # 19 columns
    fills = {ws.cell(r, 5).value: ws.cell(r, 5).fill.fgColor.rgb
             for r in range(2, len(RESULTS) + 3)}
    assert set(fills) == {s.value for s in Status}
    assert len(set(fills.values())) == len(Status)  # one distinct colour per status
    assert fills["ok"] == "FFC6EFCE"
    phone = ws["C2"]
    assert phone.data_type == "s" and phone.number_format == "@"
    assert ws.column_dimensions["G"].width >= 40


def test_xlsx_report_opens_in_calamine_too(tmp_path: Path) -> None:
    book = CalamineWorkbook.from_path(str(write(tmp_path, ".xlsx")))
    assert book.sheet_names == ["Report", "Summary"]
    rows = book.get_sheet_by_name("Report").to_python()
    assert rows[1][2] == "447700900001" and rows[-1][6] == "=1+2"


def test_xlsx_summary_sheet(tmp_path: Path) -> None:
    ws = openpyxl.load_workbook(write(tmp_path, ".xlsx"))["Summary"]
    pairs = {row[0]: row[1] for row in ws.iter_rows(values_only=True) if row[0]}
    assert pairs["run id"] == 7 and pairs["requests"] == 12 and pairs["retries"] == 2
    assert pairs["sheet"] == str(tmp_path / "contacts.csv")
    assert pairs["sheet sha256"] == "ab" * 32
    assert pairs["started"] == "2025-03-01 09:00:00"
    assert pairs["finished"] == "2025-03-01 09:00:05"
    assert pairs["duration (s)"] == 5.25
    assert pairs["ok"] == 2 and pairs["not_sent"] == 1 and pairs["unchanged"] == 1
    assert pairs["http-422"] == 1 and pairs["invalid-phone"] == 1
    assert pairs["absent"] == 2 and pairs["failed"] == 1
    assert pairs["concurrency"] == "4"
    assert ws.cell(1, 1).font.b


def test_empty_report_has_header_only(tmp_path: Path) -> None:
    path = tmp_path / "empty.report.xlsx"
    report.write_report(path, [], make_summary(tmp_path, results=[]))
    ws = openpyxl.load_workbook(path)["Report"]
    headings = [report.REPORT_HEADINGS[c] for c in REPORT_COLUMNS]
    assert [[c.value for c in row] for row in ws.iter_rows()] == [headings]
    assert ws.auto_filter.ref == "A1:S1"


@pytest.mark.parametrize("suffix", [".xlsx", ".csv", ".jsonl"])
def test_files_are_private_and_replace_old_ones(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out.report{suffix}"
    path.write_text("old")
    path.chmod(0o644)
    report.write_report(path, RESULTS, make_summary(tmp_path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() != b"old"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_unknown_extension_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\.xlsx, \.csv or \.jsonl"):
        report.write_report(tmp_path / "out.txt", RESULTS, make_summary(tmp_path))


def test_refuses_to_overwrite_the_input_sheet(tmp_path: Path) -> None:
    sheet = tmp_path / "contacts.csv"
    sheet.write_text("phone\n1\n")
    summary = make_summary(tmp_path)
    with pytest.raises(UsageError, match="would overwrite the input sheet"):
        report.write_report(tmp_path / "sub" / ".." / "contacts.csv", RESULTS, summary)
    assert sheet.read_text() == "phone\n1\n"


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        report.write_report(tmp_path / "nope" / "r.csv", RESULTS, make_summary(tmp_path))


# --------------------------------------------------------------------------- neutralise


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+447700", "'+447700"),
        ("-5", "'-5"),
        ("@A1", "'@A1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("447700900123", "447700900123"),
        ("", ""),
        (None, ""),
        (42, "42"),
        (Status.NOT_SENT, "not_sent"),
    ],
)
def test_neutralise(value: object, expected: str) -> None:
    assert report.neutralise(value) == expected


# --------------------------------------------------------------------------- errors file


def make_sheet(tmp_path: Path, headers: tuple[str, ...], rows: list[SheetRow]) -> Sheet:
    return Sheet(path=tmp_path / "in.xlsx", headers=headers, rows=rows, sha256="0")


ERR_RESULTS = [
    RowResult(5, status=Status.FAILED, error_code="http-422", error="BSG: bad"),
    RowResult(2, status=Status.OK, action=Action.UPDATE),
    RowResult(3, status=Status.INVALID, error_code="invalid-phone", error="not a phone"),
    RowResult(4, status=Status.NOT_FOUND, error_code="no-contact", error="no such phone"),
    RowResult(6, status=Status.NOT_SENT),
]
SHEET_ROWS = [
    SheetRow(2, ("Ann", "+44 7700 900001", "=cmd")),
    SheetRow(3, ("Bob", "12", "")),
    SheetRow(4, ("Cy", "447700900003", "x")),
    SheetRow(5, ("Di", "447700900004", "y")),
    SheetRow(6, ("Ed", "447700900005", "z")),
]


def test_errors_csv_keeps_input_columns_and_order(tmp_path: Path) -> None:
    sheet = make_sheet(tmp_path, ("Name", "Mobile", "Note"), SHEET_ROWS)
    path = tmp_path / "errors.csv"
    assert report.write_errors(path, sheet, ERR_RESULTS) == 3
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows == [
        ["Name", "Mobile", "Note", "error_code", "error"],
        ["Bob", "12", "", "invalid-phone", "not a phone"],
        ["Cy", "447700900003", "x", "no-contact", "no such phone"],
        ["Di", "447700900004", "y", "http-422", "BSG: bad"],
    ]


def test_errors_rerun_replaces_error_columns(tmp_path: Path) -> None:
    rows = [
        SheetRow(3, ("old-code", "+44 7700 900001", "old msg", "=cmd")),
        SheetRow(4, ("", "447700900002", "", "ok")),
    ]
    sheet = make_sheet(tmp_path, ("error_code", "Mobile", "error", "Note"), rows)
    results = [RowResult(3, status=Status.INVALID, error_code="invalid-phone", error="bad")]
    path = tmp_path / "errors.csv"
    assert report.write_errors(path, sheet, results) == 1
    got = list(csv.reader(path.read_text("utf-8-sig").splitlines()))
    # a plain phone stays readable for the re-run; a formula is neutralised
    assert got == [
        ["Mobile", "Note", "error_code", "error"],
        ["+44 7700 900001", "'=cmd", "invalid-phone", "bad"],
    ]


def test_errors_xlsx_cells_are_exact_text(tmp_path: Path) -> None:
    sheet = make_sheet(tmp_path, ("Name", "Mobile", "Note"), SHEET_ROWS)
    results = [RowResult(2, status=Status.INVALID, error_code="dup", error="twice")]
    path = tmp_path / "errors.xlsx"
    assert report.write_errors(path, sheet, results) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ws = openpyxl.load_workbook(path).active
    assert ws is not None
    assert [c.value for c in ws[1]] == ["Name", "Mobile", "Note", "error_code", "error"]
    cells = list(ws[2])
    assert [c.value for c in cells] == ["Ann", "+44 7700 900001", "=cmd", "dup", "twice"]
    assert all(c.data_type == "s" for c in cells)  # text, never a formula
    assert ws.freeze_panes == "A2" and ws[1][0].font.b


def test_errors_file_refuses_input_and_bad_extension(tmp_path: Path) -> None:
    sheet = make_sheet(tmp_path, ("Mobile",), [])
    with pytest.raises(UsageError, match="--errors would overwrite the input sheet"):
        report.write_errors(tmp_path / "in.xlsx", sheet, [])
    with pytest.raises(UsageError, match=r"\.csv or \.xlsx"):
        report.write_errors(tmp_path / "errors.jsonl", sheet, [])


# --------------------------------------------------------------------------- summaries


def test_summarise_counts_every_status(tmp_path: Path) -> None:
    s = make_summary(tmp_path)
    assert s.counts == {
        "ok": 2,
        "unchanged": 1,
        "planned": 1,
        "invalid": 1,
        "not_found": 1,
        "failed": 1,
        "not_sent": 1,
        "skipped": 0,
    }
    assert list(s.counts) == [st.value for st in Status]
    assert s.error_codes == {"http-422": 1, "invalid-phone": 1, "no-contact": 1}
    assert s.hlr == {"absent": 2, "active": 1, "failed": 1}
    assert s.rows == 8


def test_summary_sentence_real_run(tmp_path: Path) -> None:
    results = (
        [RowResult(i, status=Status.UNCHANGED) for i in range(380)]
        + [RowResult(i, status=Status.OK, action=Action.UPDATE) for i in range(29)]
        + [RowResult(i, status=Status.INVALID, error_code="invalid-phone") for i in range(3)]
    )
    s = make_summary(tmp_path, results, report_path=Path("contacts.report.xlsx"))
    assert report.summary_sentence(s) == (
        "412 rows: 380 unchanged, 29 updated, 3 invalid — report: contacts.report.xlsx"
    )


def test_summary_sentence_every_status_and_errors_path(tmp_path: Path) -> None:
    s = make_summary(tmp_path, report_path=Path("r.csv"), errors_path=Path("e.csv"))
    assert report.summary_sentence(s) == (
        "8 rows: 1 unchanged, 1 updated, 1 created, 1 planned, 1 invalid, 1 not found, "
        "1 failed, 1 not sent — report: r.csv, errors: e.csv"
    )


def test_summary_sentence_dry_run(tmp_path: Path) -> None:
    results = [RowResult(2, status=Status.PLANNED, action=Action.UPDATE)] * 29
    s = make_summary(tmp_path, results, dry_run=True, report_path=None)
    assert report.summary_sentence(s) == "29 rows: 29 planned (dry run, nothing sent)"
    one = make_summary(tmp_path, results[:1], report_path=None)
    assert report.summary_sentence(one) == "1 row: 1 planned"


def test_hlr_sentence(tmp_path: Path) -> None:
    results = (
        [RowResult(i, hlr_status="absent") for i in range(7)]
        + [RowResult(i, hlr_status="failed") for i in range(2)]
        + [RowResult(i, hlr_status=s) for i, s in enumerate(["active", "unknown", "", None])]
    )
    assert report.hlr_sentence(make_summary(tmp_path, results)) == (
        "7 numbers absent, 2 failed HLR"
    )
    quiet = [RowResult(1, hlr_status="active"), RowResult(2, hlr_status="unknown")]
    assert report.hlr_sentence(make_summary(tmp_path, quiet)) is None
    odd = [RowResult(1, hlr_status="barred"), RowResult(2, hlr_status="sent")]
    assert report.hlr_sentence(make_summary(tmp_path, odd)) == (
        "1 number barred, 1 HLR check pending"
    )


def test_summary_json(tmp_path: Path) -> None:
    s = make_summary(tmp_path, errors_path=tmp_path / "e.csv")
    got = report.summary_json(s)
    json.dumps(got)  # serialisable as is
    assert got == {
        "run_id": 7,
        "rows": 8,
        "dry_run": False,
        "counts": dict(s.counts),
        "error_codes": {"http-422": 1, "invalid-phone": 1, "no-contact": 1},
        "hlr": {"absent": 2, "active": 1, "failed": 1},
        "requests": 12,
        "retries": 2,
        "ok_actions": {"update": 1, "create": 1},
        "duration_s": 5.25,
        "started_at": "2025-03-01 09:00:00",
        "finished_at": "2025-03-01 09:00:05",
        "sheet": str(tmp_path / "contacts.csv"),
        "sheet_sha256": "ab" * 32,
        "report_path": str(tmp_path / "contacts.report.xlsx"),
        "errors_path": str(tmp_path / "e.csv"),
    }


def test_xlsx_cells_longer_than_excel_allows_are_cut(tmp_path: Path) -> None:
    long_error = "x" * 40_000
    results = [RowResult(row=2, status=Status.FAILED, error_code="http-422", error=long_error)]
    path = tmp_path / "r.xlsx"
    report.write_report(path, results, make_summary(tmp_path, results))
    ws = openpyxl.load_workbook(path)["Report"]
    assert len(ws["G2"].value) == 32_767


def test_jsonl_keeps_one_record_per_line_whatever_the_text(tmp_path: Path) -> None:
    odd = "a\x85b\u2028c\u2029d\ne é"
    results = [RowResult(row=2, status=Status.INVALID, error=odd), RowResult(row=3)]
    path = tmp_path / "r.jsonl"
    report.write_report(path, results, make_summary(tmp_path, results))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["error"] == odd
    assert "é" in lines[0]  # accents stay readable


# --------------------------------------------------------------------------- Excel's row limit


def test_excel_row_limit_is_excels() -> None:
    assert xlsxwrite.MAX_ROWS == 1_048_576  # XFD1048576: Excel opens no sheet with more rows


def test_xlsx_report_past_the_row_limit_goes_on_in_more_sheets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """130 results with room for 59 under each heading (a limit of 60 rows, the Summary's
    fit): Report, Report (2), Report (3), every row once, in order, each sheet opening with
    the heading and filtered to its own rows."""
    monkeypatch.setattr(xlsxwrite, "MAX_ROWS", 60)
    results = [RowResult(n, n + 100, f"44770090{n:04d}", Action.UPDATE, Status.OK)
               for n in range(2, 132)]
    path = tmp_path / "big.report.xlsx"
    report.write_report(path, results, make_summary(tmp_path, results))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Report", "Report (2)", "Report (3)", "Summary"]
    rows = []
    last = xlsxwrite.column_letter(len(REPORT_COLUMNS) - 1)
    for name, size in (("Report", 59), ("Report (2)", 59), ("Report (3)", 12)):
        ws = book[name]
        got = [[c.value for c in r] for r in ws.iter_rows()]
        assert got[0] == [report.REPORT_HEADINGS[c] for c in REPORT_COLUMNS]
        assert len(got) == size + 1
        assert ws.auto_filter.ref == f"A1:{last}{size + 1}"
        rows += got[1:]
    assert [r[0] for r in rows] == list(range(2, 132))


def test_xlsx_report_at_exactly_the_limit_is_one_sheet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsxwrite, "MAX_ROWS", 60)
    results = [RowResult(n, status=Status.UNCHANGED) for n in range(2, 61)]
    path = tmp_path / "full.report.xlsx"
    report.write_report(path, results, make_summary(tmp_path, results))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Report", "Summary"]
    assert book["Report"].max_row == 60


def test_errors_xlsx_past_the_row_limit_goes_on_in_more_sheets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsxwrite, "MAX_ROWS", 3)
    rows = [SheetRow(n, (f"name{n}", f"44770090{n:04d}")) for n in range(2, 7)]
    sheet = make_sheet(tmp_path, ("Name", "Mobile"), rows)
    results = [RowResult(n, status=Status.INVALID, error_code="invalid-phone", error="bad")
               for n in range(2, 7)]
    path = tmp_path / "errors.xlsx"
    assert report.write_errors(path, sheet, results) == 5
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Errors", "Errors (2)", "Errors (3)"]
    names = []
    for ws in book.worksheets:
        got = [[c.value for c in r] for r in ws.iter_rows()]
        assert got[0] == ["Name", "Mobile", "error_code", "error"]
        names += [r[0] for r in got[1:]]
    assert names == [f"name{n}" for n in range(2, 7)]


def test_a_sheet_longer_than_excel_allows_is_never_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's own guard: one sheet given more rows than the limit raises, not a file
    Excel calls damaged."""
    monkeypatch.setattr(xlsxwrite, "MAX_ROWS", 3)
    sheet = xlsxwrite.XlsxSheet("S", ([(str(i), xlsxwrite.PLAIN)] for i in range(4)))
    with (tmp_path / "x.xlsx").open("wb") as fh, pytest.raises(xlsxwrite.TooManyRows):
        xlsxwrite.write_workbook(fh, [sheet])
