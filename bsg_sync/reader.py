"""Spreadsheet files (CSV, XLSX/XLSM, XLS, ODS) -> rows of cell text as a person sees them."""

from __future__ import annotations

import hashlib
import itertools
import logging
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path

import python_calamine

from bsg_sync.cellcheck import control_problems, sheet_rows
from bsg_sync.csvread import csv_format, csv_records, sniff_delimiter, wide_codec
from bsg_sync.errors import InputFileError
from bsg_sync.filecheck import check_ods, check_xls, check_xlsx
from bsg_sync.models import CellProblem, CompactBuilder, CompactRows, Sheet, SheetRow, paused_gc
from bsg_sync.numfmt import ErrorText, render_cell
from bsg_sync.workbook import (
    HEADER_LOOKAHEAD,
    find_header_row,
    note_error_cells,
    open_calamine,
    open_workbook,
)

log = logging.getLogger(__name__)

COMPACT_FROM = 200_000  # rows from which a sheet is held as CompactRows (models.py)
_BATCH = 4096  # rows taken at a time: a batch whose rows all end in a filled cell is kept whole
MAX_FILE_BYTES = 1 << 30  # refuse files above 1 GiB before reading them
MAX_UNCOMPRESSED_BYTES = 8 << 30  # a workbook whose parts unpack to more is refused
MAX_COMPRESSION_RATIO = 200  # ... and so is a large part that compresses better than this
TEXT_EXTENSIONS = {".csv", ".txt", ".tsv"}
EXCEL_EXTENSIONS = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}
SUPPORTED = "CSV, TXT, XLSX, XLSM, XLSB, XLS or ODS"

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_MAGIC = (b"%PDF-", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"\x1f\x8b", b"7z\xbc\xaf",
                 b"Rar!", b"\x7fELF", b"SQLite format 3\x00", b"\xfd7zXZ")
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13, 26))
_ENCRYPTED_MARK = "EncryptedPackage".encode("utf-16-le")
_CHUNK = 1 << 20
_SNIFF_BYTES = 1 << 16


# --------------------------------------------------------------------------- public API


def read_sheet(
    path: Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    header_row: int | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> Sheet:
    """Read a spreadsheet as text cells; raise InputFileError with one sentence if it can't be."""
    path = Path(path)
    kind = _check_file(path, max_bytes)
    digest = _sha256(path)
    if kind == "text":
        return _read_csv(path, digest, encoding, header_row)
    try:
        tab, grid = _open_workbook(path, kind, sheet)
        headers, rows, header_at = _build_table(path, grid, header_row)
    except (KeyboardInterrupt, SystemExit, InputFileError, MemoryError):
        raise  # a MemoryError is the memory limit's to explain (isolate), not a damaged cell
    except BaseException as exc:  # calamine panics (a BaseException) on some damaged cells
        raise InputFileError(
            f"{path} has a cell that cannot be read ({type(exc).__name__}: {exc}); "
            "open it in Excel, check for damaged dates or numbers, and save a new copy."
        ) from None
    if not isinstance(rows, CompactRows):  # (CompactRows noted them as they came)
        rows = note_error_cells(grid, rows)
    return Sheet(path, headers, rows, digest, sheet_name=tab, header_row=header_at)


def list_sheet_names(path: Path) -> list[str]:
    """The workbook's tab names (a CSV has one unnamed sheet: an empty list)."""
    path = Path(path)
    kind = _check_file(path, MAX_FILE_BYTES)
    if kind == "text":
        return []
    return list(_calamine(path, kind).sheet_names)


# --------------------------------------------------------------------------- file checks


def _check_file(path: Path, max_bytes: int) -> str:
    """The file's kind ("zip", "ole" or "text") after the checks that need no parsing."""
    if not path.exists():
        raise InputFileError(f"{path} does not exist; check the path and try again.")
    if path.is_dir() and path.suffix.lower() == ".numbers":  # a Numbers package is a folder
        raise _numbers_file(path)
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not a spreadsheet; give the file's path.")
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(f"{path} is empty; export the sheet again.")
    if size > max_bytes:
        raise InputFileError(
            f"{path} is {size / 2**20:.0f} MiB, above the {max_bytes / 2**20:.0f} MiB limit; "
            "split it into smaller files."
        )
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    kind = _kind_of(head)
    ext = path.suffix.lower()
    if kind == "zip":
        _check_zip(path)
    elif kind == "ole":
        _check_ole(path)
    elif ext in EXCEL_EXTENSIONS:
        if _looks_binary(head):
            raise InputFileError(
                f"{path} is not a {ext} workbook (its content is not a spreadsheet); "
                "open it in Excel and save it again, or export it as .csv."
            )
        raise InputFileError(
            f"{path} is not a real {ext} workbook (it is plain text); "
            "if it is a CSV export, rename it to .csv."
        )
    elif ext not in TEXT_EXTENSIONS:
        raise InputFileError(f"{path} is not a spreadsheet; save it as {SUPPORTED}.")
    else:
        _check_text_head(path, head)
    return kind


def _kind_of(head: bytes) -> str:
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head.startswith(_OLE_MAGIC):
        return "ole"
    return "text"


def _check_text_head(path: Path, head: bytes) -> None:
    """Refuse binary junk saved as .csv (NULs or control bytes in a file that is not UTF-16)."""
    if _looks_binary(head):
        raise InputFileError(
            f"{path} is not a text spreadsheet (it contains binary data); "
            f"save it as {SUPPORTED}."
        )


def _looks_binary(head: bytes) -> bool:
    """Binary magic, or control bytes (NUL, ESC, ...) above 5% of a head that is not UTF-16/32.

    One rule wherever a stray control byte sits: a text file with a few is read (the cells
    holding them are noted as `control-character`), a binary file is full of them."""
    if wide_codec(head) is not None:
        return False
    if head.startswith(_BINARY_MAGIC):
        return True
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return controls > len(head) // 20


def _check_zip(path: Path) -> None:
    """Refuse zips that are not workbooks, zip bombs, and workbooks beyond filecheck's limits."""
    try:
        with zipfile.ZipFile(path) as zf:
            _check_zip_parts(path, zf)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise InputFileError(
            f"{path} is a damaged workbook ({exc}); open it in Excel and save a new copy."
        ) from exc


def _check_zip_parts(path: Path, zf: zipfile.ZipFile) -> None:
    infos = zf.infolist()
    names = {i.filename for i in infos}
    if "Index/Document.iwa" in names or any(n.endswith(".iwa") for n in names):
        raise _numbers_file(path)
    if not names & {"xl/workbook.xml", "xl/workbook.bin", "content.xml"}:
        raise InputFileError(
            f"{path} is a zip archive but not a workbook; save the sheet as {SUPPORTED}."
        )
    total = sum(i.file_size for i in infos)
    bomb = any(
        i.file_size > 16 << 20 and i.file_size > MAX_COMPRESSION_RATIO * max(i.compress_size, 1)
        for i in infos
    )
    if total > MAX_UNCOMPRESSED_BYTES or bomb:
        raise InputFileError(
            f"{path} unpacks to {total / 2**30:.1f} GiB (a zip bomb or a damaged file); "
            "open it in Excel and save a normal copy."
        )
    if "content.xml" in names and b"encryption-data" in _manifest(zf):
        raise InputFileError(
            f"{path} is password-protected; open it in LibreOffice, remove the password "
            "(File > Properties > Security) and save it again."
        )
    if "xl/workbook.xml" in names:
        check_xlsx(path, zf)
    elif "content.xml" in names:
        check_ods(path, zf)


def _numbers_file(path: Path) -> InputFileError:
    return InputFileError(
        f"{path} is an Apple Numbers file; export it as .xlsx or .csv from Numbers "
        "(File > Export To) and use that."
    )


def _manifest(zf: zipfile.ZipFile) -> bytes:
    try:
        info = zf.getinfo("META-INF/manifest.xml")
    except KeyError:
        return b""
    return zf.read(info) if info.file_size < 16 << 20 else b""


def _check_ole(path: Path) -> None:
    """An OLE container holding an EncryptedPackage is a password-protected XLSX; then the
    container's structure is walked (filecheck.check_xls: damaged, or an encrypted .xls)."""
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            if _ENCRYPTED_MARK in tail + chunk:
                raise InputFileError(
                    f"{path} is password-protected; save an unprotected copy and use that."
                )
            tail = chunk[-len(_ENCRYPTED_MARK) :]
    check_xls(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- table building


def _build_table(
    path: Path, grid: Iterable[tuple[int, Sequence[str]]], header_row: int | None
) -> tuple[tuple[str, ...], Sequence[SheetRow], int]:
    """Header, non-blank data rows (padded to the header) and the header's row number."""
    with paused_gc():
        return _collect(path, iter(grid), header_row)


def _collect(
    path: Path, rows: Iterator[tuple[int, Sequence[str]]], header_row: int | None
) -> tuple[tuple[str, ...], Sequence[SheetRow], int]:
    header_at, header_cells, rows = _find_header(path, rows, header_row)
    data: list[tuple[int, Sequence[str]]] = []
    width = len(_rstrip_empty(header_cells))
    while batch := list(itertools.islice(rows, _BATCH)):
        # the common batch, every row ending in a filled cell, is kept whole
        kept = batch if _end_filled(batch) else _trimmed_rows(batch)
        data += kept
        width = max(width, max(map(len, map(itemgetter(1), kept)), default=0))
        if len(data) >= COMPACT_FROM:
            compact = _compact(data, rows, width)
            return _name_headers(path, header_cells, compact.width), compact.build(), header_at
    headers = _name_headers(path, header_cells, width)
    out = sheet_rows(data, width)
    return headers, out, header_at


def _end_filled(batch: list[tuple[int, Sequence[str]]]) -> bool:
    """Whether every row ends in a filled cell (told in C: no Python step per row)."""
    try:
        return all(map(itemgetter(-1), map(itemgetter(1), batch)))
    except IndexError:  # a row of no cells
        return False


def _trimmed_rows(batch: list[tuple[int, Sequence[str]]]) -> list[tuple[int, Sequence[str]]]:
    """The non-blank rows of a batch, each without its empty trailing cells."""
    out = []
    for number, cells in batch:
        if not (cells and cells[-1]):  # a row ending in a filled cell needs no call
            cells = _rstrip_empty(cells)
            if not cells:
                continue
        out.append((number, cells))
    return out


def _compact(
    data: list[tuple[int, Sequence[str]]], rows: Iterator[tuple[int, Sequence[str]]], width: int
) -> CompactBuilder:
    """The rows so far and the rest, held compactly (CompactRows), each with its problems
    noted as it comes (control characters, then error cells)."""
    builder = CompactBuilder()
    builder.widen(width)
    for number, cells in data:
        builder.add(number, cells, _problems(cells))
    data.clear()
    for number, cells in rows:
        cells = _rstrip_empty(cells)
        if cells:
            builder.add(number, cells, _problems(cells))
    return builder


def _problems(cells: Sequence[str]) -> tuple[CellProblem, ...]:
    found = control_problems(cells)
    if ErrorText in set(map(type, cells)):
        found += tuple(CellProblem(i, "cell-error", str(v))
                       for i, v in enumerate(cells) if type(v) is ErrorText)
    return found


def _find_header(
    path: Path, rows: Iterator[tuple[int, Sequence[str]]], header_row: int | None
) -> tuple[int, Sequence[str], Iterator[tuple[int, Sequence[str]]]]:
    """The header's row number and cells, and the rows after it."""
    if header_row is None:
        return _detect_header(path, rows)
    for number, cells in rows:
        if number < header_row:
            continue
        if number == header_row and not any(cells):
            raise InputFileError(
                f"{path}: row {header_row} (the header_row) is empty; set header_row to the "
                "row that holds the column names."
            )
        if any(cells):
            return number, cells, rows
    raise InputFileError(
        f"{path} has no row {header_row}; set header_row to the row with the column names."
    )


def _detect_header(
    path: Path, rows: Iterator[tuple[int, Sequence[str]]]
) -> tuple[int, Sequence[str], Iterator[tuple[int, Sequence[str]]]]:
    """The first row that looks like the header of the table below it (titles skipped)."""
    head: list[tuple[int, Sequence[str]]] = []
    for item in rows:
        if any(item[1]):
            head.append(item)
            if len(head) >= HEADER_LOOKAHEAD:
                break
    found = find_header_row([cells for _, cells in head])
    if found is None:
        raise InputFileError(f"{path} has no header row (every row is empty); export it again.")
    number, cells = head[found]
    return number, cells, itertools.chain(head[found + 1 :], rows)


def _rstrip_empty(cells: Sequence[str]) -> Sequence[str]:
    end = len(cells)
    while end and not cells[end - 1]:
        end -= 1
    return cells if end == len(cells) else cells[:end]


def _name_headers(path: Path, cells: Sequence[str], width: int) -> tuple[str, ...]:
    names = [c.strip().lstrip("\ufeff").strip() for c in cells[:width]]
    names += [""] * (width - len(names))
    headers = tuple(name or f"Column {i}" for i, name in enumerate(names, start=1))
    dupes = sorted(name for name, n in Counter(headers).items() if n > 1)
    if dupes:
        quoted = ", ".join(repr(d) for d in dupes)
        raise InputFileError(
            f"{path} has duplicate column headers ({quoted}); rename them so each is unique."
        )
    return headers


# --------------------------------------------------------------------------- CSV


def _read_csv(path: Path, digest: str, encoding: str | None, header_row: int | None) -> Sheet:
    fmt = csv_format(path, encoding)
    with csv_records(path, fmt) as grid:
        headers, rows, header_at = _build_table(path, grid, header_row)
    return Sheet(
        path,
        headers,
        rows,
        digest,
        encoding=fmt.codec,
        delimiter=fmt.delimiter,
        header_row=header_at,
    )


# --------------------------------------------------------------------------- workbooks


def _calamine(path: Path, kind: str) -> python_calamine.CalamineWorkbook:
    return open_calamine(path, kind)


def _open_workbook(
    path: Path, kind: str, sheet: str | None
) -> tuple[str, Iterable[tuple[int, Sequence[str]]]]:
    return open_workbook(path, kind, sheet)


__all__ = ["list_sheet_names", "read_sheet", "render_cell", "sniff_delimiter"]
