"""Reader tests on small committed files (tests/data/reader_*, made by reader_make.py)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import zipfile
from pathlib import Path

import pytest

from bsg_sync.errors import InputFileError
from bsg_sync.models import CellProblem
from bsg_sync.reader import (
    list_sheet_names,
    read_sheet,
    render_cell,
    sniff_delimiter,
)

DATA = Path(__file__).parent / "data"
PEOPLE = [("Zoë Ærø", "+44 7700 900123", "Köln"), ("Bob", "07700 900456", "Leeds")]


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter"),
    [
        ("reader_utf8.csv", "utf-8", ","),
        ("reader_utf8_bom.csv", "utf-8-sig", ","),
        ("reader_utf16.csv", "utf-16", "\t"),
        ("reader_cp1252.csv", "cp1252", ";"),
        ("reader_semicolon.txt", "utf-8", ";"),
        ("reader_tab.txt", "utf-8", "\t"),
        ("reader_pipe.txt", "utf-8", "|"),
    ],
)
def test_csv_encodings_and_delimiters(name: str, encoding: str, delimiter: str) -> None:
    sheet = read_sheet(DATA / name)
    assert (sheet.encoding, sheet.delimiter) == (encoding, delimiter)
    assert sheet.headers == ("Name", "Mobile", "City")
    assert [(r.row, r.values) for r in sheet.rows] == [(2, PEOPLE[0]), (3, PEOPLE[1])]
    assert sheet.sha256 == hashlib.sha256((DATA / name).read_bytes()).hexdigest()


def test_encoding_override_wins() -> None:
    sheet = read_sheet(DATA / "reader_utf8.csv", encoding="latin-1")
    assert sheet.rows[0].values[0] == "Zoë Ærø".encode().decode("latin-1")


def test_refused_naming_candidates_when_cp1252_cannot_decode(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"Name,Mobile\nA\x81b,1\n")  # latin-1 would read a C1 control: never guess
    with pytest.raises(InputFileError, match=r"encoding cannot be told for sure \(it could be "):
        read_sheet(path)


def test_quoted_line_break_does_not_start_a_row() -> None:
    sheet = read_sheet(DATA / "reader_quoted_newline.csv")
    assert [r.row for r in sheet.rows] == [2, 4, 5]
    assert sheet.rows[0].values == ("Ann", "line one\r\nline two", "447700900111")
    assert sheet.rows[2].values == ("Cy, Jr", 'said "hi"', "447700900333")


def test_single_column_csv() -> None:
    sheet = read_sheet(DATA / "reader_single_column.csv")
    assert sheet.headers == ("Mobile",)
    assert [r.values for r in sheet.rows] == [("447700900123",), ("447700900456",)]


def test_messy_csv_blank_rows_unnamed_and_trailing_columns() -> None:
    sheet = read_sheet(DATA / "reader_messy.csv")
    assert sheet.header_row == 3
    assert sheet.headers == ("Mobile", "Column 2", "Name", "Column 4", "Column 5")
    assert [(r.row, r.values) for r in sheet.rows] == [
        (4, ("447700900123", "x", "Ann", "", "")),
        (6, ("447700900456", "", "Bob", "", "extra")),
    ]


def test_header_row_option(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("Report of May\n\nMobile,Name\n1,Ann\n")
    sheet = read_sheet(path, header_row=3)
    assert (sheet.header_row, sheet.headers, sheet.rows[0].row) == (3, ("Mobile", "Name"), 4)
    with pytest.raises(InputFileError, match=r"row 2 .* is empty"):
        read_sheet(path, header_row=2)
    with pytest.raises(InputFileError, match="has no row 9"):
        read_sheet(path, header_row=9)


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1,5;2,5;3\n4;5;6\n", ";"),
        ('a|b\n"x|y"|z\n', "|"),
        ('a\tb\n"1,2,3"\t4\n', "\t"),
        ('name,note\n"a;b;c;d",x\n', ","),
        ("mobile\n447700900123\n", ","),
    ],
)
def test_sniff_delimiter(sample: str, expected: str) -> None:
    assert sniff_delimiter(sample) == expected


def test_xlsx_values_as_displayed() -> None:
    sheet = read_sheet(DATA / "reader_formats.xlsx")
    assert (sheet.sheet_name, sheet.header_row) == ("Contacts", 3)
    assert sheet.headers[:3] == ("Zip", "Phone text", "Phone number")
    assert [(r.row, r.values) for r in sheet.rows] == [
        (4, ("01234", "07700900123", "447700900123", "1990-05-17", "2024-01-02 03:04:05",
             "TRUE", "0.1", "#N/A", "000042")),
        (6, ("00123", "4.47712E+11", "447712000000", "2024-03-01", "2024-03-01",
             "FALSE", "1.5", "7", "000007")),
    ]


def test_xlsx_tab_by_name_case_insensitive() -> None:
    path = DATA / "reader_formats.xlsx"
    assert list_sheet_names(path) == ["Contacts", "Other"]
    sheet = read_sheet(path, sheet="other")
    assert (sheet.sheet_name, sheet.rows[0].values) == ("Other", ("447700900999",))
    with pytest.raises(InputFileError, match="no tab 'Nope'; its tabs are 'Contacts', 'Other'"):
        read_sheet(path, sheet="Nope")


def test_xls_and_ods() -> None:
    xls = read_sheet(DATA / "reader_small.xls")
    assert (xls.header_row, xls.headers) == (2, ("Mobile", "Name", "When"))
    assert [(r.row, r.values) for r in xls.rows] == [
        (3, ("447700900123", "Ann", "2024-01-02")),
        (5, ("07700900456", "Bob", "")),
    ]
    ods = read_sheet(DATA / "reader_small.ods")
    assert [(r.row, r.values) for r in ods.rows] == [(2, ("447700900123", "Ann"))]


@pytest.mark.parametrize(
    ("value", "fmt", "text"),
    [
        ("  text ", None, "text"),
        ("007", None, "007"),
        (True, None, "TRUE"),
        (False, None, "FALSE"),
        (447700900123.0, None, "447700900123"),
        (447712000000.0, "General", "447712000000"),
        (4.4771234567891235e16, None, "4.47712345678912E+16"),  # Excel's 15 digits
        (12.0, None, "12"),
        (0.1, None, "0.1"),
        (1 / 3, None, "0.333333333333333"),
        (-5.0, None, "-5"),
        (42, None, "42"),
        (1234.0, "00000", "01234"),
        (7700900123.0, "000000000000", "007700900123"),
        (123456.0, "0000", "123456"),
        (7700900123.0, "00000 000000", "07700 900123"),
        (42.0, '"ID-"0000', "ID-0042"),
        (1234.5, "0.00", "1234.50"),
        (3.0, "#,##0.000", "3.000"),
        (12.0, "0", "12"),
        (12.0, "@", "12"),
        (12.0, "0%", "1200%"),
        (dt.date(2024, 1, 2), None, "2024-01-02"),
        (dt.datetime(2024, 1, 2), None, "2024-01-02"),
        (dt.datetime(2024, 1, 2, 13, 4, 5), None, "2024-01-02 13:04:05"),
        (dt.time(7, 30), None, "07:30:00"),
        (dt.timedelta(hours=26, minutes=3), None, "26:03:00"),
        (None, None, ""),
    ],
)
def test_render_cell(value: object, fmt: str | None, text: str) -> None:
    assert render_cell(value, fmt) == text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("reader_binary.csv", "contains binary data"),
        ("reader_not_zip_workbook.xlsx", "damaged workbook"),
        ("reader_encrypted.xlsx", "password-protected; save an unprotected copy"),
        ("reader_text.xlsx", "plain text.*rename it to .csv"),
        ("reader_dup_headers.csv", "duplicate column headers \\('Mobile'\\)"),
        ("reader_blank_only.csv", "no header row"),
        ("reader_plain.zip.xlsx", "zip archive but not a workbook"),
        ("missing.csv", "does not exist"),
        ("", "is a folder"),
    ],
)
def test_bad_files_raise_one_sentence(name: str, message: str) -> None:
    with pytest.raises(InputFileError, match=message) as info:
        read_sheet(DATA / name)
    assert str(info.value).endswith(".")


def test_binary_junk_named_xlsx_is_not_called_plain_text(tmp_path: Path) -> None:
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputFileError, match=r"is not a \.xlsx workbook \(its content is not a "
                       r"spreadsheet\); open it in Excel and save it again"):
        read_sheet(junk)


def test_empty_file_and_size_limit(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="is empty"):
        read_sheet(empty)
    with pytest.raises(InputFileError, match=r"above the .* limit; split it"):
        read_sheet(DATA / "reader_utf8.csv", max_bytes=10)


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_text("Mobile\n1\n")
    with pytest.raises(InputFileError, match="not a spreadsheet"):
        read_sheet(path)


def test_zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (24 << 20))
    assert path.stat().st_size < 200_000
    with pytest.raises(InputFileError, match="zip bomb"):
        read_sheet(path)


def test_undecodable_with_forced_encoding(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"Name\n\xff\xfe\xfa\n")
    with pytest.raises(InputFileError, match=r"not valid utf-8.*--encoding"):
        read_sheet(path, encoding="utf-8")


def _messy_rows(count: int) -> list[list[str]]:
    """Rows of three cells with blank rows, trailing empty cells, short rows and control
    characters scattered across many of the reader's batches (4,096 rows each)."""
    rows = []
    for i in range(count):
        cells = [f"0770090{i:04d}", f"name {i}", f"city {i % 7}"]
        if i % 997 == 60:
            cells = []  # a blank line (the first before any row ending in an empty cell)
        elif i % 1009 == 8:
            cells = ["", "", ""]
        elif i % 2999 == 7:
            cells.append("past the header")
        elif i % 13 == 12 and i > 100:
            cells[2] = ""
        elif i % 17 == 0:
            cells = cells[:1]
        elif i % 1499 == 3:
            cells[1] = "bad\x1bname"
        rows.append(cells)
    return rows


def _expected(rows: list[list[str]]) -> list[tuple[int, tuple[str, ...], tuple[CellProblem, ...]]]:
    """Row by row: blank rows left out, each row padded to four cells, a control noted."""
    out: list[tuple[int, tuple[str, ...], tuple[CellProblem, ...]]] = []
    for number, cells in enumerate(rows, start=2):
        if any(cells):
            control = len(cells) > 1 and "\x1b" in cells[1]
            problems = (CellProblem(1, "control-character", "U+001B"),) if control else ()
            out.append((number, tuple(cells) + ("",) * (4 - len(cells)), problems))
    return out


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_many_rows_with_blanks_short_rows_and_controls_read_row_by_row(
    tmp_path: Path, suffix: str
) -> None:
    rows = _messy_rows(9_000)
    if suffix == ".xlsx":  # a workbook holds no control characters: those rows are plain here
        rows = [[c.replace("\x1b", "") for c in r] for r in rows]
    path = tmp_path / f"messy{suffix}"
    if suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([["Mobile", "Name", "City"], *rows])
    else:
        import openpyxl

        book = openpyxl.Workbook()
        for r in [["Mobile", "Name", "City"], *rows]:
            book.active.append([c or None for c in r])  # type: ignore[union-attr]
        book.save(path)
    sheet = read_sheet(path)
    assert sheet.headers == ("Mobile", "Name", "City", "Column 4")
    assert [(r.row, r.values, r.problems) for r in sheet.rows] == _expected(rows)
