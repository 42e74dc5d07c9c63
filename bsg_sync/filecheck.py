"""What a workbook declares (sheet extent, shared strings, OLE sector chains), checked against
documented limits before any parser allocates for it.

The limits cover any sheet Excel itself can hold, so only damaged or hostile files are refused:

- a cell beyond Excel's grid (XFD = 16,384 columns, 1,048,576 rows), in a cell or in
  `<dimension ref>`;
- a sheet whose used range (first to last cell, which calamine allocates in full, about 32
  bytes a cell) exceeds MAX_RANGE_CELLS (50 M cells, about 1.6 GB). A 100k x 12 sheet is
  1.2 M cells; a 1,048,576-row sheet may be 47 columns wide;
- a shared string longer than Excel's 32,767 characters, a sharedStrings part above
  MAX_SHARED_STRINGS_BYTES, and more text than MAX_SHARED_TEXT_CHARS once every string is
  repeated in each cell that uses it (calamine copies it per cell);
- an `.ods` whose repeated rows and cells (`number-rows-repeated`, `number-columns-repeated`,
  which calamine expands) span more than MAX_RANGE_CELLS around the cells that hold data;
- an `.xls` (OLE/CFB) whose sector chains loop, cross, or point outside the file, or whose
  streams declare more bytes than their chains hold.

Sheet parts are streamed (1 MiB at a time, inflated by a thread one chunk ahead): a cheap
pass (a cell count and two byte searches) proves most sheets small; only a sheet with a column beyond Z or a row beyond 999,999 gets the
exact pass over every cell reference. Every walk is bounded by the file's size.
"""

from __future__ import annotations

import mmap
import queue
import re
import struct
import threading
import zipfile
from collections.abc import Generator, Iterator
from pathlib import Path
from xml.sax.saxutils import unescape

from bsg_sync.errors import InputFileError

EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLS = 16_384
EXCEL_MAX_CELL_CHARS = 32_767
MAX_RANGE_CELLS = 50_000_000
MAX_SHARED_STRINGS_BYTES = 1 << 30
MAX_SHARED_TEXT_CHARS = 1 << 30  # characters of text once shared strings are copied per cell

_CHUNK = 1 << 20
_AHEAD = 2  # inflated chunks waiting for the caller (bounds the check's memory)
_MAX_TEXT_RUN = 8 << 20  # bytes between two tags: Excel's longest text, escaped, is ~330 KB
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([^"]*)"')
_REF = re.compile(rb'\sr="([A-Za-z]{1,4})(\d{1,8})"')  # a cell's reference (a row's r has no letters)
# a reference with a column past Z or a row past 999,999 (any attribute ending in r, after
# any whitespace: a false match only costs the exact pass)
_WIDE = re.compile(rb'r="[A-Za-z](?:[A-Za-z]|\d{7})')  # two letters, or a row of 7 digits
_SHARED_USE = re.compile(rb'<(?:\w+:)?c\s[^>]*?t="s"[^>]*>\s*<(?:\w+:)?v>(\d+)<')
_STRING_ITEM = re.compile(rb"<(?:\w+:)?si[\s>/]")
_TEXT_RUN = re.compile(rb"<(?:\w+:)?t(?:\s[^>]*)?>([^<]*)<")
_REF_TEXT = re.compile(r"\$?([A-Za-z]{1,4})\$?(\d{1,8})")


def _damaged(path: Path, what: str) -> InputFileError:
    return InputFileError(
        f"{path} is damaged or not made by a spreadsheet program ({what}); "
        "open it in Excel and save a new copy, or export it as .csv."
    )


def _column_number(letters: str) -> int:
    number = 0
    for ch in letters.upper():
        number = number * 26 + ord(ch) - 64
    return number


# --------------------------------------------------------------------------- XLSX


def check_xlsx(path: Path, zf: zipfile.ZipFile) -> None:
    """Refuse an XLSX/XLSM whose sheets or shared strings exceed the module's limits."""
    longest, string_bytes = _check_shared_strings(path, zf)
    for info in zf.infolist():
        if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
            _check_sheet_part(path, zf, info.filename)
            most_uses = info.file_size // 20  # a shared-string cell takes >= 20 bytes of XML
            if most_uses * longest > MAX_SHARED_TEXT_CHARS:
                _check_shared_text(path, zf, info.filename, string_bytes)


def _stream(path: Path, zf: zipfile.ZipFile, name: str) -> Iterator[bytes]:
    """The part in chunks that end at a tag boundary, so no reference or text is split."""
    tail = b""
    for chunk in _inflated(zf, name):
        data = tail + chunk
        cut = data.rfind(b"<")
        if cut <= 0:
            tail = data
        else:
            tail = data[cut:]
            yield data[:cut]
        if len(tail) > _MAX_TEXT_RUN:
            raise _too_long(path, len(tail))
    if tail:
        yield tail


def _inflated(zf: zipfile.ZipFile, name: str) -> Generator[bytes, None, None]:
    """The part's bytes, _CHUNK at a time, inflated by a thread one chunk ahead of the caller.

    zlib and crc32 release the GIL, the caller's searches hold it: the two overlap, which
    took the check of a 64 MiB sheet from ~0.33 s to ~0.2 s (bench/bench_read.py). At most
    _AHEAD chunks wait in the queue, so memory stays bounded; a caller that stops early (a
    refusal) stops the thread too."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(_AHEAD)
    stop = threading.Event()

    def inflate() -> None:
        try:
            with zf.open(name) as fh:
                while not stop.is_set() and (chunk := fh.read(_CHUNK)):
                    _put(chunks, stop, chunk)
            _put(chunks, stop, None)
        except BaseException as exc:  # handed to the caller, raised there
            _put(chunks, stop, exc)

    worker = threading.Thread(target=inflate, name="filecheck-inflate", daemon=True)
    worker.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _put(chunks: queue.Queue[bytes | BaseException | None], stop: threading.Event,
         item: bytes | BaseException | None) -> None:
    """Queue an item, giving up once the caller has stopped reading."""
    while not stop.is_set():
        try:
            chunks.put(item, timeout=0.05)
            return
        except queue.Full:
            continue


def _too_long(path: Path, chars: int) -> InputFileError:
    return InputFileError(
        f"{path} holds a text of {chars:,} characters or more, above Excel's "
        f"{EXCEL_MAX_CELL_CHARS:,} per cell; it is damaged or not made by a spreadsheet "
        "program: export it again as .xlsx or .csv."
    )


def _check_sheet_part(path: Path, zf: zipfile.ZipFile, name: str) -> None:
    """Check one sheet's extent: the cheap pass, then the exact one if it cannot bound it."""
    wide = False
    for index, data in enumerate(_stream(path, zf, name)):
        if index == 0:
            _check_dimension(path, data)
        if not wide:
            wide = bool(_WIDE.search(data))
    if wide:
        _check_extent(path, zf, name)


def _check_dimension(path: Path, head: bytes) -> None:
    found = _DIMENSION.search(head)
    if not found:
        return
    for ref in found.group(1).decode("ascii", "replace").split(":"):
        match = _REF_TEXT.fullmatch(ref.strip())
        if match and _beyond_excel(_column_number(match.group(1)), int(match.group(2))):
            raise _damaged(path, f"it declares cells up to {ref}, beyond Excel's XFD1048576")


def _beyond_excel(col: int, row: int) -> bool:
    return col > EXCEL_MAX_COLS or row > EXCEL_MAX_ROWS or row < 1


def _check_extent(path: Path, zf: zipfile.ZipFile, name: str) -> None:
    top = left = 1 << 40
    bottom = right = cells = 0
    for data in _stream(path, zf, name):
        refs = _REF.findall(data)
        cells += len(refs)
        for letters, digits in refs:
            col, row = _column_number(letters.decode()), int(digits)
            if _beyond_excel(col, row):
                ref = f"{letters.decode()}{row}"
                raise _damaged(path, f"it has a cell at {ref}, beyond Excel's XFD1048576")
            top, bottom, left, right = min(top, row), max(bottom, row), min(left, col), max(right, col)
    if not bottom:
        return
    span = (bottom - top + 1) * (right - left + 1)
    if span > MAX_RANGE_CELLS:
        raise InputFileError(
            f"{path} spans {span:,} cells (rows {top}-{bottom}, {right - left + 1} columns) for "
            f"{cells:,} cells with data, above the {MAX_RANGE_CELLS:,}-cell limit; delete the "
            "empty rows and columns below and right of the data in Excel and save again, or "
            "export it as .csv."
        )


def _check_shared_strings(path: Path, zf: zipfile.ZipFile) -> tuple[int, list[int]]:
    """(longest string's characters, each string's size in bytes) of the sharedStrings part."""
    names = [i for i in zf.infolist() if i.filename.lower().endswith("sharedstrings.xml")]
    if not names:
        return 0, []
    info = names[0]
    if info.file_size > MAX_SHARED_STRINGS_BYTES:
        raise InputFileError(
            f"{path} holds {info.file_size / 2**20:,.0f} MiB of shared text, above the "
            f"{MAX_SHARED_STRINGS_BYTES >> 20:,} MiB limit; it is probably damaged: open it in "
            "Excel and save a new copy, or export it as .csv."
        )
    sizes: list[int] = []
    longest = 0
    pending = 0
    for data in _stream(path, zf, info.filename):
        pieces = _STRING_ITEM.split(data)
        for i, piece in enumerate(pieces):
            if i > 0:  # a new <si> starts: close the previous one
                sizes.append(pending)
                pending = 0
            runs = _TEXT_RUN.findall(piece)
            pending += sum(len(r) for r in runs)
            if pending > EXCEL_MAX_CELL_CHARS:
                chars = sum(len(unescape(r.decode("utf-8", "replace"))) for r in runs)
                longest = max(longest, chars)
                if chars > EXCEL_MAX_CELL_CHARS:
                    raise _too_long(path, chars)
            longest = max(longest, pending)
    sizes.append(pending)
    return longest, sizes[1:]


def _check_shared_text(path: Path, zf: zipfile.ZipFile, name: str, sizes: list[int]) -> None:
    """The exact text a sheet repeats from shared strings, cell by cell."""
    total = 0
    for data in _stream(path, zf, name):
        for index in _SHARED_USE.findall(data):
            i = int(index)
            total += sizes[i] if i < len(sizes) else 0
    if total > MAX_SHARED_TEXT_CHARS:
        raise InputFileError(
            f"{path} repeats its shared text into {total / 2**30:,.1f} G characters of cells, "
            f"above the {MAX_SHARED_TEXT_CHARS / 2**30:,.0f} G limit; it is probably damaged or "
            "not made by a spreadsheet program: export it again as .csv."
        )


# --------------------------------------------------------------------------- ODS

_ODS_TAG = re.compile(
    rb"<(/?)(?:\w+:)?(table|table-row|table-cell|covered-table-cell)(?=[\s/>])([^>]*?)(/?)>"
)
_ROWS_REPEATED = re.compile(rb'number-rows-repeated="(\d{1,10})"')
_COLS_REPEATED = re.compile(rb'number-columns-repeated="(\d{1,10})"')


class _OdsExtent:
    """The used range of each table in content.xml, repeats expanded as calamine expands them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._table()

    def _table(self) -> None:
        self.row = 0
        self.top = self.left = 1 << 62
        self.bottom = self.right = -1
        self._row_start(b"")

    def _row_start(self, attrs: bytes) -> None:
        found = _ROWS_REPEATED.search(attrs)
        self.repeat = int(found.group(1)) if found else 1
        self.col = 0
        self.row_used = False
        self.cell: tuple[int, int] | None = None  # an open cell: (first column, repeat)
        self.cell_end = 0  # where its start tag ends in the chunk

    def feed(self, data: bytes) -> None:
        for match in _ODS_TAG.finditer(data):
            closing, name, attrs, empty = match.groups()
            if name == b"table":
                if closing:
                    self._check()
                else:
                    self._table()
            elif name == b"table-row":
                if closing or empty:
                    if not closing:
                        self._row_start(attrs)
                    self._row_end()
                else:
                    self._row_start(attrs)
            elif closing:
                if self.cell is not None and data[self.cell_end : match.start()].strip():
                    self._use(*self.cell)
                self.cell = None
            else:
                found = _COLS_REPEATED.search(attrs)
                repeat = int(found.group(1)) if found else 1
                if not empty and name == b"table-cell":
                    self.cell, self.cell_end = (self.col, repeat), match.end()
                    if b"value-type" in attrs:
                        self._use(self.col, repeat)
                        self.cell = None
                self.col += repeat
        if self.cell is not None:  # its content is in the next chunk: count it as used
            self._use(*self.cell)
            self.cell = None

    def _use(self, col: int, repeat: int) -> None:
        self.left, self.right = min(self.left, col), max(self.right, col + repeat - 1)
        self.row_used = True

    def _row_end(self) -> None:
        if self.row_used:
            self.top, self.bottom = min(self.top, self.row), max(self.bottom, self.row + self.repeat - 1)
        self.row += self.repeat
        self._row_start(b"")

    def _check(self) -> None:
        if self.bottom < 0:
            return
        rows, cols = self.bottom - self.top + 1, self.right - self.left + 1
        if rows * cols > MAX_RANGE_CELLS:
            raise InputFileError(
                f"{self.path} spans {rows * cols:,} cells ({rows:,} rows, {cols:,} columns, "
                f"counting repeated cells), above the {MAX_RANGE_CELLS:,}-cell limit; delete the "
                "empty rows and columns around the data and save again, or export it as .csv."
            )


def check_ods(path: Path, zf: zipfile.ZipFile) -> None:
    """Refuse an ODS whose repeated rows and cells would expand beyond MAX_RANGE_CELLS."""
    if "content.xml" not in zf.namelist():
        return
    extent = _OdsExtent(path)
    for data in _stream(path, zf, "content.xml"):
        extent.feed(data)
    extent._check()


# --------------------------------------------------------------------------- OLE (XLS)

_FREE, _END_OF_CHAIN, _FAT_SECTOR, _DIFAT_SECTOR = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFC
_MAX_REGULAR = 0xFFFFFFFA


class OleFile:
    """A bounded walk of an OLE/CFB container: header, DIFAT, FAT, directory, stream chains."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as fh:  # mapped, not read: an .xls may be large
            self.data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        if len(self.data) < 512:
            raise _damaged(path, "its OLE header is cut short")
        header = self.data[:512]
        shift, mini_shift = struct.unpack_from("<HH", header, 30)
        if shift not in (9, 12) or mini_shift != 6:  # some writers get the byte order wrong
            raise _damaged(path, "its OLE header is invalid")
        self.sector_size = 1 << shift
        self.sectors = (len(self.data) - 512 + self.sector_size - 1) // self.sector_size
        (self.fat_count, self.dir_start, _, self.mini_cutoff, self.minifat_start,
         self.minifat_count, self.difat_start, self.difat_count) = struct.unpack_from(
            "<IIIIIIII", header, 44)
        self.fat = self._read_fat(header)
        self._minifat: list[int] | None = None
        self.root = (_END_OF_CHAIN, 0)

    def close(self) -> None:
        self.data.close()

    def _sector(self, index: int) -> bytes:
        if index >= self.sectors:
            raise _damaged(self.path, f"sector {index} is outside the file")
        start = 512 + index * self.sector_size
        return self.data[start : start + self.sector_size].ljust(self.sector_size, b"\0")

    def _read_fat(self, header: bytes) -> list[int]:
        per_sector = self.sector_size // 4
        if self.fat_count > self.sectors // per_sector + 2:
            raise _damaged(self.path, "it declares more FAT sectors than the file needs")
        fat_sectors = [s for s in struct.unpack_from("<109I", header, 76) if s <= _MAX_REGULAR]
        sector, seen = self.difat_start, set[int]()
        while sector <= _MAX_REGULAR and len(fat_sectors) < self.fat_count:
            if sector in seen or len(seen) > self.sectors:
                raise _damaged(self.path, "its DIFAT sector chain loops")
            seen.add(sector)
            entries = struct.unpack(f"<{per_sector}I", self._sector(sector))
            fat_sectors.extend(s for s in entries[:-1] if s <= _MAX_REGULAR)
            sector = entries[-1]
        fat: list[int] = []
        for s in fat_sectors[: self.fat_count]:
            fat.extend(struct.unpack(f"<{per_sector}I", self._sector(s)))
        return fat

    def chain(self, start: int, table: list[int], limit: int) -> list[int]:
        """The sectors of a chain; refuses loops, crossings and sectors outside the table."""
        out: list[int] = []
        seen: set[int] = set()
        sector = start
        while sector != _END_OF_CHAIN:
            if sector > _MAX_REGULAR or sector >= len(table) or sector >= limit:
                raise _damaged(self.path, f"a sector chain points at sector {sector:#x}, outside the file")
            if sector in seen:
                raise _damaged(self.path, "a sector chain loops")
            seen.add(sector)
            out.append(sector)
            sector = table[sector]
        return out

    def streams(self) -> dict[str, tuple[int, int]]:
        """Directory (its chain checked): name -> (start sector, size) of every stream."""
        chain = self.chain(self.dir_start, self.fat, self.sectors)
        directory = b"".join(self._sector(s) for s in chain)
        entries: dict[str, tuple[int, int]] = {}
        for offset in range(0, len(directory) - 127, 128):
            entry = directory[offset : offset + 128]
            name_len, kind = struct.unpack_from("<HB", entry, 64)
            start, size = struct.unpack_from("<IQ", entry, 116)
            name = entry[: max(0, min(name_len, 64) - 2)].decode("utf-16-le", "replace")
            if kind == 5:  # the root entry holds the mini stream
                self.root = (start, size)
            elif kind == 2:
                entries[name] = (start, size)
        return entries

    def read_stream(self, name: str, start: int, size: int, limit: int) -> bytes:
        """Check a stream's chain (loops, range, declared size) and return its first bytes."""
        mini = b"" if size >= self.mini_cutoff else self._mini_stream()
        if size >= self.mini_cutoff:
            sectors, unit = self.chain(start, self.fat, self.sectors), self.sector_size
        else:
            sectors, unit = self.chain(start, self.minifat(), len(mini) // 64), 64
        if size > len(self.data):
            raise _damaged(self.path, f"stream {name!r} declares {size:,} bytes in a smaller file")
        if len(sectors) * unit < size:
            raise _damaged(self.path, f"stream {name!r} is cut short")
        out = bytearray()
        for sector in sectors:
            if len(out) >= min(limit, size):
                break
            out += self._sector(sector) if unit > 64 else mini[sector * 64 : sector * 64 + 64]
        return bytes(out[: min(limit, size)])

    def _mini_stream(self) -> bytes:
        start, size = self.root
        if not size:
            return b""
        chain = self.chain(start, self.fat, self.sectors)
        return b"".join(self._sector(s) for s in chain)[:size]

    def minifat(self) -> list[int]:
        if self._minifat is None:
            self._minifat = []
            if self.minifat_count and self.minifat_start <= _MAX_REGULAR:
                sectors = self.chain(self.minifat_start, self.fat, self.sectors)
                raw = b"".join(self._sector(s) for s in sectors)
                self._minifat = list(struct.unpack(f"<{len(raw) // 4}I", raw))
        return self._minifat



def check_xls(path: Path) -> None:
    """Refuse a damaged OLE container, and say so for a password-protected `.xls`."""
    ole = OleFile(path)
    try:
        _check_book(path, ole)
    finally:
        ole.close()


def _check_book(path: Path, ole: OleFile) -> None:
    streams = {name.casefold(): (name, entry) for name, entry in ole.streams().items()}
    found = streams.get("workbook") or streams.get("book")
    if found is None:
        return  # not an Excel 97-2003 workbook: the caller's parser says what it is
    name, (start, size) = found
    if _has_filepass(ole.read_stream(name, start, size, limit=4096)):
        raise InputFileError(
            f"{path} is password-protected; open it in Excel, remove the password "
            "(File > Info > Protect Workbook > Encrypt with Password) and save it again."
        )


def _has_filepass(head: bytes) -> bool:
    """BIFF records up to the first sheet data: FILEPASS (0x002F) means the book is encrypted."""
    offset = 0
    for _ in range(64):
        if offset + 4 > len(head):
            return False
        kind, length = struct.unpack_from("<HH", head, offset)
        if kind == 0x002F:
            return True
        if kind in (0x0085, 0x00FC, 0x0042):  # BOUNDSHEET, SST, CODEPAGE: past the FILEPASS
            return False
        offset += 4 + length
    return False
