"""Workbook tabs as Excel shows them: the tab a person sees, its cells through their formats.

Values come from python-calamine for `.xlsx/.xlsm` and `.ods` and from xlrd for `.xls`; number
formats and error cells come from the file itself, per cell (no sampling):

- XLSX (transitional and Strict OOXML): `bsg_sync.xlsx` streams the sheet once. When no style of
  the workbook has a format, the scan waits for the first row with a cell calamine reads as
  empty (as it reads an error cell): a dense, unformatted sheet is never scanned, which keeps the
  read within 2x calamine alone (bench/bench_read.py). The one cost: a `t="d"` cell in such a
  sheet with no blank cell shows calamine's ISO text. Rich text runs whose spaces calamine drops
  are taken from `sharedStrings.xml`.
  A tab of `xlsx.STREAM_FROM_BYTES` of sheet XML or more (Excel's full 1,048,576 rows) is
  read as a stream instead (`xlsx.streamed_rows`): calamine would hold its whole range.
- XLS: `bsg_sync.xls` (xlrd with `formatting_info=True`); a file xlrd cannot parse falls back to
  calamine's values without formats.
- ODS: `bsg_sync.ods` turns the document's number styles into Excel format codes.

Every number goes through `bsg_sync.numfmt`. Error cells become `ErrorText`, which the reader
turns into a `cell-error` CellProblem for the row. The header row a person would take is found
by `find_header_row`, which CSV and workbooks share.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import operator
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import python_calamine

from bsg_sync import xlsx
from bsg_sync.cellformats import CellFormats
from bsg_sync.errors import ErrorCode, InputFileError
from bsg_sync.models import CellProblem, SheetRow
from bsg_sync.numfmt import (
    ErrorText,
    cell_renderer,
    general,
    general_column,
    has_format,
    render_cell,
)

log = logging.getLogger(__name__)

Row = tuple[int, Sequence[str]]  # (spreadsheet row number, cell texts)
Grid = Iterator[Row]



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
        rest: Iterator[list[Any]] = self.raw_rows
        if not self.formats and not self.fixes:
            while block := list(itertools.islice(self.raw_rows, _BLOCK)):
                blank = _first_blank(block) if self.late is not None else len(block)
                converted = plain_cells(block[:blank])
                yield from enumerate(converted, index + 1)
                index += len(converted)
                if blank < len(block):
                    self.formats, self.late = self.late() if self.late else CellFormats(), None
                    rest = itertools.chain(block[blank:], self.raw_rows)
                    break
            else:
                return
        by_row = self.formats.by_row(index + 1)
        for raw in rest:
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
                cells[i] = cell_renderer(code, formats.date1904)(raw[i])
        if formats.special:
            _apply_special(cells, index, first_col, formats)
        if self.fixes:
            cells = [self.fixes.get(c, c) for c in cells]
        return index, cells


_BLOCK = 2048  # rows converted a column at a time (bounded: calamine holds the tab anyway)


def _first_blank(block: list[list[Any]]) -> int:
    """Index of the first row with a cell calamine reads as empty (an error cell reads so),
    told in C: no Python step per row."""
    return next(itertools.compress(itertools.count(), map(operator.contains, block,
                                                          itertools.repeat(""))), len(block))


def plain_cells(block: list[list[Any]]) -> list[tuple[str, ...]]:
    """Rows of a sheet without formats as General shows them, converted a column at a time.

    A column of text is trimmed by str.strip mapped in C (it hands back the very cell when
    there is nothing to trim) and a column of floats is formatted in C: no Python step per
    cell for the common shapes (bench/bench_read.py)."""
    if not block:
        return []
    if len(set(map(len, block))) > 1:
        return [tuple(_plain_column(tuple(raw))) for raw in block]
    return list(zip(*(_plain_column(col) for col in zip(*block, strict=True)), strict=True))


def _plain_column(col: tuple[Any, ...]) -> Sequence[str]:
    try:  # text (most columns): str.strip refuses anything else, so no test of types first
        return list(map(str.strip, col))
    except TypeError:
        pass
    kinds = set(map(type, col))
    if kinds == {float}:
        return general_column(col)
    return [v.strip() if type(v) is str else _plain(v) for v in col]


def _plain(value: Any) -> str:
    """A cell of a sheet with no formats: General for a float (most cells), else render_cell."""
    return general(value) if type(value) is float else render_cell(value)


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

    def __init__(self, rows: Grid, errors: Callable[[], bool]) -> None:
        self._rows = rows
        self._errors = errors

    @property
    def errors_possible(self) -> bool:
        return self._errors()

    def __iter__(self) -> Grid:
        return self._rows  # the generator itself: no Python-level step per row


def note_error_cells(grid: object, rows: Sequence[SheetRow]) -> Sequence[SheetRow]:
    """Rows whose cells hold an error (`#N/A`, ...) carry a `cell-error` CellProblem for it."""
    if not getattr(grid, "errors_possible", False):
        return rows
    out = []
    for row in rows:
        found = tuple(
            CellProblem(i, ErrorCode.CELL_ERROR, str(v))
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


def open_workbook(path: Path, kind: str, sheet: str | None) -> tuple[str, Iterable[Row]]:
    """The chosen tab's name and its rows as the text Excel shows."""
    if kind == "ole":
        from bsg_sync import xls

        opened = xls.open_xls(path, sheet)
        if opened is not None:
            return opened
    if kind == "zip" and path.suffix.lower() == ".ods" and _ods_encrypted(path):
        raise InputFileError(f"{path} is password-protected; save an unprotected copy and use that.")
    workbook = open_calamine(path, kind)
    metadata = list(workbook.sheets_metadata)
    if not metadata:
        raise InputFileError(f"{path} has no sheets; export it again.")
    package = _package_info(path, kind)
    visible = [m.name for m in metadata if m.visible == python_calamine.SheetVisibleEnum.Visible]
    tab = pick_tab(path, [m.name for m in metadata], visible, package.active, sheet)
    others = lambda: _tabs_with_data(open_calamine(path, kind), tab)  # noqa: E731
    if package.streamable and xlsx.sheet_part_size(path, tab) >= xlsx.STREAM_FROM_BYTES:
        del workbook  # calamine's copy of the file goes; the tab is read as a stream
        streamed = refuse_empty_tab(path, tab, xlsx.streamed_rows(path, tab), others)
        return tab, TabRows(streamed, lambda: True)
    if package.lazy:
        cal_sheet = _calamine_tab(path, workbook, tab)
        late = lambda: package.formats_of(tab)  # noqa: E731 - read only if a cell needs it
        rendered = RenderedRows(cal_sheet.iter_rows(), _first_col(cal_sheet), CellFormats(),
                                package.fixes, late)
    else:
        # calamine parses the tab without the GIL: the format scan runs alongside it
        with ThreadPoolExecutor(max_workers=1) as pool:
            scan = pool.submit(package.formats_of, tab)
            cal_sheet = _calamine_tab(path, workbook, tab)
            formats = scan.result()
        rendered = RenderedRows(cal_sheet.iter_rows(), _first_col(cal_sheet), formats,
                                package.fixes)
    # reopened only for an empty tab: the workbook (the whole file) is not kept while reading
    grid = refuse_empty_tab(path, tab, iter(rendered), others)
    return tab, TabRows(grid, rendered.errors_possible)


def _ods_encrypted(path: Path) -> bool:
    from bsg_sync import ods

    try:
        return ods.is_encrypted(path)
    except (zipfile.BadZipFile, OSError):
        return False


def _calamine_tab(
    path: Path, workbook: python_calamine.CalamineWorkbook, tab: str
) -> python_calamine.CalamineSheet:
    try:
        return workbook.get_sheet_by_name(tab)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # calamine panics (a BaseException) on some damaged tabs
        raise InputFileError(
            f"{path}: tab {tab!r} cannot be read ({exc}); open it in Excel and save a new copy."
        ) from exc


def _first_col(cal_sheet: python_calamine.CalamineSheet) -> int:
    """calamine's rows start at row 1 but at the first used column."""
    start = cal_sheet.start
    return start[1] if start else 0


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
    streamable: bool = False  # an XLSX/XLSM: a very large tab is read as a stream

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
            info = xlsx.xlsx_info(zf)
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, ValueError) as exc:
        log.warning("number formats of %s not read (%s); numbers shown unformatted", path, exc)
        return _Package()
    lazy = not any(has_format(code) for code in info.codes)
    return _Package(info.active, info.fixes, lambda tab: _safe(path, info.formats, tab), lazy,
                    streamable=path.suffix.lower() in (".xlsx", ".xlsm"))


def _safe(path: Path, reader: Any, tab: str) -> CellFormats:
    try:
        formats: CellFormats = reader(path, tab)
        return formats
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, ValueError, OSError) as exc:
        log.warning("number formats of %s not read (%s); numbers shown unformatted", path, exc)
        return CellFormats()


# --------------------------------------------------------------------------- header row

HEADER_LOOKAHEAD = 50  # rows read to find the header (titles and notes sit above it)
_NUMBERLIKE = re.compile(r"[-+()\d\s.,:/%$€£]+")


def find_header_row(rows: Sequence[Sequence[str]]) -> int | None:
    """Index of the row a person takes for the header, or None when every row is blank.

    The header is the first row of mostly text (not numbers or dates), filled across at least
    half of its width, that spans the table below it: most of the next rows end within its
    columns. A title or a note above the table is narrower than the rows under it (or, like
    "Exported by ... | Page 1", mostly empty), so it is skipped. With no such row: the first
    non-blank row."""
    spans = [_last_filled(row) for row in rows]
    for i, row in enumerate(rows):
        if spans[i] < 0 or not _mostly_text(row):
            continue
        if sum(1 for c in row if c.strip()) * 2 < spans[i] + 1:
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
