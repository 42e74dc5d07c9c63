"""Control characters in a cell (C0 but tab/CR/LF, DEL, C1, bidi controls) make a mapped cell's
row `invalid` (`control-character`) wherever the row is and in every format; a stray NUL never
turns a text file into "binary" by where it sits."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from bsg_sync.cellcheck import control_problems
from bsg_sync.errors import InputFileError
from bsg_sync.mapping import map_rows, parse_mapping, resolve_mapping
from bsg_sync.models import Account, CellProblem, Field, Sheet
from bsg_sync.reader import read_sheet

ACCOUNT = Account(fields=(Field(1, "City"),))
MAPPING = '[columns]\n"Mobile" = "phone"\n"City" = "field:City"\n'
BAD = {"NUL": "\x00", "ESC": "\x1b", "RLO": "\u202e"}


def _invalid(sheet: Sheet) -> list[tuple[int, str | None, str]]:
    mapping = resolve_mapping(parse_mapping(MAPPING), sheet.headers, ACCOUNT)
    return [(r.row, r.error_code, r.error or "") for r in map_rows(sheet, mapping, ACCOUNT).results]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (("a\tb", "line\r\nbreak", "Zoë", "\u00a0nbsp"), ()),
        (("x", "Le\x1beds"), (CellProblem(1, "control-character", "U+001B"),)),
        (("\x00", "ok", "\u2066iso"), (CellProblem(0, "control-character", "U+0000"),
                                      CellProblem(2, "control-character", "U+2066"))),
        (("del\x7f", "c1\x85", "v\x0btab"), (CellProblem(0, "control-character", "U+007F"),
                                             CellProblem(1, "control-character", "U+0085"),
                                             CellProblem(2, "control-character", "U+000B"))),
        (("\u202a", "\u2069"), (CellProblem(0, "control-character", "U+202A"),
                                CellProblem(1, "control-character", "U+2069"))),
    ],
)
def test_control_problems(cells: tuple[str, ...], expected: tuple[CellProblem, ...]) -> None:
    assert control_problems(cells) == expected


def _csv_with_controls(path: Path, at_row: int, rows: int = 4000, pad: int = 0) -> dict[int, str]:
    """A UTF-8 CSV of `rows` data rows; NUL, ESC and U+202E in City from row `at_row` on."""
    bad_rows = {at_row + i: ch for i, ch in enumerate(BAD.values())}
    lines = ["Mobile,City,Notes"]
    for row in range(2, rows + 2):
        lines.append(f"4477009{row:05d},Le{bad_rows.get(row, '')}eds,note {row}{'.' * pad}")
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return bad_rows


@pytest.mark.parametrize("at_row", [3, 3500])
def test_csv_control_characters_make_their_rows_invalid_wherever_they_are(
    tmp_path: Path, at_row: int
) -> None:
    path = tmp_path / "c.csv"
    bad_rows = _csv_with_controls(path, at_row)
    offset = path.read_bytes().index(b"\x00")
    assert (offset < 1 << 16) == (at_row == 3)  # one in the sniffed head, one far past it
    sheet = read_sheet(path)
    assert len(sheet.rows) == 4000
    assert sheet.rows[at_row - 2].values[1] == "Le\x00eds"  # the value is kept as read
    invalid = _invalid(sheet)
    assert [(row, code) for row, code, _ in invalid] == [(r, "control-character") for r in bad_rows]
    for (_, _, error), ch in zip(invalid, BAD.values(), strict=True):
        assert "column 'City'" in error and f"U+{ord(ch):04X}" in error


def test_a_nul_past_one_mebibyte_reads_like_one_in_the_head(tmp_path: Path) -> None:
    early, late = tmp_path / "early.csv", tmp_path / "late.csv"
    _csv_with_controls(early, 3, rows=4000, pad=300)
    _csv_with_controls(late, 3900, rows=4000, pad=300)
    assert late.read_bytes().index(b"\x00") > 1 << 20
    for path in (early, late):
        assert [code for _, code, _ in _invalid(read_sheet(path))] == ["control-character"] * 3


def test_an_unmapped_column_with_a_control_character_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"Mobile,City,Notes\n447700900123,Leeds,a\x1b[31mred\n")
    assert _invalid(read_sheet(path)) == []


def test_binary_files_are_still_refused(tmp_path: Path) -> None:
    png = tmp_path / "img.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 40)
    for path in (png, junk):
        with pytest.raises(InputFileError, match="contains binary data"):
            read_sheet(path)


def test_xlsx_made_with_openpyxl(tmp_path: Path) -> None:
    path = tmp_path / "c.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Mobile", "City", "Notes"])
    for row in range(2, 302):
        ws.append([f"4477009{row:05d}", "Leeds", "x"])
    # XML cannot hold NUL or ESC: OOXML writes them as _xHHHH_, which calamine decodes
    ws["B250"], ws["B251"], ws["B252"] = "Le_x0000_eds", "Le_x001B_eds", "Le\u202eeds"
    ws["B253"], ws["C254"] = "wrapped\nline", "not mapped _x001B_"
    wb.save(path)
    assert [(r, c) for r, c, _ in _invalid(read_sheet(path))] == [
        (250, "control-character"), (251, "control-character"), (252, "control-character")]


def test_xls_made_with_xlwt(tmp_path: Path) -> None:
    xlwt = pytest.importorskip("xlwt")
    path = tmp_path / "c.xls"
    book = xlwt.Workbook()
    sheet = book.add_sheet("Contacts")
    for col, text in enumerate(["Mobile", "City"]):
        sheet.write(0, col, text)
    for row in range(1, 40):
        sheet.write(row, 0, f"4477009{row:05d}")
        sheet.write(row, 1, "Le\x1beds" if row == 30 else "Leeds")
    book.save(str(path))
    assert [(r, c) for r, c, _ in _invalid(read_sheet(path))] == [(31, "control-character")]
