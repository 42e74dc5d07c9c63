"""XLSX/XLSM parts (transitional and Strict OOXML): tabs, style formats and a streamed cell scan.

The sheet XML is inflated in chunks and searched for literal attributes only (`s="N"` for the
styles that have a format, `t="e"`, `t="d"`), so a sheet is read once at near zlib speed and
nothing is sampled; formats are kept as runs of rows per column, so memory stays flat. A sheet
whose cells omit the `r` reference is walked with iterparse instead.
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from bsg_sync import numfmt
from bsg_sync.cellformats import CellFormats, local
from bsg_sync.errors import InputFileError
from bsg_sync.numfmt import has_format

_CHUNK = 1 << 22


def _attr(elem: ElementTree.Element, name: str) -> str | None:
    """An attribute by local name, whatever its namespace (r:id in either OOXML flavour)."""
    for key, value in elem.attrib.items():
        if local(key) == name:
            return value
    return None


@dataclass
class XlsxInfo:
    parts: dict[str, str]  # tab -> sheet part
    active: str | None
    date1904: bool
    codes: list[str]  # format code per cell style (cellXfs)
    fixes: dict[str, str]

    def formats(self, path: Path, tab: str) -> CellFormats:
        part = self.parts.get(tab)
        if part is None:
            return CellFormats(date1904=self.date1904)
        with zipfile.ZipFile(path) as zf, zf.open(part) as fh:
            return scan_sheet(fh, self.codes, self.date1904)


def xlsx_info(zf: zipfile.ZipFile) -> XlsxInfo:
    workbook = ElementTree.fromstring(zf.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels if local(r.tag) == "Relationship"}
    parts: dict[str, str] = {}
    order: list[str] = []
    active_index, date1904 = 0, False
    for node in workbook.iter():
        tag = local(node.tag)
        if tag == "sheet":
            target = targets.get(_attr(node, "id"), "")
            name = node.get("name", "")
            order.append(name)
            parts[name] = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        elif tag == "workbookView":
            active_index = int(node.get("activeTab", "0") or 0)
        elif tag == "workbookPr":
            date1904 = node.get("date1904", "0").lower() in ("1", "true")
    active = order[active_index] if 0 <= active_index < len(order) else None
    names = set(zf.namelist())
    codes = numfmt.xlsx_style_codes(zf.read("xl/styles.xml")) if "xl/styles.xml" in names else []
    fixes = _rich_text_fixes(zf) if "xl/sharedStrings.xml" in names else {}
    return XlsxInfo(parts, active, date1904, codes, fixes)


# --------------------------------------------------------------------------- streamed read

# a sheet part this large is streamed, not loaded by calamine: calamine takes ~1.85 bytes per
# byte of sheet XML (630 MB for bench_read's 500k x 12, whose part is 327 MiB), so from here
# it alone would pass ~700 MB of the 1 GiB a whole dry run may take
STREAM_FROM_BYTES = 384 << 20


def sheet_part_size(path: Path, tab: str) -> int:
    """Uncompressed bytes of the tab's sheet part (0 when it cannot be told)."""
    with zipfile.ZipFile(path) as zf:
        if "xl/workbook.xml" not in set(zf.namelist()):
            return 0
        tabs = _tab_parts(zf)
        part = tabs.get(tab)
        return zf.getinfo(part).file_size if part in set(zf.namelist()) else 0


def _tab_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    workbook = ElementTree.fromstring(zf.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels if local(r.tag) == "Relationship"}
    parts: dict[str, str] = {}
    for node in workbook.iter():
        if local(node.tag) == "sheet":
            target = targets.get(_attr(node, "id"), "")
            parts[node.get("name", "")] = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return parts


def streamed_rows(path: Path, tab: str) -> Iterator[tuple[int, list[str]]]:
    """A tab's rows read as a stream (openpyxl's read-only mode), for sheets whose whole range
    calamine would hold at once: a 1,048,576 x 12 sheet takes calamine about 1.3 GB, a stream
    a flat few hundred MB (the shared strings). openpyxl is 10-25x slower than calamine
    (measured on inline-string sheets: 20k x 12 rows 0.84 s vs 22 s profiled), so only from
    STREAM_FROM_BYTES of sheet XML. Cells go through the same renderer as calamine's; over
    the 64 XLSX files of the corpus and tests/data the streamed read equals calamine's for
    58, refuses 3 with a sentence (Strict OOXML, two damaged files), and differs for 3: an
    out-of-range date serial (openpyxl: #VALUE!), `_x000D_` escapes, and a sheet without a
    <dimension> whose column A is empty (the rows start at A)."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    try:
        date1904 = book.epoch.year == 1904
        sheet = book[tab]
        skip = max((sheet.min_column or 1) - 1, 0)  # calamine's rows start at the first used column
        sheet.reset_dimensions()  # a wrong <dimension> must not cut rows or columns
        for cells in sheet.iter_rows():
            number = next((c.row for c in cells if getattr(c, "row", None)), None)
            if number is None:
                continue
            if skip and any(c.value is not None for c in cells[:skip]):
                raise _wrong_dimension(path, tab)
            yield number, [_streamed_text(c, date1904) for c in cells[skip:]]
    finally:
        book.close()


def _wrong_dimension(path: Path, tab: str) -> InputFileError:
    return InputFileError(
        f"{path}: tab {tab!r} has cells left of the range it declares (it is damaged); open it "
        "in Excel and save a new copy, or export it as .csv."
    )


def _streamed_text(cell: Any, date1904: bool) -> str:
    value = cell.value
    if value is None:
        return ""
    if cell.data_type == "e":
        return numfmt.ErrorText(str(value).strip())
    code = cell.number_format
    if has_format(code):
        return numfmt.cell_renderer(code, date1904)(value)
    if type(value) is str:
        return value.strip()
    return numfmt.render_cell(value, None, date1904)


def _rich_text_fixes(zf: zipfile.ZipFile) -> dict[str, str]:
    """Shared rich-text strings as calamine reads them (runs trimmed) -> as Excel shows them."""
    fixes: dict[str, str] = {}
    data = zf.read("xl/sharedStrings.xml")
    if b"<r>" not in data and b":r>" not in data:  # no rich text: nothing calamine trims
        return fixes
    with io.BytesIO(data) as fh:
        for _, elem in ElementTree.iterparse(fh):
            if local(elem.tag) != "si":
                continue
            runs = [r for r in elem if local(r.tag) == "r"]
            if runs:
                texts = ["".join(t.text or "" for t in r if local(t.tag) == "t") for r in runs]
                shown = "".join(texts)
                trimmed = "".join(t.strip() for t in texts)
                if shown.strip() != trimmed.strip():
                    fixes[trimmed.strip()] = shown.strip()
            elem.clear()
    return fixes


_REF = re.compile(rb'\br="([A-Z]+)([0-9]+)"')
_STYLE = re.compile(rb'\bs="([0-9]*)"')
_TYPE = re.compile(rb'\bt="([a-zA-Z]+)"')
_VALUE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?v>([^<]*)<")
_CELL_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?c>")
_NO_REF = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c(?:\s(?![^>]*\br=)[^>]*)?/?>")


def scan_sheet(fh: IO[bytes], codes: list[str], date1904: bool = False) -> CellFormats:
    """Every formatted number cell, error cell and ISO date cell of one sheet part."""
    formats = CellFormats(date1904=date1904)
    wanted = {i for i, code in enumerate(codes) if has_format(code)}
    pattern = _cell_pattern(wanted)
    carry = b""
    first = True
    while True:
        chunk = fh.read(_CHUNK)
        data = carry + chunk
        if first and _NO_REF.search(data):
            return _scan_positional(itertools.chain([data], iter(lambda: fh.read(_CHUNK), b"")),
                                    codes, formats)
        first = False
        end = data.rfind(b"</row>")
        cut = len(data) if not chunk else (end + 6 if end >= 0 else 0)
        if cut <= 0:
            carry = data
            continue
        _scan_block(data[:cut], pattern, codes, formats)
        carry = data[cut:]
        if not chunk:
            return formats


def _cell_pattern(wanted: set[int]) -> re.Pattern[bytes] | None:
    """`s="N"` for the styles that have a format (a literal prefix: C-speed search)."""
    if not wanted:
        return None
    return re.compile(rb's="(' + b"|".join(str(i).encode() for i in sorted(wanted)) + rb')"')


_SPACE = frozenset(b" \t\r\n")


def _scan_block(
    data: bytes, pattern: re.Pattern[bytes] | None, codes: list[str], formats: CellFormats
) -> None:
    if pattern is not None:
        _note_styles(data, pattern, codes, formats)
    for needle in (b't="e"', b't="d"'):
        at = data.find(needle)
        while at >= 0:
            start = _cell_start(data, at)
            if start >= 0:
                end = data.find(b">", at)
                _note_tag(data, data[start : end + 1], end + 1, codes, formats)
            at = data.find(needle, at + 5)


def _cell_start(data: bytes, at: int) -> int:
    """Where the `<c` tag holding the attribute at `at` starts, or -1 if it is another tag."""
    if data[at - 1] not in _SPACE:
        return -1
    start = data.rfind(b"<", 0, at)
    name = data[start + 1 : at].split(None, 1)[0] if start >= 0 else b""
    return start if name.rsplit(b":", 1)[-1] == b"c" else -1


def _note_styles(
    data: bytes, pattern: re.Pattern[bytes], codes: list[str], formats: CellFormats
) -> None:
    """Every cell whose style has a format: its row, column and format code.

    The common shape `<c r="B7" s="3"` is read with two byte searches; anything else (another
    attribute order, a namespace prefix) through the general tag lookup."""
    add, rfind, find = formats.add, data.rfind, data.find
    for match in pattern.finditer(data):
        at = match.start()
        lt = rfind(b"<", 0, at)
        r = rfind(b' r="', lt, at)
        if r < 0 or data[lt + 1 : lt + 3] != b"c ":
            _note_style_slow(data, at, codes[int(match.group(1))], formats)
            continue
        ref = data[r + 4 : find(b'"', r + 4)]
        letters = ref.rstrip(b"0123456789")
        if letters and len(letters) < len(ref):
            add(int(ref[len(letters) :]), _column_of(letters), codes[int(match.group(1))])


def _note_style_slow(data: bytes, at: int, code: str, formats: CellFormats) -> None:
    start = _cell_start(data, at)
    if start < 0:
        return
    ref = _REF.search(data, start, data.find(b">", at))
    if ref is not None:
        formats.add(int(ref.group(2)), column_index(ref.group(1).decode()), code)


@lru_cache(maxsize=20000)
def _column_of(letters: bytes) -> int:
    return column_index(letters.decode())


def _note_tag(data: bytes, tag: bytes, after: int, codes: list[str], formats: CellFormats) -> None:
    ref = _REF.search(tag)
    if ref is None:
        return
    row, col = int(ref.group(2)), column_index(ref.group(1).decode())
    style = _STYLE.search(tag)
    index = int(style.group(1)) if style and style.group(1) else 0
    if index < len(codes) and has_format(codes[index]):
        formats.add(row, col, codes[index])
    kind = _TYPE.search(tag)
    cell_type = kind.group(1).decode() if kind else "n"
    if cell_type in ("e", "d") and not tag.endswith(b"/>"):
        close = _CELL_END.search(data, after)
        value = _VALUE.search(data, after, close.end() if close else len(data))
        if value is not None:
            text = value.group(1).decode("utf-8", "replace")
            formats.special[(row, col)] = (cell_type, _unescape(text))


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace(
        "&apos;", "'").replace("&amp;", "&")


def _scan_positional(
    chunks: Iterable[bytes], codes: list[str], formats: CellFormats
) -> CellFormats:
    """The slow walk for sheets whose cells omit `r`: count rows and cells as Excel does."""
    parser: Any = ElementTree.XMLPullParser(events=("start", "end"))
    row, col = 0, -1
    for chunk in chunks:
        parser.feed(chunk)
        event: str
        elem: ElementTree.Element
        for event, elem in parser.read_events():
            tag = local(elem.tag)
            if event == "start":
                if tag == "row":
                    row = int(elem.get("r") or row + 1)
                    col = -1
                continue
            if tag == "c":
                ref = elem.get("r")
                col = column_index(ref) if ref else col + 1
                _note_cell(elem, codes, formats, row, col)
                elem.clear()
            elif tag == "row":
                elem.clear()
    return formats


def _note_cell(
    elem: ElementTree.Element, codes: list[str], formats: CellFormats, row: int, col: int
) -> None:
    style = elem.get("s") or "0"
    index = int(style) if style.isdigit() else 0
    if index < len(codes) and has_format(codes[index]):
        formats.add(row, col, codes[index])
    kind = elem.get("t", "n")
    value = next((v for v in elem if local(v.tag) == "v"), None)
    if kind in ("e", "d") and value is not None and value.text:
        formats.special[(row, col)] = (kind, value.text)


@lru_cache(maxsize=20000)
def column_index(ref: str) -> int:
    """0-based column of a cell reference ("A1" -> 0, "AB7" -> 27)."""
    index = 0
    for ch in ref:
        if not ch.isalpha():
            break
        index = index * 26 + ord(ch.upper()) - 64
    return index - 1
