"""The reader over every real-world file in ../shared/corpus/ (skipped when it is missing).

Each file reads, or is refused with one sentence (a BsgSyncError, never another exception).
Where cell text is compared, the other side is Excel's own export of the same workbook, not
this project's renderer: `SheetJS__test_files/2011/*.csv` (Excel 2011 "Save as CSV") and
`text_and_numbers.txt` / `write.txt` (Excel "Unicode Text", UTF-16 TSV). Excel writes dates
in its locale's short form; SPEC §3 makes them `YYYY-MM-DD`, so our ISO dates are written the
way each Excel format shows them (plain strftime, no project code) before comparing.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pytest

from bsg_sync.errors import BsgSyncError
from bsg_sync.reader import read_sheet
from bsg_sync.workbook import open_workbook

CORPUS = Path("/work/shared/corpus")
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")
SHEETJS = CORPUS / "SheetJS__test_files"


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("the shared corpus is not on this machine")
    return CORPUS


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_every_file_reads_or_is_refused_in_one_sentence(corpus: Path, path: Path) -> None:
    try:
        sheet = read_sheet(path)
    except BsgSyncError as exc:
        message = str(exc)
        assert "\n" not in message and message.endswith("."), message
        assert "Traceback" not in message
        return
    assert sheet.headers
    assert all(len(r.values) == len(sheet.headers) for r in sheet.rows)
    assert all(isinstance(v, str) and v == v.strip() for r in sheet.rows for v in r.values)


def _excel_export(name: str) -> list[list[str]]:
    path = SHEETJS / name
    if path.suffix == ".txt":
        with path.open(encoding="utf-16", newline="") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    else:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    return [[c.strip() for c in r] for r in rows]


def _ours(name: str, tab: str | None = None) -> list[list[str]]:
    sheet = read_sheet(SHEETJS / name, sheet=tab, header_row=1)
    return [list(sheet.headers)] + [list(r.values) for r in sheet.rows]


def _trim(rows: list[list[str]], width: int) -> list[list[str]]:
    out = [(r + [""] * width)[:width] for r in rows]
    return [r for r in out if any(r)]


_EXCEL_DATE_SHAPES = {  # Excel's en-US text for the built-in date formats, as strftime parts
    "m/d/yy": "{m}/{d}/{yy}",
    "d-mmm-yy": "{d}-{mon}-{yy}",
    "d-mmm": "{d}-{mon}",
    "mmm-yy": "{mon}-{yy}",
    "m/d/yy h:mm": "{m}/{d}/{yy} {H}:{MM}",
}


def _as_excel_writes(iso: str, shape: str) -> str:
    """Our SPEC-form date written the way Excel writes `shape` (m/d/yy, d-mmm-yy, ...)."""
    when = dt.datetime.fromisoformat(iso)
    return _EXCEL_DATE_SHAPES[shape].format(
        m=when.month, d=when.day, yy=f"{when.year % 100:02d}", mon=when.strftime("%b"),
        H=when.hour, MM=f"{when.minute:02d}",
    )


@pytest.mark.parametrize("workbook", ["number_format.xlsm", "biff5/number_format.xls"])
def test_number_formats_match_excels_csv_export(corpus: Path, workbook: str) -> None:
    excel = _trim(_excel_export("2011/number_format.xls.0.csv"), 6)
    ours = _trim(_ours(workbook, "Implied"), 6)
    assert len(ours) == len(excel)
    compared = 0
    for mine, theirs in zip(ours[1:], excel[1:], strict=True):
        shape = theirs[2]  # the "B Fmt" column names the value's format
        for col in (1, 5):  # the formatted value and the value a macro copied
            expected, got = theirs[col], mine[col]
            if shape in _EXCEL_DATE_SHAPES:
                got = _as_excel_writes(got, shape)
            assert got == expected, (mine[0], shape, col)
            compared += 1
    assert compared == 56


@pytest.mark.parametrize(
    ("workbook", "export"),
    [
        ("text_and_numbers.xlsx", "2011/text_and_numbers.xlsx.0.csv"),
        ("text_and_numbers.xlsx", "text_and_numbers.txt"),
        ("text_and_numbers.xls", "text_and_numbers.txt"),
        ("write.xlsx", "write.txt"),
    ],
)
def test_cells_match_excels_text_export(corpus: Path, workbook: str, export: str) -> None:
    excel = _trim(_excel_export(export), 4)
    ours = _trim(_ours(workbook), 4)
    ours[0] = ["" if h.startswith("Column ") else h for h in ours[0]]  # our name for no header
    for row in ours:
        for i, cell in enumerate(row):
            if len(cell) == 10 and cell[4] == "-" and cell[7] == "-":  # SPEC date: Excel's m/d/yy
                row[i] = _as_excel_writes(cell, "m/d/yy")
            if export.endswith(".csv"):  # Excel 2011's CSV is Mac Roman: it writes _ for Hebrew
                row[i] = "".join(ch if ord(ch) < 0x100 else "_" for ch in row[i])
    assert ours == excel


@pytest.mark.parametrize(
    "workbook",
    ["sheet_visibility.xlsx", "sheet_visibility_strict.xlsx", "sheet_visibility.xls",
     "sheet_visibility.ods"],
)
def test_the_first_visible_tab_is_read(corpus: Path, workbook: str) -> None:
    path = SHEETJS / workbook
    tab, grid = open_workbook(path, "ole" if path.suffix == ".xls" else "zip", None)
    assert (tab, list(next(iter(grid))[1])) == ("Visible", list("visible"))


def test_russian_formats_match_what_russian_excel_showed(corpus: Path) -> None:
    """Column B holds, as text, what Russian Excel showed for column A; separators are the
    reader's locale (en-US here: `,` groups, `.` is the decimal point), the rest must match."""
    sheet = read_sheet(SHEETJS / "numfmt_1_russian.xlsm", header_row=1)

    def as_en_us(text: str) -> str:
        text = re.sub(r"(?<=\d),(?=\d)", ".", text.lstrip("'"))
        return re.sub(r"(?<=\d)[ \xa0](?=\d)", ",", text)

    pairs = [(r.values[0], as_en_us(r.values[1])) for r in sheet.rows]
    assert len(pairs) == 13
    assert all(ours == excel for ours, excel in pairs), pairs
