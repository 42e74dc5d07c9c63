"""Workbook tabs as Excel shows them: per-cell number formats, error cells and the tab a person sees.

Values come from python-calamine for `.xlsx/.xlsm` and `.ods` and from xlrd for `.xls` (it also
gives the formats); the number formats and error cells come from the file itself, per cell:

- XLSX (transitional and Strict OOXML): `styles.xml` gives each cell style's format code; the
  sheet XML is streamed once (inflated in chunks; literal searches find only the cells whose
  style has a non-General format, and the `t="e"` error and `t="d"` ISO date cells), so nothing
  is sampled and memory stays flat: formats are kept as runs of rows per column. A sheet whose
  cells carry no `r` reference is walked with iterparse instead. When no style of the workbook
  has a format, the scan waits for the first row with a cell calamine reads as empty (as it
  reads an error cell): a dense, unformatted sheet is never scanned, which keeps the read within
  2x calamine alone (bench/bench_read.py). The one cost of that: a `t="d"` cell in such a sheet
  with no blank cell shows calamine's ISO text. Rich text runs whose spaces calamine drops are
  taken from `sharedStrings.xml`.
- XLS: xlrd with `formatting_info=True` (values, formats, error codes, the active tab); a file
  xlrd cannot parse falls back to calamine's values without formats.
- ODS: the document's number styles (`content.xml` and `styles.xml`) are turned into Excel
  format codes and the same renderer shows them; error cells show the text LibreOffice shows.

Every number goes through `bsg_sync.numfmt`. Error cells become `ErrorText`, which the reader
turns into a `cell-error` CellProblem for the row.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

import python_calamine

from bsg_sync import numfmt
from bsg_sync.errors import InputFileError
from bsg_sync.models import CellProblem, SheetRow
from bsg_sync.numfmt import ErrorText, render_cell

log = logging.getLogger(__name__)

Grid = Iterator[tuple[int, list[str]]]

_CHUNK = 1 << 22
_GENERAL = {"general", "@", ""}


# --------------------------------------------------------------------------- per-cell formats


@dataclass
class CellFormats:
    """Format codes per cell, kept as runs of rows per column, plus error and ISO date cells."""

    runs: dict[int, list[list[Any]]] = field(default_factory=dict)  # col -> [[first, last, code]]
    special: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)  # kind, text
    date1904: bool = False
    _special_rows: dict[int, list[tuple[int, str, str]]] | None = None

    def add(self, row: int, col: int, code: str) -> None:
        runs = self.runs.setdefault(col, [])
        if runs and runs[-1][1] == row - 1 and runs[-1][2] == code:
            runs[-1][1] = row
        else:
            runs.append([row, row, code])

    def add_span(self, first: int, last: int, col: int, code: str) -> None:
        runs = self.runs.setdefault(col, [])
        if runs and runs[-1][1] == first - 1 and runs[-1][2] == code:
            runs[-1][1] = last
        else:
            runs.append([first, last, code])

    def special_in_row(self, row: int) -> list[tuple[int, str, str]]:
        """The error, ISO date and duration cells of one row (indexed by row on first use)."""
        if self._special_rows is None:
            self._special_rows = {}
            for (r, col), (kind, text) in self.special.items():
                self._special_rows.setdefault(r, []).append((col, kind, text))
        return self._special_rows.get(row, [])

    def __bool__(self) -> bool:
        return bool(self.runs or self.special)

    def by_row(self, first: int = 1) -> Iterator[dict[int, str]]:
        """For rows first, first+1, ...: the formatted columns of that row (read in row order)."""
        cursor = dict.fromkeys(self.runs, 0)
        row = first - 1
        while True:
            row += 1
            here: dict[int, str] = {}
            for col, runs in self.runs.items():
                i = cursor[col]
                while i < len(runs) and runs[i][1] < row:
                    i += 1
                cursor[col] = i
                if i < len(runs) and runs[i][0] <= row:
                    here[col] = runs[i][2]
            yield here


class RenderedRows:
    """(row number, cell texts) for calamine rows, which start at row 1 and at `first_col`.

    `late`, when given, reads the formats only once a row has a cell calamine reads as empty
    (an error cell reads so): a sheet with no formatted cells and no blanks is never scanned."""

    def __init__(
        self,
        raw_rows: Iterable[list[Any]],
        first_col: int,
        formats: CellFormats,
        fixes: dict[str, str],
        late: Callable[[], CellFormats] | None = None,
    ) -> None:
        self.raw_rows, self.first_col, self.fixes = iter(raw_rows), first_col, fixes
        self.formats, self.late = formats, late

    def __iter__(self) -> Grid:
        try:
            yield from self._rows()
        finally:  # calamine's copy of the tab goes before the reader builds its rows
            self.raw_rows = iter(())

    def _rows(self) -> Grid:
        index = 0
        if not self.formats and not self.fixes:
            for raw in self.raw_rows:
                index += 1
                if self.late is not None and "" in raw:
                    self.formats, self.late = self.late(), None
                    yield self._row(index, raw, self.formats.by_row(index))
                    break
                yield index, [v.strip() if type(v) is str else render_cell(v) for v in raw]
            else:
                return
        by_row = self.formats.by_row(index + 1)
        for raw in self.raw_rows:
            index += 1
            yield self._row(index, raw, by_row)

    def errors_possible(self) -> bool:
        return any(kind == "e" for kind, _ in self.formats.special.values())

    def _row(self, index: int, raw: list[Any], by_row: Iterator[dict[int, str]]) -> tuple[int, list[str]]:
        cells = [v.strip() if type(v) is str else render_cell(v) for v in raw]
        formats, first_col = self.formats, self.first_col
        for col, code in next(by_row).items():
            i = col - first_col
            if 0 <= i < len(raw):
                cells[i] = _formatted(raw[i], code, formats.date1904)
        if formats.special:
            _apply_special(cells, index, first_col, formats)
        if self.fixes:
            cells = [self.fixes.get(c, c) for c in cells]
        return index, cells


def _formatted(value: Any, code: str, date1904: bool) -> str:
    if type(value) is str:
        return numfmt.render_text(value.strip(), code).strip()
    return render_cell(value, code, date1904)


def _apply_special(cells: list[str], row: int, first_col: int, formats: CellFormats) -> None:
    for col, kind, text in formats.special_in_row(row):
        i = col - first_col
        if not 0 <= i < len(cells):
            continue
        if kind == "e":
            cells[i] = ErrorText(text)
        elif kind == "d":
            cells[i] = _iso_date_cell(text, formats.runs.get(i + first_col), row)
        elif kind == "t":
            cells[i] = _duration_cell(text, formats.runs.get(i + first_col), row, cells[i])


_DURATION = re.compile(r"(-?)P(?:(\d+)D)?T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?")


def _duration_cell(text: str, runs: list[list[Any]] | None, row: int, shown: str) -> str:
    """An ODS time cell (ISO 8601 duration) shown through its format."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return shown
    sign, days, hours, minutes, seconds = match.groups()
    value = dt.timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                         seconds=float(seconds or 0))
    code = next((r[2] for r in runs or [] if r[0] <= row <= r[1]), None)
    return render_cell(-value if sign else value, code)


def _iso_date_cell(text: str, runs: list[list[Any]] | None, row: int) -> str:
    """A `t="d"` cell (ISO 8601 text) shown through its format, or as a date-time."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return text.strip()
    code = next((r[2] for r in runs or [] if r[0] <= row <= r[1]), None)
    return render_cell(value, code)


class TabRows:
    """A tab's (row number, cells), and whether any cell may be an error cell (asked once the
    rows are read)."""

    def __init__(self, rows: Iterator[tuple[int, list[str]]], errors: Callable[[], bool]) -> None:
        self._rows = rows
        self._errors = errors

    @property
    def errors_possible(self) -> bool:
        return self._errors()

    def __iter__(self) -> TabRows:
        return self

    def __next__(self) -> tuple[int, list[str]]:
        return next(self._rows)


def note_error_cells(grid: object, rows: list[SheetRow]) -> list[SheetRow]:
    """Rows whose cells hold an error (`#N/A`, ...) carry a `cell-error` CellProblem for it."""
    if not getattr(grid, "errors_possible", False):
        return rows
    out = []
    for row in rows:
        found = tuple(
            CellProblem(i, "cell-error", str(v))
            for i, v in enumerate(row.values)
            if type(v) is ErrorText
        )
        out.append(SheetRow(row.row, row.values, row.problems + found) if found else row)
    return out


# --------------------------------------------------------------------------- opening


def open_calamine(path: Path, kind: str) -> python_calamine.CalamineWorkbook:
    try:
        with path.open("rb") as fh:
            return python_calamine.CalamineWorkbook.from_filelike(fh)
    except python_calamine.PasswordError as exc:
        raise InputFileError(
            f"{path} is password-protected; save an unprotected copy and use that."
        ) from exc
    except Exception as exc:  # calamine raises several unrelated types for damaged files
        what = "workbook" if kind == "zip" else "Excel 97-2003 workbook"
        raise InputFileError(
            f"{path} cannot be read as a {what} ({exc}); open it in Excel and save a new copy."
        ) from exc


def open_workbook(path: Path, kind: str, sheet: str | None) -> tuple[str, Grid]:
    """The chosen tab's name and its rows as the text Excel shows."""
    if kind == "ole":
        from bsg_sync import xls

        opened = xls.open_xls(path, sheet)
        if opened is not None:
            return opened
    workbook = open_calamine(path, kind)
    metadata = list(workbook.sheets_metadata)
    if not metadata:
        raise InputFileError(f"{path} has no sheets; export it again.")
    package = _package_info(path, kind)
    visible = [m.name for m in metadata if m.visible == python_calamine.SheetVisibleEnum.Visible]
    tab = pick_tab(path, [m.name for m in metadata], visible, package.active, sheet)
    try:
        cal_sheet = workbook.get_sheet_by_name(tab)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # calamine panics (a BaseException) on some damaged tabs
        raise InputFileError(
            f"{path}: tab {tab!r} cannot be read ({exc}); open it in Excel and save a new copy."
        ) from exc
    first_col = cal_sheet.start[1] if cal_sheet.start else 0
    if package.lazy:
        late = lambda: package.formats_of(tab)  # noqa: E731 - read only if a cell needs it
        rendered = RenderedRows(cal_sheet.iter_rows(), first_col, CellFormats(), package.fixes, late)
    else:
        rendered = RenderedRows(cal_sheet.iter_rows(), first_col, package.formats_of(tab),
                                package.fixes)
    # reopened only for an empty tab: the workbook (the whole file) is not kept while reading
    others = lambda: _tabs_with_data(open_calamine(path, kind), tab)  # noqa: E731
    grid = refuse_empty_tab(path, tab, iter(rendered), others)
    return tab, TabRows(grid, rendered.errors_possible)


def refuse_empty_tab(path: Path, tab: str, grid: Grid, others: Callable[[], list[str]]) -> Grid:
    """The grid's rows; at its end, if the tab had no data while another tab has, say which.

    A generator: the rows are read inside the reader's guard against calamine panics."""
    seen_data = False
    for item in grid:
        if not seen_data and any(item[1]):
            seen_data = True
        yield item
    if seen_data:
        return
    names = others()
    if names:
        listed = ", ".join(repr(n) for n in names)
        raise InputFileError(
            f"{path}: tab {tab!r} is empty but {listed} has data; "
            f"pass --sheet {names[0]!r} to read it."
        )


def _tabs_with_data(workbook: python_calamine.CalamineWorkbook, skip: str) -> list[str]:
    out = []
    for name in workbook.sheet_names:
        if name == skip:
            continue
        try:
            rows = workbook.get_sheet_by_name(name).iter_rows()
            if any(any(v != "" and v is not None for v in row) for row in rows):
                out.append(name)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # a damaged other tab (calamine may panic) is not suggested
            continue
    return out


def pick_tab(
    path: Path, names: list[str], visible: list[str], active: str | None, sheet: str | None
) -> str:
    """`--sheet` (any casing) wins; else the tab Excel opens on: the active one if visible,
    else the first visible tab, else the first."""
    if sheet is not None:
        for name in names:
            if name.casefold() == sheet.strip().casefold():
                return name
        listed = ", ".join(repr(n) for n in names)
        raise InputFileError(f"{path} has no tab {sheet!r}; its tabs are {listed}.")
    if active is not None and active in visible:
        return active
    return visible[0] if visible else names[0]


# --------------------------------------------------------------------------- packages


@dataclass
class _Package:
    active: str | None = None
    fixes: dict[str, str] = field(default_factory=dict)
    reader: Any = None  # tab -> CellFormats
    lazy: bool = False  # no style has a format: scan only for error and ISO date cells

    def formats_of(self, tab: str) -> CellFormats:
        if self.reader is None:
            return CellFormats()
        formats: CellFormats = self.reader(tab)
        return formats


def _package_info(path: Path, kind: str) -> _Package:
    if kind != "zip":
        return _Package()
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "content.xml" in names and "xl/workbook.xml" not in names:
                from bsg_sync import ods

                return _Package(ods.active_tab(zf), {}, lambda tab: _safe(path, ods.formats, tab))
            info = xlsx_info(zf)
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, ValueError) as exc:
        log.warning("number formats of %s not read (%s); numbers shown unformatted", path, exc)
        return _Package()
    lazy = not any(code.strip().lower() not in _GENERAL for code in info.codes)
    return _Package(info.active, info.fixes, lambda tab: _safe(path, info.formats, tab), lazy)


def _safe(path: Path, reader: Any, tab: str) -> CellFormats:
    try:
        formats: CellFormats = reader(path, tab)
        return formats
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, ValueError, OSError) as exc:
        log.warning("number formats of %s not read (%s); numbers shown unformatted", path, exc)
        return CellFormats()


# --------------------------------------------------------------------------- xlsx


def local(tag: str) -> str:
    """An XML tag without its namespace (transitional and Strict OOXML alike)."""
    return tag.rsplit("}", 1)[-1]


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
    codes = _style_codes(zf) if "xl/styles.xml" in names else []
    fixes = _rich_text_fixes(zf) if "xl/sharedStrings.xml" in names else {}
    return XlsxInfo(parts, active, date1904, codes, fixes)


def _style_codes(zf: zipfile.ZipFile) -> list[str]:
    """Number format code per cell style index (cellXfs)."""
    root = ElementTree.fromstring(zf.read("xl/styles.xml"))
    custom: dict[int, str] = {}
    xfs: list[ElementTree.Element] = []
    for node in root:
        if local(node.tag) == "numFmts":
            for fmt in node:
                custom[int(fmt.get("numFmtId", "0") or 0)] = fmt.get("formatCode", "")
        elif local(node.tag) == "cellXfs":
            xfs = list(node)
    out = []
    for xf in xfs:
        fid = int(xf.get("numFmtId", "0") or 0)
        out.append(custom.get(fid) or numfmt.builtin_format(fid))
    return out


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
    wanted = {i for i, code in enumerate(codes) if code.strip().lower() not in _GENERAL}
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
    if index < len(codes) and codes[index].strip().lower() not in _GENERAL:
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
    if index < len(codes) and codes[index].strip().lower() not in _GENERAL:
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


# --------------------------------------------------------------------------- header row

HEADER_LOOKAHEAD = 50  # rows read to find the header (titles and notes sit above it)
_NUMBERLIKE = re.compile(r"[-+()\d\s.,:/%$€£]+")


def find_header_row(rows: Sequence[Sequence[str]]) -> int | None:
    """Index of the row a person takes for the header, or None when every row is blank.

    The header is the first row of mostly text (not numbers or dates) that spans the table below
    it: most of the next rows end within its columns. A title or a note above the table is
    narrower than the rows under it, so it is skipped. With no such row: the first non-blank."""
    spans = [_last_filled(row) for row in rows]
    for i, row in enumerate(rows):
        if spans[i] < 0 or not _mostly_text(row):
            continue
        below = [n for n in spans[i + 1 : i + 1 + _BELOW] if n >= 0]
        if not below or sum(1 for n in below if n <= spans[i]) * 2 >= len(below):
            return i
    return next((i for i, n in enumerate(spans) if n >= 0), None)


_BELOW = 10  # rows under a candidate header that must mostly fit within its columns


def _last_filled(row: Sequence[str]) -> int:
    return max((i for i, c in enumerate(row) if c.strip()), default=-1)


def _mostly_text(row: Sequence[str]) -> bool:
    filled = [c.strip() for c in row if c.strip()]
    texts = sum(1 for c in filled if not _NUMBERLIKE.fullmatch(c))
    return texts * 5 >= len(filled) * 4
