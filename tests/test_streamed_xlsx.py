"""A very large XLSX tab is read as a stream (xlsx.streamed_rows) and reads as calamine's does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from bsg_sync import xlsx
from bsg_sync.reader import read_sheet


def _book(path: Path) -> Path:
    wb = openpyxl.Workbook()
    hidden = wb.active
    hidden.title = "Hidden"
    hidden.append(["not", "this"])
    hidden.sheet_state = "hidden"
    ws = wb.create_sheet("Contacts")
    ws["B1"], ws["C1"], ws["D1"], ws["E1"], ws["F1"], ws["G1"] = (
        "Mobile", "Zip", "Score", "Joined", "Share", "VIP")
    rows = [
        ("+44 7700 900123", 6083, 9.5, dt.date(2014, 2, 14), 0.9876, True),
        ("  07700 900456 ", 123, 1000.5577, dt.datetime(2014, 2, 14, 23, 44, 51, 600000), 0.5, False),
        (447700900789, 7, 0.1 + 0.2, dt.datetime(2024, 1, 1, 8, 27, 48), 1, None),
    ]
    for r, values in enumerate(rows, start=2):
        for c, value in enumerate(values, start=2):
            ws.cell(row=r, column=c, value=value)
        ws.cell(row=r, column=3).number_format = "00000"
        ws.cell(row=r, column=4).number_format = "0.00"
        ws.cell(row=r, column=5).number_format = "yyyy-mm-dd"
        ws.cell(row=r, column=6).number_format = "0.00%"
    ws.cell(row=7, column=2, value="after a gap")  # rows 5 and 6 are missing
    ws.cell(row=7, column=9, value=" far ")  # a wider row than the header
    wb.active = 1
    wb.save(path)
    return path


def test_the_streamed_read_equals_calamines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _book(tmp_path / "big.xlsx")
    loaded = read_sheet(path)
    used: list[str] = []
    real = xlsx.streamed_rows

    def spy(p: Path, tab: str) -> Iterator[tuple[int, list[str]]]:
        used.append(tab)
        return real(p, tab)

    monkeypatch.setattr(xlsx, "STREAM_FROM_BYTES", 0)
    monkeypatch.setattr(xlsx, "streamed_rows", spy)
    streamed = read_sheet(path)
    assert used == ["Contacts"]
    assert (streamed.sheet_name, streamed.headers) == (loaded.sheet_name, loaded.headers)
    assert list(streamed.rows) == list(loaded.rows)
    assert [r.values[:6] for r in streamed.rows][:2] == [
        ("+44 7700 900123", "06083", "9.50", "2014-02-14", "98.76%", "TRUE"),
        ("07700 900456", "00123", "1000.56", "2014-02-14", "50.00%", "FALSE")]
    assert [r.row for r in streamed.rows] == [2, 3, 4, 7]


def test_a_sheet_below_the_size_is_not_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _book(tmp_path / "small.xlsx")

    def refuse(p: Path, tab: str) -> Iterator[tuple[int, list[str]]]:
        raise AssertionError("streamed")

    monkeypatch.setattr(xlsx, "streamed_rows", refuse)
    assert read_sheet(path).sheet_name == "Contacts"
    assert xlsx.sheet_part_size(path, "Contacts") < xlsx.STREAM_FROM_BYTES
