"""Excel 97-2003 (.xls) tabs through xlrd: values with their number formats, error cells, active tab."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bsg_sync.errors import InputFileError
from bsg_sync.numfmt import ErrorText, is_date_format, render_cell, render_number

log = logging.getLogger(__name__)

_VISIBLE = 0


class _LogFile:
    """xlrd writes its warnings to a file (stdout by default); a library logs instead."""

    def write(self, text: str) -> int:
        if text.strip():
            log.debug("xlrd: %s", text.strip())
        return len(text)

    def flush(self) -> None:
        return None


def open_xls(path: Path, sheet: str | None) -> tuple[str, Any] | None:
    """The chosen tab and its rows, or None when xlrd cannot parse the file (calamine may)."""
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), formatting_info=True, logfile=_LogFile())
    except xlrd.XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise InputFileError(
                f"{path} is password-protected; save an unprotected copy and use that."
            ) from exc
        log.info("xlrd cannot read %s (%s); reading it without number formats", path, exc)
        return None
    except Exception as exc:  # damaged files raise anything from xlrd; calamine gets a try
        log.info("xlrd cannot read %s (%s); reading it without number formats", path, exc)
        return None
    from bsg_sync.workbook import TabRows, pick_tab, refuse_empty_tab

    sheets = book.sheets()
    if not sheets:
        raise InputFileError(f"{path} has no sheets; export it again.")
    names = [s.name for s in sheets]
    visible = [s.name for s in sheets if s.visibility == _VISIBLE]
    active = next((s.name for s in sheets if s.sheet_visible and s.visibility == _VISIBLE), None)
    tab = pick_tab(path, names, visible, active, sheet)
    chosen = sheets[names.index(tab)]
    rows = _rows(book, chosen)
    errors = any(type(c) is ErrorText for _, cells in rows for c in cells)
    grid = refuse_empty_tab(path, tab, iter(rows), lambda: _with_data(book, sheets, chosen))
    return tab, TabRows(grid, lambda: errors)


def _with_data(book: Any, sheets: list[Any], chosen: Any) -> list[str]:
    return [s.name for s in sheets if s is not chosen and any(any(r) for _, r in _rows(book, s))]


def _rows(book: Any, sheet: Any) -> list[tuple[int, list[str]]]:
    codes: dict[int, str] = {}
    date1904 = book.datemode == 1
    rows = [
        [_cell_text(book, cell, codes, date1904) for cell in sheet.row(r)]
        for r in range(sheet.nrows)
    ]
    # calamine (and so the XLSX path) starts a tab at its first used column: so does this one
    lead = min((next((i for i, c in enumerate(r) if c), len(r)) for r in rows if any(r)), default=0)
    return [(n, r[lead:]) for n, r in enumerate(rows, start=1)]


def _cell_text(book: Any, cell: Any, codes: dict[int, str], date1904: bool) -> str:
    import xlrd

    ctype = cell.ctype
    if ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return ""
    if ctype == xlrd.XL_CELL_TEXT:
        return str(cell.value).strip()
    if ctype == xlrd.XL_CELL_BOOLEAN:
        return "TRUE" if cell.value else "FALSE"
    if ctype == xlrd.XL_CELL_ERROR:
        return ErrorText(xlrd.error_text_from_code.get(cell.value, "#N/A"))
    code = _code(book, cell.xf_index, codes)
    if ctype == xlrd.XL_CELL_DATE:
        shown = code if is_date_format(code) else "yyyy-mm-dd"
        return render_number(float(cell.value), shown, date1904=date1904).strip()
    return render_cell(float(cell.value), code, date1904).strip()


def _code(book: Any, xf_index: int | None, codes: dict[int, str]) -> str:
    if xf_index is None:
        return "General"
    if xf_index not in codes:
        try:
            key = book.xf_list[xf_index].format_key
            codes[xf_index] = book.format_map[key].format_str or "General"
        except (IndexError, KeyError, AttributeError):
            codes[xf_index] = "General"
    return codes[xf_index]
