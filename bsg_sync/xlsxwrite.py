"""A minimal streaming SpreadsheetML (XLSX) writer: text cells, bold headers, fills, filters.

openpyxl's write-only mode needs ~11 s for 100k x 12 cells here (over the report's 10 s
target); plain strings into a zip stream need ~2 s. Every string is an inline *text* cell,
so no value can ever run as a formula (no apostrophe needed).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any

Cell = tuple[Any, int]  # (value, style: PLAIN, BOLD, TEXT or fill_style(i))
PLAIN, BOLD, TEXT = 0, 1, 2
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
MAX_ROWS = 1_048_576  # Excel's rows a sheet; a sheet with more does not open


def fill_style(index: int) -> int:
    """The style of a cell filled with the workbook's `index`-th fill colour."""
    return 3 + index


@dataclass(frozen=True)
class XlsxSheet:
    """One worksheet: its name, rows of (value, style) cells, column widths, filter, pane."""

    name: str
    rows: Iterable[list[Cell]]
    widths: Sequence[float] = ()
    autofilter: str | None = None
    freeze_header: bool = True


class TooManyRows(ValueError):
    """A sheet was given more rows than Excel opens (MAX_ROWS)."""


def split_sheets(name: str, heading: list[Cell], body: Iterable[list[Cell]], count: int, *,
                 widths: Sequence[float] = (), filtered: bool = True) -> list[XlsxSheet]:
    """`count` body rows under one heading as as many sheets as Excel's row limit needs:
    "Report", then "Report (2)", ... each with the heading on its first row and at most
    MAX_ROWS - 1 body rows. The sheets share one pass over `body` (it is not copied), so
    they must be written in order, as `write_workbook` does."""
    per = MAX_ROWS - 1
    rows = iter(body)
    last = column_letter(max(len(heading), 1) - 1)
    sheets = []
    for k in range(max(1, -(-count // per))):
        n = min(per, count - k * per)
        sheets.append(XlsxSheet(
            name if k == 0 else f"{name} ({k + 1})", _with_heading(heading, rows, per),
            widths=widths, autofilter=f"A1:{last}{n + 1}" if filtered else None))
    return sheets


def _with_heading(heading: list[Cell], rows: Iterator[list[Cell]],
                  most: int) -> Iterator[list[Cell]]:
    yield heading
    yield from islice(rows, most)


def write_workbook(
    handle: IO[bytes], sheets: Sequence[XlsxSheet], fills: Sequence[str] = ()
) -> None:
    """Write the sheets as one workbook; `fills` are RGB colours for `fill_style(i)` cells."""
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED, compresslevel=5) as zf:
        zf.writestr("[Content_Types].xml", _content_types(len(sheets)))
        zf.writestr("_rels/.rels", _root_rels())
        zf.writestr("xl/workbook.xml", _workbook_xml(sheets))
        zf.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(sheets)))
        zf.writestr("xl/styles.xml", _styles_xml(fills))
        for i, sheet in enumerate(sheets, 1):
            with zf.open(f"xl/worksheets/sheet{i}.xml", "w", force_zip64=True) as out:
                _write_sheet_xml(out, sheet)


def _write_sheet_xml(out: IO[bytes], sheet: XlsxSheet) -> None:
    out.write(_sheet_head(sheet).encode("utf-8"))
    chunk: list[str] = []
    for number, cells in enumerate(sheet.rows, 1):
        if number > MAX_ROWS:
            raise TooManyRows(f"sheet {sheet.name!r} has more than Excel's {MAX_ROWS:,} rows")
        chunk.append(_row_xml(number, cells))
        if len(chunk) >= 1000:
            out.write("".join(chunk).encode("utf-8"))
            chunk.clear()
    out.write("".join(chunk).encode("utf-8"))
    tail = "</sheetData>"
    if sheet.autofilter:
        tail += f'<autoFilter ref="{sheet.autofilter}"/>'
    out.write((tail + "</worksheet>").encode("utf-8"))


def _sheet_head(sheet: XlsxSheet) -> str:
    pane = (
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
        if sheet.freeze_header
        else ""
    )
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{w:g}" customWidth="1"/>'
        for i, w in enumerate(sheet.widths, 1)
    )
    return (
        f'{_XML_HEAD}<worksheet xmlns="{_NS}" xmlns:r="{_REL_NS}">'
        f'<sheetViews><sheetView workbookViewId="0">{pane}</sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/>'
        + (f"<cols>{cols}</cols>" if cols else "")
        + "<sheetData>"
    )


def _row_xml(number: int, cells: list[Cell]) -> str:
    parts = [f'<row r="{number}">']
    for col, (value, xf) in enumerate(cells):
        ref = f"{column_letter(col)}{number}"
        style = f' s="{xf}"' if xf else ""
        if value is None or value == "":
            if xf:
                parts.append(f'<c r="{ref}"{style}/>')
        elif isinstance(value, bool) or not isinstance(value, int | float):
            text = _xml_text(str(value))
            parts.append(
                f'<c r="{ref}"{style} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
            )
        else:
            parts.append(f'<c r="{ref}"{style}><v>{value!r}</v></c>')
    parts.append("</row>")
    return "".join(parts)


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


EXCEL_CELL_LIMIT = 32_767  # characters; Excel calls a workbook with a longer cell damaged


def _xml_text(text: str) -> str:
    text = _XML_ILLEGAL.sub("", text)[:EXCEL_CELL_LIMIT]
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", "&#13;")


def _content_types(n_sheets: int) -> str:
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{ct}.worksheet+xml"/>'
        for i in range(1, n_sheets + 1)
    )
    return (
        f"{_XML_HEAD}<Types "
        'xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{ct}.styles+xml"/>'
        f"{sheets}</Types>"
    )


def _root_rels() -> str:
    return (
        f'{_XML_HEAD}<Relationships xmlns="{_PKG_REL_NS}">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )


def _workbook_xml(sheets: Sequence[XlsxSheet]) -> str:
    entries = "".join(
        f'<sheet name="{_xml_attr(s.name)}" sheetId="{i}" r:id="rId{i}"/>'
        for i, s in enumerate(sheets, 1)
    )
    names = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"'{_xml_text(s.name)}'!{_absolute(s.autofilter)}</definedName>"
        for i, s in enumerate(sheets)
        if s.autofilter
    )
    return (
        f'{_XML_HEAD}<workbook xmlns="{_NS}" xmlns:r="{_REL_NS}"><sheets>{entries}</sheets>'
        + (f"<definedNames>{names}</definedNames>" if names else "")
        + "</workbook>"
    )


def _absolute(ref: str) -> str:
    return ":".join(re.sub(r"([A-Z]+)(\d+)", r"$\1$\2", part) for part in ref.split(":"))


def _xml_attr(text: str) -> str:
    return _xml_text(text).replace('"', "&quot;")


def _workbook_rels(n_sheets: int) -> str:
    rt = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{rt}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, n_sheets + 1)
    )
    styles = f'<Relationship Id="rId{n_sheets + 1}" Type="{rt}/styles" Target="styles.xml"/>'
    return f'{_XML_HEAD}<Relationships xmlns="{_PKG_REL_NS}">{rels}{styles}</Relationships>'


def _styles_xml(colours: Sequence[str]) -> str:
    fills = "".join(
        f'<fill><patternFill patternType="solid"><fgColor rgb="FF{colour}"/>'
        '<bgColor indexed="64"/></patternFill></fill>'
        for colour in colours
    )
    status_xfs = "".join(
        f'<xf numFmtId="0" fontId="0" fillId="{2 + i}" borderId="0" xfId="0" applyFill="1"/>'
        for i in range(len(colours))
    )
    return (
        f'{_XML_HEAD}<styleSheet xmlns="{_NS}">'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        f'<fills count="{2 + len(colours)}"><fill><patternFill patternType="none"/></fill>'
        f'<fill><patternFill patternType="gray125"/></fill>{fills}</fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        "</cellStyleXfs>"
        f'<cellXfs count="{3 + len(colours)}">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
        '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        f"{status_xfs}</cellXfs>"
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    )
