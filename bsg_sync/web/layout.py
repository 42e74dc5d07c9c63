"""Where an upload's table is: its tabs with row counts and the first rows as a grid.

Every read goes through the caller's `read` (the page's isolated reader), so a tab that
would take a parser down is one sentence like any other upload problem."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bsg_sync.errors import BsgSyncError
from bsg_sync.mapping import guess_targets
from bsg_sync.models import Account, Sheet
from bsg_sync.reader import list_sheet_names

Reader = Callable[..., Sheet]  # read(sheet=..., header_row=...) -> Sheet
Grid = tuple[tuple[int, tuple[str, ...]], ...]  # (row number, cells) from the top

MAX_TABS = 12  # tabs read for a row count; more are listed by name only
GRID_ROWS = 8  # rows shown from the header row down (and every row above it)
GRID_ABOVE = 20  # rows above the header shown at most
GRID_COLS = 10


@dataclass(frozen=True)
class TabInfo:
    """One tab of a workbook: its data rows (None: not read) and whether it looks like contacts."""

    name: str
    rows: int | None
    contacts: bool
    problem: str = ""


@dataclass(frozen=True)
class Layout:
    """The tab the page reads (None: a CSV) and the row its header is on, with the grid shown."""

    tabs: tuple[TabInfo, ...]
    tab: str | None
    header_row: int | None
    grid: Grid


def looks_like_contacts(headers: Sequence[str]) -> bool:
    """A column that `bsg-sync init` would map to the phone number or the contact id."""
    return any(t in ("id", "phone") for t in guess_targets(headers, Account()).values())


def first_layout(read: Reader, path: Path, workbook: bool) -> tuple[Sheet, Layout]:
    """The sheet to start with: the tab Excel opens on, unless it does not look like contacts
    and another tab does; its header row as the reader detects it."""
    try:
        first: Sheet | None = read()
    except BsgSyncError as exc:
        if not (workbook and _empty_tab(exc)):
            raise
        first = None  # the tab Excel opens on is empty; another tab has data
    if not workbook and first is not None:
        return first, Layout((), None, first.header_row, grid_of(read, first))
    opened = None if first is None else first.sheet_name
    # the child opened this very file already, within the limits: listing its tabs is safe
    names = list_sheet_names(path)
    tabs = tuple(_tab_info(read, name, first if name == opened else None, i)
                 for i, name in enumerate(names))
    chosen = _choose(tabs, opened)
    sheet = first if first is not None and chosen == opened else read(sheet=chosen)
    return sheet, Layout(tabs, sheet.sheet_name, sheet.header_row, grid_of(read, sheet))


def relayout(read: Reader, layout: Layout, tab: str | None, header_row: int | None,
             ) -> tuple[Sheet, Layout]:
    """The sheet read again with another tab (header detected again) or another header row."""
    if tab is not None and tab != layout.tab:
        sheet = read(sheet=tab)
    else:
        sheet = read(sheet=layout.tab, header_row=header_row)
    grid = layout.grid if sheet.sheet_name == layout.tab else grid_of(read, sheet)
    return sheet, Layout(layout.tabs, sheet.sheet_name if layout.tabs else None,
                         sheet.header_row, grid)


def _tab_info(read: Reader, name: str, known: Sheet | None, index: int) -> TabInfo:
    if known is not None:
        return TabInfo(name, len(known.rows), looks_like_contacts(known.headers))
    if index >= MAX_TABS:
        return TabInfo(name, None, False)
    try:
        sheet = read(sheet=name)
    except BsgSyncError as exc:
        if _empty_tab(exc):
            return TabInfo(name, 0, False, "empty")
        return TabInfo(name, None, False, str(exc))
    return TabInfo(name, len(sheet.rows), looks_like_contacts(sheet.headers))


def _empty_tab(exc: BsgSyncError) -> bool:
    """The reader's refusal of an empty tab (its sentence is the only sign of it)."""
    return " is empty but " in str(exc) or " has no header row " in str(exc)


def _choose(tabs: Sequence[TabInfo], opened: str | None) -> str | None:
    current = next((t for t in tabs if t.name == opened), None)
    if current is not None and current.contacts:
        return opened
    return next((t.name for t in tabs if t.contacts and t.rows), opened)


def grid_of(read: Reader, sheet: Sheet) -> Grid:
    """The first rows as the person sees them in Excel: every row above the header (read
    again from row 1), the header and a few rows below it."""
    top = sheet.header_row or 1
    below: list[tuple[int, tuple[str, ...]]] = [(top, sheet.headers)]
    below += [(r.row, r.values) for r in sheet.rows[: GRID_ROWS - 1]]
    above: list[tuple[int, tuple[str, ...]]] = []
    if top > 1:
        above = _rows_above(read, sheet, top)
    return tuple((n, _cells(cells, n == top)) for n, cells in [*above, *below])


def _rows_above(read: Reader, sheet: Sheet, top: int) -> list[tuple[int, tuple[str, ...]]]:
    kwargs: dict[str, Any] = {"header_row": 1}
    if sheet.sheet_name:
        kwargs["sheet"] = sheet.sheet_name
    try:
        whole = read(**kwargs)
    except BsgSyncError:  # row 1 itself is empty: start the grid at the header
        return []
    rows = [(whole.header_row or 1, _unnamed(whole.headers))]
    rows += [(r.row, r.values) for r in whole.rows if r.row < top]
    return rows[-GRID_ABOVE:]


def _unnamed(headers: Sequence[str]) -> tuple[str, ...]:
    """Row 1's cells as they are: the reader names an empty header cell "Column N"."""
    return tuple("" if h == f"Column {i}" else h for i, h in enumerate(headers, start=1))


def _cells(cells: Sequence[str], is_header: bool) -> tuple[str, ...]:
    out = tuple(cells[:GRID_COLS])
    return _unnamed(out) if is_header else out
