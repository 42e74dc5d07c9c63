"""CompactRows: a large sheet held as one string per column reads back exactly as SheetRows."""

from __future__ import annotations

import pickle
from pathlib import Path

import openpyxl
import pytest

from bsg_sync import isolate, reader
from bsg_sync.models import CellProblem, CompactBuilder, CompactRows, Sheet, SheetRow
from bsg_sync.reader import read_sheet

ROWS = [(2, ("a", "bb")), (3, ()), (4, ("x", "", "zzz", "w")), (5, ("é", "☃ snow")),
        (7, ("",)), (8, ("1", "2", "3", "4")), (9, ("𝄞", "", "", "last"))]
PROBLEM = (CellProblem(0, "control-character", "U+001B"),)


def _built(flush: int) -> tuple[CompactRows, list[SheetRow]]:
    builder = CompactBuilder()
    builder.FLUSH = flush
    for number, cells in ROWS:
        builder.add(number, cells, PROBLEM if number == 5 else ())
    width = max(len(c) for _, c in ROWS)
    expected = [SheetRow(n, tuple(c) + ("",) * (width - len(c)), PROBLEM if n == 5 else ())
                for n, c in ROWS]
    return builder.build(), expected


@pytest.mark.parametrize("flush", [1, 2, 3, 100])
def test_rows_read_back_as_added_padded_to_the_widest(flush: int) -> None:
    rows, expected = _built(flush)
    assert len(rows) == len(expected)
    assert list(rows) == expected
    assert [rows[i] for i in range(len(rows))] == expected
    assert rows[-1] == expected[-1] and rows[1:4] == expected[1:4] and rows[::2] == expected[::2]
    assert rows == expected and expected == list(rows)
    with pytest.raises(IndexError):
        rows[len(expected)]


def test_a_header_wider_than_every_row_pads_the_rows() -> None:
    builder = CompactBuilder()
    builder.widen(3)
    builder.add(2, ("a",))
    assert list(builder.build()) == [SheetRow(2, ("a", "", ""))]


def test_the_isolated_transport_sends_them_as_they_are() -> None:
    rows, expected = _built(2)
    sheet = Sheet(Path("x.xlsx"), ("A", "B", "C", "D"), rows, "sha")
    body = pickle.loads(pickle.dumps(isolate._pack(sheet)))
    assert body[1][0] == "compact"
    back = isolate._unpack_sheet(body)
    assert isinstance(back.rows, CompactRows) and list(back.rows) == expected
    assert back == sheet


def _book(path: Path, rows: int) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Mobile", "City", "Note"])
    for i in range(rows):
        ws.append([f"+44 7700 9{i:05d}", f" City {i % 7} ", i * 0.5 if i % 3 else ""])
    wb.save(path)
    return path


def _csv(path: Path, rows: int) -> Path:
    lines = ["Mobile,City,Note"] + [f"+44 7700 9{i:05d},City {i},{'Le' + chr(27) + 'eds' if i in (3, 30) else i}"
                                    for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("make", [_book, _csv])
def test_a_sheet_past_compact_from_reads_the_same_as_a_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: object
) -> None:
    path = make(tmp_path / ("big.xlsx" if make is _book else "big.csv"), 40)  # type: ignore[operator]
    as_list = read_sheet(path)
    monkeypatch.setattr(reader, "COMPACT_FROM", 10)
    compact = read_sheet(path)
    assert isinstance(compact.rows, CompactRows) and not isinstance(as_list.rows, CompactRows)
    assert compact.headers == as_list.headers and len(compact.rows) == 40
    assert list(compact.rows) == list(as_list.rows)
    assert compact == as_list
    assert sum(1 for r in compact.rows if r.problems) == (2 if make is _csv else 0)


def test_control_characters_and_error_cells_are_noted_as_rows_come() -> None:
    from bsg_sync.numfmt import ErrorText

    cells = ("Le\x1beds", ErrorText("#N/A"), "ok")
    assert reader._problems(cells) == (CellProblem(0, "control-character", "U+001B"),
                                       CellProblem(1, "cell-error", "#N/A"))
    assert reader._problems(("a", "b")) == ()


def test_rows_without_cells_read_back_empty() -> None:
    builder = CompactBuilder()
    builder.add(2, ())
    builder.add(3, ())
    assert list(builder.build()) == [SheetRow(2, ()), SheetRow(3, ())]
