"""filecheck's inflating thread: the chunks in order, errors raised in the caller, no thread left."""

from __future__ import annotations

import threading
import zipfile
import zlib
from pathlib import Path

import pytest

from bsg_sync import filecheck
from bsg_sync.errors import InputFileError
from bsg_sync.reader import read_sheet


def _zip(path: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return path


def _inflaters() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "filecheck-inflate"]


def test_the_chunks_come_back_whole_and_in_order(tmp_path: Path) -> None:
    data = b"".join(b'<c r="A%d"><v>%d</v></c>' % (i, i) for i in range(300_000))
    assert len(data) > 4 * filecheck._CHUNK  # more chunks than the queue holds
    with zipfile.ZipFile(_zip(tmp_path / "a.zip", "s.xml", data)) as zf:
        assert b"".join(filecheck._inflated(zf, "s.xml")) == data
        assert b"".join(filecheck._stream(tmp_path, zf, "s.xml")) == data
    assert not _inflaters()


def test_a_caller_that_stops_early_stops_the_thread(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40_000  # ~10 MiB, incompressible enough to take several chunks
    with zipfile.ZipFile(_zip(tmp_path / "b.zip", "s.xml", data)) as zf:
        chunks = filecheck._inflated(zf, "s.xml")
        assert next(chunks) == data[: filecheck._CHUNK]
        chunks.close()
    assert not _inflaters()


def test_a_text_run_past_the_limit_is_refused_and_leaves_no_thread(tmp_path: Path) -> None:
    data = b"<x>" + b"a" * (2 * filecheck._MAX_TEXT_RUN) + b"</x>"
    with zipfile.ZipFile(_zip(tmp_path / "c.zip", "s.xml", data)) as zf, \
            pytest.raises(InputFileError, match="characters or more"):
        list(filecheck._stream(tmp_path, zf, "s.xml"))
    assert not _inflaters()


def test_a_damaged_deflate_stream_is_raised_in_the_caller(tmp_path: Path) -> None:
    path = _zip(tmp_path / "d.zip", "s.xml", zlib.compress(bytes(range(256)) * 4000))
    raw = bytearray(path.read_bytes())
    start = raw.index(b"s.xml") + len("s.xml")  # the local header's name, then the data
    raw[start + 100 : start + 140] = b"\xff" * 40
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as zf, pytest.raises((zlib.error, zipfile.BadZipFile)):
        list(filecheck._inflated(zf, "s.xml"))
    assert not _inflaters()


def test_a_damaged_sheet_is_one_sentence(tmp_path: Path) -> None:
    import openpyxl

    book = tmp_path / "book.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    for i in range(3000):
        ws.append([f"44770090{i:04d}", f"City {i * 7919 % 1000}", i * 1.5])
    wb.save(book)
    raw = bytearray(book.read_bytes())
    at = raw.index(b"xl/worksheets/sheet1.xml") + 200
    raw[at : at + 200] = b"\x00" * 200
    book.write_bytes(bytes(raw))
    with pytest.raises(InputFileError, match="damaged"):
        read_sheet(book)
    assert not _inflaters()
