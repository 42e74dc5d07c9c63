"""Spreadsheet files (CSV, XLSX/XLSM, XLS, ODS) -> rows of cell text as a person sees them."""

from __future__ import annotations

import codecs
import csv
import gc
import hashlib
import itertools
import logging
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import python_calamine

from bsg_sync.errors import InputFileError
from bsg_sync.models import Sheet, SheetRow
from bsg_sync.numfmt import render_cell
from bsg_sync.workbook import (
    HEADER_LOOKAHEAD,
    find_header_row,
    note_error_cells,
    open_calamine,
    open_workbook,
)

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1 << 30  # refuse files above 1 GiB before reading them
MAX_UNCOMPRESSED_BYTES = 8 << 30  # a workbook whose parts unpack to more is refused
MAX_COMPRESSION_RATIO = 200  # ... and so is a large part that compresses better than this
CSV_DELIMITERS = (",", ";", "\t", "|")
TEXT_EXTENSIONS = {".csv", ".txt", ".tsv"}
EXCEL_EXTENSIONS = {".xlsx", ".xlsm", ".xls", ".ods"}
SUPPORTED = "CSV, TXT, XLSX, XLSM, XLS or ODS"

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
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
    tab, grid = _open_workbook(path, kind, sheet)
    try:
        headers, rows, header_at = _build_table(path, grid, header_row)
    except (KeyboardInterrupt, SystemExit, InputFileError):
        raise
    except BaseException as exc:  # calamine panics (a BaseException) on some damaged cells
        raise InputFileError(
            f"{path} has a cell that cannot be read ({type(exc).__name__}: {exc}); "
            "open it in Excel, check for damaged dates or numbers, and save a new copy."
        ) from None
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
    """NULs or control bytes in a file that is not UTF-16 text."""
    if _utf16_codec(head) is not None:
        return False
    controls = sum(1 for b in head if b < 9 or (13 < b < 32 and b != 26))
    return b"\x00" in head or controls > len(head) // 100


def _check_zip(path: Path) -> None:
    """Refuse zips that are not workbooks, and zip bombs, from the directory alone."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputFileError(
            f"{path} is a damaged workbook ({exc}); open it in Excel and save a new copy."
        ) from exc
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names and "content.xml" not in names:
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


def _check_ole(path: Path) -> None:
    """An OLE container holding an EncryptedPackage is a password-protected XLSX."""
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            if _ENCRYPTED_MARK in tail + chunk:
                raise InputFileError(
                    f"{path} is password-protected; save an unprotected copy and use that."
                )
            tail = chunk[-len(_ENCRYPTED_MARK) :]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- table building


def _build_table(
    path: Path, grid: Iterable[tuple[int, list[str]]], header_row: int | None
) -> tuple[tuple[str, ...], list[SheetRow], int]:
    """Header, non-blank data rows (padded to the header) and the header's row number."""
    with _gc_paused():
        return _collect(path, iter(grid), header_row)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic GC rescans every new tuple while millions are built; none form cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _collect(
    path: Path, rows: Iterator[tuple[int, list[str]]], header_row: int | None
) -> tuple[tuple[str, ...], list[SheetRow], int]:
    header_at, header_cells, rows = _find_header(path, rows, header_row)
    data: list[tuple[int, list[str]]] = []
    width = len(_rstrip_empty(header_cells))
    for number, cells in rows:
        cells = _rstrip_empty(cells)
        if cells:
            data.append((number, cells))
            width = max(width, len(cells))
    headers = _name_headers(path, header_cells, width)
    out = [SheetRow(n, tuple(c) + ("",) * (width - len(c))) for n, c in data]
    return headers, out, header_at


def _find_header(
    path: Path, rows: Iterator[tuple[int, list[str]]], header_row: int | None
) -> tuple[int, list[str], Iterator[tuple[int, list[str]]]]:
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
    path: Path, rows: Iterator[tuple[int, list[str]]]
) -> tuple[int, list[str], Iterator[tuple[int, list[str]]]]:
    """The first row that looks like the header of the table below it (titles skipped)."""
    head: list[tuple[int, list[str]]] = []
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


def _rstrip_empty(cells: list[str]) -> list[str]:
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
    codec = encoding or _detect_encoding(path)
    try:
        codecs.lookup(codec)
    except LookupError as exc:
        raise InputFileError(f"Unknown encoding {codec!r}; use e.g. utf-8 or cp1252.") from exc
    with path.open("rb") as fh:
        sample = fh.read(_SNIFF_BYTES).decode(codec, errors="replace")
    delimiter = sniff_delimiter(sample)
    with path.open(encoding=codec, newline="", errors="strict") as fh:
        try:
            headers, rows, header_at = _build_table(path, _csv_grid(fh, delimiter), header_row)
        except UnicodeDecodeError as exc:
            raise InputFileError(
                f"{path} is not valid {codec} ({exc.reason}); pass the right --encoding."
            ) from exc
        except csv.Error as exc:
            raise InputFileError(
                f"{path} is not a well-formed CSV ({exc}); check for an unclosed quote."
            ) from exc
    return Sheet(
        path,
        headers,
        rows,
        digest,
        encoding=codec,
        delimiter=delimiter,
        header_row=header_at,
    )


def _csv_grid(fh: IO[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(Excel row number, trimmed cells): one row per record, quoted line breaks included."""
    for number, record in enumerate(csv.reader(fh, delimiter=delimiter), start=1):
        yield number, [cell.strip() for cell in record]


def _utf16_codec(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even_nuls = sample[0::2].count(0)
        odd_nuls = sample[1::2].count(0)
        half = len(sample) // 2
        if odd_nuls > 0.4 * half and even_nuls < 0.05 * half:
            return "utf-16-le"
        if even_nuls > 0.4 * half and odd_nuls < 0.05 * half:
            return "utf-16-be"
    return None


def _detect_encoding(path: Path) -> str:
    """BOM first; then UTF-8 if the whole file decodes strictly; then cp1252; else latin-1."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    utf16 = _utf16_codec(head)
    if utf16 is not None:
        return utf16
    for candidate in ("utf-8", "cp1252"):
        if _decodes(path, candidate):
            return candidate
    return "latin-1"


def _decodes(path: Path, codec: str) -> bool:
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def sniff_delimiter(sample: str) -> str:
    """The delimiter among , ; TAB | whose count outside quotes is most consistent per line."""
    records = _records_outside_quotes(sample)
    best, best_score = ",", (0.0, 0)
    for delimiter in CSV_DELIMITERS:
        counts = [r.count(delimiter) for r in records if r.strip()]
        if not counts:
            continue
        mode, _ = Counter(counts).most_common(1)[0]
        if mode == 0:
            continue
        score = (sum(1 for c in counts if c == mode) / len(counts), mode)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _records_outside_quotes(sample: str, limit: int = 50) -> list[str]:
    """The first complete records of the sample, with quoted text removed."""
    records: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in sample:
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "\n":
            records.append("".join(current))
            current = []
            if len(records) >= limit:
                break
        else:
            current.append(ch)
    if not records and current:
        records.append("".join(current))
    return records


# --------------------------------------------------------------------------- workbooks


def _calamine(path: Path, kind: str) -> python_calamine.CalamineWorkbook:
    return open_calamine(path, kind)


def _open_workbook(
    path: Path, kind: str, sheet: str | None
) -> tuple[str, Iterable[tuple[int, list[str]]]]:
    return open_workbook(path, kind, sheet)


__all__ = ["list_sheet_names", "read_sheet", "render_cell", "sniff_delimiter"]
