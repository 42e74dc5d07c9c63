"""Workbooks read as Excel shows them: per-cell formats, error cells, tabs and the header row.

Every file is made here: openpyxl for XLSX, hand-written XML in a zip for Strict OOXML, odd
cells and ODS, xlwt for XLS.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlwt

from bsg_sync.errors import InputFileError
from bsg_sync.models import CellProblem
from bsg_sync.reader import read_sheet
from bsg_sync.workbook import find_header_row

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
STRICT_MAIN = "http://purl.oclc.org/ooxml/spreadsheetml/main"
STRICT_REL = "http://purl.oclc.org/ooxml/officeDocument/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


def values(sheet: Any) -> list[tuple[str, ...]]:
    return [r.values for r in sheet.rows]


# --------------------------------------------------------------------------- XLSX by openpyxl


def _xlsx(path: Path, cells: dict[str, tuple[object, str | None]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Contacts"
    for ref, (value, fmt) in cells.items():
        ws[ref] = value
        if fmt:
            ws[ref].number_format = fmt
    wb.save(path)
    return path


def test_formats_land_on_their_own_column_when_column_a_is_empty(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "b.xlsx", {
        "B1": ("Price", None), "C1": ("Contact ID", None), "D1": ("Zip", None),
        "B2": (9.5, "0.00"), "C2": (12345, None), "D2": (6083, "00000"),
        "B3": (1.25, "0.00"), "C3": (12346, "General"), "D3": (123, "00000"),
    })  # fmt: skip
    sheet = read_sheet(path)
    assert sheet.headers == ("Price", "Contact ID", "Zip")
    assert values(sheet) == [("9.50", "12345", "06083"), ("1.25", "12346", "00123")]


def test_formats_are_read_per_cell_not_sampled(tmp_path: Path) -> None:
    cells: dict[str, tuple[object, str | None]] = {"A1": ("Zip", None), "B1": ("Price", None)}
    for row in range(2, 402):
        cells[f"A{row}"] = (row, None)
        cells[f"B{row}"] = (row + 0.5, "0.00")
    cells["A401"] = (6083, "00000")  # past any sample of the first rows
    cells["B400"] = (7, "0")  # one cell of another format inside a formatted column
    sheet = read_sheet(_xlsx(tmp_path / "p.xlsx", cells))
    assert sheet.rows[0].values == ("2", "2.50")
    assert sheet.rows[398].values == ("400", "7")
    assert sheet.rows[399].values == ("06083", "401.50")


@pytest.mark.parametrize(
    ("value", "fmt", "shown"),
    [
        (0.9876, "0.00%", "98.76%"),
        (7890, "#,##0", "7,890"),
        (123, '"$"#,##0.00', "$123.00"),
        (1000.5577, "0", "1001"),
        (1.5, "0.000", "1.500"),
        (-42, "0;(0)", "(42)"),
        (0.75, "# ?/?", "3/4"),
        (0.1 + 0.2, None, "0.3"),
        (274.66, None, "274.66"),
        (447700900123, None, "447700900123"),
        (dt.datetime(2014, 2, 14, 8, 27, 48, 765000), "m/d/yy", "2014-02-14"),
        (dt.datetime(2014, 2, 14, 8, 27, 48, 765000), "m/d/yy h:mm:ss", "2014-02-14 08:27:49"),
        (dt.time(23, 44, 51, 600000), "h:mm:ss", "23:44:52"),
        (dt.time(8, 27), "h:mm AM/PM", "8:27 AM"),
        (dt.timedelta(hours=30, minutes=5), "[h]:mm", "30:05"),
        (2958466, "yyyy-mm-dd", "2958466"),
        (1234.5, "[$€-407]#,##0.00", "€1,234.50"),
        (7700900123, "00000 000000", "07700 900123"),
    ],
)
def test_number_formats_as_excel_shows_them(
    tmp_path: Path, value: object, fmt: str | None, shown: str
) -> None:
    path = _xlsx(tmp_path / "f.xlsx", {"A1": ("Value", None), "A2": (value, fmt)})
    assert values(read_sheet(path)) == [(shown,)]


def test_1904_workbook_dates(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904
    ws = wb.active
    ws.append(["When", "Number"])
    ws.append([dt.date(2014, 2, 14), 5])
    ws["A2"].number_format = "yyyy-mm-dd"
    wb.save(tmp_path / "mac.xlsx")
    assert values(read_sheet(tmp_path / "mac.xlsx")) == [("2014-02-14", "5")]


# --------------------------------------------------------------------------- XLSX by hand


def _raw_xlsx(
    path: Path,
    rows: str,
    *,
    styles: str = "",
    shared: str = "",
    strict: bool = False,
    sheets: tuple[tuple[str, str], ...] = (("Sheet1", ""),),
    active: int | None = None,
    more_rows: dict[int, str] | None = None,
) -> Path:
    main, rel = (STRICT_MAIN, STRICT_REL) if strict else (MAIN, REL)
    kinds = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, len(sheets) + 1)
    )
    content_types = (
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
        'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        f'officedocument.spreadsheetml.sheet.main+xml"/>{kinds}</Types>'
    )
    sheet_nodes = "".join(
        f'<sheet name="{name}" sheetId="{i}" {state} r:id="rId{i}"/>'
        for i, (name, state) in enumerate(sheets, start=1)
    )
    view = f'<bookViews><workbookView activeTab="{active}"/></bookViews>' if active else ""
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{rel}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(sheets) + 1)
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", content_types)
        zf.writestr("_rels/.rels", f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" '
                    f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        zf.writestr("xl/workbook.xml", f'<workbook xmlns="{main}" xmlns:r="{rel}">{view}'
                    f"<sheets>{sheet_nodes}</sheets></workbook>")
        if styles:
            rels += f'<Relationship Id="rS" Type="{rel}/styles" Target="styles.xml"/>'
            zf.writestr("xl/styles.xml", f'<styleSheet xmlns="{main}">{styles}</styleSheet>')
        if shared:
            rels += f'<Relationship Id="rT" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>'
            zf.writestr("xl/sharedStrings.xml", f'<sst xmlns="{main}">{shared}</sst>')
        zf.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{PKG}">{rels}</Relationships>')
        for i in range(1, len(sheets) + 1):
            body = rows if i == 1 else (more_rows or {}).get(i, "")
            zf.writestr(f"xl/worksheets/sheet{i}.xml",
                        f'<worksheet xmlns="{main}"><sheetData>{body}</sheetData></worksheet>')
    return path


TWO_DECIMALS = (
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="0.00"/></numFmts>'
    '<cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="14"/></cellXfs>'
)
HEADER = '<row r="1"><c r="A1" t="inlineStr"><is><t>Value</t></is></c></row>'


def test_strict_ooxml_formats_are_read(tmp_path: Path) -> None:
    rows = HEADER + '<row r="2"><c r="A2" s="1"><v>1.5</v></c></row>'
    for strict in (False, True):
        path = _raw_xlsx(tmp_path / f"s{strict}.xlsx", rows, styles=TWO_DECIMALS, strict=strict)
        assert values(read_sheet(path)) == [("1.50",)]


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ('<c r="A2" t="d"><v>2014-02-14T08:27:48.765Z</v></c>', "2014-02-14 08:27:49"),
        ('<c r="A2" t="d" s="2"><v>2014-02-14T08:27:48.765Z</v></c>', "2014-02-14"),
        ('<c r="A2" t="d"><v>2014-02-14</v></c>', "2014-02-14"),
        ('<c r="A2" s=""><v>5</v></c>', "5"),
        ('<c r="A2"><v>0.30000000000000004</v></c>', "0.3"),  # =0.1+0.2 as Excel stores it
        ('<c r="A2"><v>274.65999999999997</v></c>', "274.66"),
        ('<c r="A2"><v>447700900123</v></c>', "447700900123"),
        ('<c r="A2" s="1" t="n"><v>2.5</v></c>', "2.50"),
        ('<c r="A2" s="99"><v>2.5</v></c>', "2.5"),
        ('<c r="A2" t="s"><v>0</v></c>', "Example richtext"),
        ('<c r="A2" t="inlineStr"><is><t>  padded  </t></is></c>', "padded"),
    ],
)
def test_odd_cells(tmp_path: Path, cell: str, shown: str) -> None:
    shared = "<si><r><rPr><b/></rPr><t>Example</t></r><r><t> richtext</t></r></si>"
    path = _raw_xlsx(tmp_path / "odd.xlsx", HEADER + f'<row r="2">{cell}</row>',
                     styles=TWO_DECIMALS, shared=shared)
    assert values(read_sheet(path)) == [(shown,)]


def test_cells_without_references_are_placed_by_position(tmp_path: Path) -> None:
    rows = ('<row><c t="inlineStr"><is><t>A</t></is></c><c t="inlineStr"><is><t>B</t></is></c>'
            '</row><row><c><v>1</v></c><c s="1"><v>2</v></c></row>')
    path = _raw_xlsx(tmp_path / "noref.xlsx", rows, styles=TWO_DECIMALS)
    assert values(read_sheet(path)) == [("1", "2.00")]


ERRORS = ("#N/A", "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!")


def test_error_cells_show_as_excel_and_are_problems(tmp_path: Path) -> None:
    rows = ('<row r="1"><c r="B1" t="inlineStr"><is><t>Phone</t></is></c>'
            '<c r="C1" t="inlineStr"><is><t>City</t></is></c></row>')
    for i, error in enumerate(ERRORS, start=2):
        rows += (f'<row r="{i}"><c r="B{i}"><v>44770090012{i}</v></c>'
                 f'<c r="C{i}" t="e"><f>1/0</f><v>{error}</v></c></row>')
    sheet = read_sheet(_raw_xlsx(tmp_path / "err.xlsx", rows))
    assert [r.values[1] for r in sheet.rows] == list(ERRORS)
    assert [r.problems for r in sheet.rows] == [(CellProblem(1, "cell-error", e),) for e in ERRORS]


def test_rows_without_errors_carry_no_problems(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["Phone"])
    wb.active.append(["#N/A"])
    wb.active["A2"].data_type = "s"  # openpyxl would store "#N/A" as an error cell
    wb.save(tmp_path / "ok.xlsx")
    sheet = read_sheet(tmp_path / "ok.xlsx")  # text that reads like an error is text
    assert (sheet.rows[0].values, sheet.rows[0].problems) == (("#N/A",), ())


# --------------------------------------------------------------------------- tabs


def _tab_rows(text: str) -> str:
    return f'<row r="1"><c r="A1" t="inlineStr"><is><t>{text}</t></is></c></row>' \
           f'<row r="2"><c r="A2"><v>1</v></c></row>'


def test_hidden_tabs_are_skipped_and_the_active_tab_wins(tmp_path: Path) -> None:
    sheets = (("Secret", 'state="hidden"'), ("Gone", 'state="veryHidden"'), ("Shown", ""),
              ("Other", ""))
    more = {2: _tab_rows("gone"), 3: _tab_rows("shown"), 4: _tab_rows("other")}
    path = _raw_xlsx(tmp_path / "tabs.xlsx", _tab_rows("secret"), sheets=sheets, more_rows=more)
    assert read_sheet(path).sheet_name == "Shown"
    active = _raw_xlsx(tmp_path / "active.xlsx", _tab_rows("secret"), sheets=sheets,
                       more_rows=more, active=3)
    assert read_sheet(active).sheet_name == "Other"
    assert read_sheet(active, sheet="secret").headers == ("secret",)


def test_an_empty_tab_names_the_tab_with_data(tmp_path: Path) -> None:
    path = _raw_xlsx(tmp_path / "empty.xlsx", "", sheets=(("Intro", ""), ("Data", "")),
                     more_rows={2: _tab_rows("Mobile")})
    with pytest.raises(InputFileError, match=r"tab 'Intro' is empty but 'Data' has data; "
                       r"pass --sheet 'Data' to read it\."):
        read_sheet(path)
    assert read_sheet(path, sheet="Data").headers == ("Mobile",)


def test_an_empty_workbook_still_says_no_header(tmp_path: Path) -> None:
    path = _raw_xlsx(tmp_path / "none.xlsx", "")
    with pytest.raises(InputFileError, match="no header row"):
        read_sheet(path)


# --------------------------------------------------------------------------- XLS


def _xls(path: Path, hidden_first: bool = False) -> Path:
    wb = xlwt.Workbook()
    if hidden_first:
        secret = wb.add_sheet("Secret")
        secret.write(0, 0, "secret")
        secret.visibility = 1
    ws = wb.add_sheet("Contacts")
    if hidden_first:
        ws.set_selected(True)
    zip_style = xlwt.easyxf(num_format_str="00000")
    money = xlwt.easyxf(num_format_str="#,##0.00")
    date = xlwt.easyxf(num_format_str="m/d/yy")
    for col, header in enumerate(["Zip", "Amount", "Phone", "Check", "When"]):
        ws.write(0, col + 1, header)
    ws.write(1, 1, 6083, zip_style)
    ws.write(1, 2, 1234.5, money)
    ws.write(1, 3, 447700900123)
    ws.row(1).set_cell_error(4, 0x2A)  # #N/A
    ws.write(1, 5, dt.datetime(2014, 2, 14, 8, 27, 48), date)
    ws.write(2, 1, 123, zip_style)
    ws.write(2, 2, 0.1 + 0.2)
    ws.write(2, 3, "07700 900456")
    ws.row(2).set_cell_error(4, "#DIV/0!")
    wb.save(str(path))
    return path


def test_xls_formats_and_error_cells(tmp_path: Path) -> None:
    sheet = read_sheet(_xls(tmp_path / "c.xls"))
    assert sheet.headers == ("Zip", "Amount", "Phone", "Check", "When")
    assert values(sheet) == [
        ("06083", "1,234.50", "447700900123", "#N/A", "2014-02-14"),
        ("00123", "0.3", "07700 900456", "#DIV/0!", ""),
    ]
    assert sheet.rows[0].problems == (CellProblem(3, "cell-error", "#N/A"),)


def test_xls_hidden_tab_is_skipped(tmp_path: Path) -> None:
    path = _xls(tmp_path / "h.xls", hidden_first=True)
    assert read_sheet(path).sheet_name == "Contacts"
    assert read_sheet(path, sheet="Secret").headers == ("secret",)


# --------------------------------------------------------------------------- ODS

ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0" '
    'xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0" '
    'xmlns:config="urn:oasis:names:tc:opendocument:xmlns:config:1.0"'
)
ODS_STYLES = """
<number:number-style style:name="N1"><number:number number:decimal-places="0"
  number:min-integer-digits="5"/></number:number-style>
<number:percentage-style style:name="N2"><number:number number:decimal-places="2"
  number:min-decimal-places="2" number:min-integer-digits="1"/><number:text>%</number:text>
</number:percentage-style>
<number:number-style style:name="N3P0" style:volatile="true"><number:number
  number:decimal-places="2" number:min-decimal-places="2" number:min-integer-digits="1"
  number:grouping="true"/></number:number-style>
<number:number-style style:name="N3"><number:text>(</number:text><number:number
  number:decimal-places="2" number:min-decimal-places="2" number:min-integer-digits="1"
  number:grouping="true"/><number:text>)</number:text>
  <style:map style:condition="value()&gt;=0" style:apply-style-name="N3P0"/></number:number-style>
<style:style style:name="ce1" style:family="table-cell" style:data-style-name="N1"/>
<style:style style:name="ce2" style:family="table-cell" style:data-style-name="N2"/>
<style:style style:name="ce3" style:family="table-cell" style:data-style-name="N3"/>
<style:style style:name="ta2" style:family="table"><style:table-properties table:display="false"/>
</style:style>
"""


def _cell(value: str, style: str = "", kind: str = "float") -> str:
    attr = f' table:style-name="{style}"' if style else ""
    return (f'<table:table-cell{attr} office:value-type="{kind}" office:value="{value}">'
            f"<text:p>{value}</text:p></table:table-cell>")


def _text(value: str) -> str:
    return f'<table:table-cell office:value-type="string"><text:p>{value}</text:p></table:table-cell>'


ODS_ERROR = ('<table:table-cell table:formula="of:=NA()" office:value-type="float" '
             'office:value="0" calcext:value-type="error"><text:p>#N/A</text:p></table:table-cell>')


def _ods(path: Path, active: str | None = None) -> Path:
    empty = "<table:table-cell/>"
    contacts = (
        '<table:table table:name="Contacts"><table:table-column table:number-columns-repeated="5"/>'
        f"<table:table-row>{empty}{_text('Zip')}{_text('Share')}{_text('Amount')}{_text('Check')}"
        "</table:table-row>"
        f'<table:table-row>{empty}{_cell("6083", "ce1")}{_cell("0.9876", "ce2", "percentage")}'
        f'{_cell("-1234.5", "ce3")}{ODS_ERROR}</table:table-row>'
        '<table:table-row table:number-rows-repeated="2">'
        f'{empty}{_cell("42", "ce1")}{_cell("0.5", "ce2", "percentage")}{_cell("7", "ce3")}'
        f"{_text('ok')}</table:table-row></table:table>"
    )
    secret = ('<table:table table:name="Secret" table:style-name="ta2"><table:table-row>'
              f"{_text('secret')}</table:table-row></table:table>")
    content = (f'<office:document-content {ODS_NS}><office:automatic-styles>{ODS_STYLES}'
               f"</office:automatic-styles><office:body><office:spreadsheet>{secret}{contacts}"
               "</office:spreadsheet></office:body></office:document-content>")
    settings = (f'<office:document-settings {ODS_NS}><office:settings><config:config-item-set>'
                f'<config:config-item config:name="ActiveTable" config:type="string">{active}'
                "</config:config-item></config:config-item-set></office:settings>"
                "</office:document-settings>") if active else ""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("META-INF/manifest.xml",
                    '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
                    'manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type'
                    '="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry '
                    'manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                    "</manifest:manifest>")
        zf.writestr("content.xml", content)
        if settings:
            zf.writestr("settings.xml", settings)
    return path


def test_ods_number_styles_and_error_cells(tmp_path: Path) -> None:
    sheet = read_sheet(_ods(tmp_path / "c.ods"))
    assert sheet.sheet_name == "Contacts"  # the hidden first table is skipped
    assert sheet.headers == ("Zip", "Share", "Amount", "Check")
    assert values(sheet) == [
        ("06083", "98.76%", "(1,234.50)", "#N/A"),
        ("00042", "50.00%", "7.00", "ok"),
        ("00042", "50.00%", "7.00", "ok"),
    ]
    assert sheet.rows[0].problems == (CellProblem(3, "cell-error", "#N/A"),)


def test_ods_active_table(tmp_path: Path) -> None:
    assert read_sheet(_ods(tmp_path / "a.ods", active="Contacts")).sheet_name == "Contacts"
    assert read_sheet(_ods(tmp_path / "b.ods"), sheet="secret").headers == ("secret",)


# --------------------------------------------------------------------------- header row


@pytest.mark.parametrize(
    ("rows", "index"),
    [
        ([["Mobile", "Name"], ["447700900123", "Ann"]], 0),
        ([["Contacts export"], [], ["Mobile", "Name", "City"], ["1", "Ann", "Leeds"]], 2),
        ([["Report of May", "", ""], ["Exported 2024-05-01"], ["Mobile", "Name", "City"],
          ["1", "Ann", "Leeds"]], 2),
        ([["Title"], ["Created by: CRM", "2024-05-01", "", "", ""],
          ["Mobile", "First", "Last", "City", "Zip"], ["447700900123", "A", "B", "C", "01234"]], 2),
        ([["Mobile"], ["447700900123"]], 0),
        ([["2024", "2025"], ["Mobile", "Name"], ["1", "Ann"]], 1),
        ([["Mobile", "", "Name"], ["447700900123", "x", "Ann"]], 0),
        ([["1", "2"], ["3", "4"]], 0),
        ([["Generated by CRM", "", "", "", "Page 1"], ["Mobile", "First", "Last", "City", "Zip"],
          ["447700900123", "A", "B", "C", "01234"]], 1),
        ([["", "", "Contacts", "", ""], ["Mobile", "First", "Last", "City", "Zip"],
          ["447700900123", "A", "B", "C", "01234"]], 1),
        ([[], [""]], None),
    ],
)
def test_find_header_row(rows: list[list[str]], index: int | None) -> None:
    assert find_header_row(rows) == index


def test_header_below_a_title_in_csv_and_xlsx(tmp_path: Path) -> None:
    csv_path = tmp_path / "crm.csv"
    csv_path.write_text("Contacts export,,\nGenerated 2024-05-01,,\n,,\nMobile,Name,City\n"
                        "447700900123,Ann,Leeds\n")
    xlsx_path = _xlsx(tmp_path / "crm.xlsx", {
        "A1": ("Contacts export", None), "A2": ("Generated 2024-05-01", None),
        "A4": ("Mobile", None), "B4": ("Name", None), "C4": ("City", None),
        "A5": (447700900123, None), "B5": ("Ann", None), "C5": ("Leeds", None),
    })  # fmt: skip
    for path in (csv_path, xlsx_path):
        sheet = read_sheet(path)
        assert (sheet.header_row, sheet.headers) == (4, ("Mobile", "Name", "City"))
        assert [(r.row, r.values) for r in sheet.rows] == [(5, ("447700900123", "Ann", "Leeds"))]
    assert read_sheet(csv_path, header_row=1).headers == ("Contacts export", "Column 2",
                                                          "Column 3")


def test_a_cell_calamine_cannot_read_in_the_first_row_is_one_sentence(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "panic.xlsx", {"A1": (-(10**16), "yyyy-mm-dd"), "A2": (1, None)})
    with pytest.raises(InputFileError, match="has a cell that cannot be read"):
        read_sheet(path)


def test_a_mapped_error_cell_makes_the_row_invalid_never_sent(tmp_path: Path) -> None:
    from bsg_sync.mapping import map_rows, parse_mapping, resolve_mapping
    from bsg_sync.models import Account, Field

    rows = ('<row r="1"><c r="A1" t="inlineStr"><is><t>Phone</t></is></c>'
            '<c r="B1" t="inlineStr"><is><t>City</t></is></c></row>'
            '<row r="2"><c r="A2"><v>447700900123</v></c><c r="B2" t="e"><v>#N/A</v></c></row>'
            '<row r="3"><c r="A3"><v>447700900124</v></c>'
            '<c r="B3" t="inlineStr"><is><t>York</t></is></c></row>')
    sheet = read_sheet(_raw_xlsx(tmp_path / "mapped.xlsx", rows))
    account = Account(fields=(Field(1, "City"),))
    raw = parse_mapping('[columns]\n"Phone" = "phone"\n"City" = "field:City"\n')
    out = map_rows(sheet, resolve_mapping(raw, sheet.headers, account), account)
    assert [(r.row, r.status.value, r.error_code) for r in out.results] == [
        (2, "invalid", "cell-error")]
    assert "#N/A" in out.results[0].error
    assert [d.row for d in out.desired] == [3]


def test_a_password_protected_ods_says_so(tmp_path: Path) -> None:
    path = tmp_path / "secret.ods"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("META-INF/manifest.xml",
                    '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
                    'manifest:1.0"><manifest:file-entry manifest:full-path="content.xml" '
                    'manifest:media-type="text/xml"><manifest:encryption-data '
                    'manifest:checksum-type="SHA1/1K" manifest:checksum="x"/>'
                    "</manifest:file-entry></manifest:manifest>")
        zf.writestr("content.xml", bytes(range(256)) * 4)
    with pytest.raises(InputFileError, match=r"is password-protected; open it in LibreOffice, "
                       r"remove the password"):
        read_sheet(path)
