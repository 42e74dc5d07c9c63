"""Regenerate the reader's small test files: `python tests/data/reader_make.py`.

The .xls file needs xlwt (not a project dependency); it is skipped when xlwt is missing,
and the committed copy is used.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl

HERE = Path(__file__).parent
ROWS = [
    ["Name", "Mobile", "City"],
    ["Zoë Ærø", "+44 7700 900123", "Köln"],
    ["Bob", "07700 900456", "Leeds"],
]


def write_csvs() -> None:
    text = "\n".join(",".join(r) for r in ROWS) + "\n"
    (HERE / "reader_utf8.csv").write_text(text, encoding="utf-8")
    (HERE / "reader_utf8_bom.csv").write_text(text, encoding="utf-8-sig")
    (HERE / "reader_utf16.csv").write_text(text.replace(",", "\t"), encoding="utf-16")
    (HERE / "reader_cp1252.csv").write_bytes(text.replace(",", ";").encode("cp1252"))
    for name, delim in (("semicolon", ";"), ("tab", "\t"), ("pipe", "|")):
        body = "\n".join(delim.join(r) for r in ROWS) + "\n"
        (HERE / f"reader_{name}.txt").write_text(body, encoding="utf-8")
    (HERE / "reader_quoted_newline.csv").write_text(
        'Name,Note,Mobile\r\n"Ann","line one\r\nline two",447700900111\r\n'
        '\r\n"Bob","x",447700900222\r\n"Cy, Jr","said ""hi""",447700900333\r\n',
        encoding="utf-8",
    )
    (HERE / "reader_single_column.csv").write_text("Mobile\n447700900123\n447700900456\n")
    (HERE / "reader_messy.csv").write_text(
        "\n\n Mobile , ,Name,,\n 447700900123 ,x, Ann ,,\n,,,,\n447700900456,,Bob,,extra\n"
    )


def write_xlsx() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Contacts"
    ws.append([])
    ws.append([])
    ws.append(["Zip", "Phone text", "Phone number", "Born", "Seen", "Flag", "Ratio", "Err", "Code"])
    ws.append(["01234", "07700900123", 447700900123, dt.date(1990, 5, 17),
               dt.datetime(2024, 1, 2, 3, 4, 5), True, 0.1, "#N/A", 42])
    ws.append([])
    ws.append([123, " 4.47712E+11 ", 4.47712e11, dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 1),
               False, 1.5, 7, 7])
    for row in (4, 6):
        ws.cell(row, 1).number_format = "00000"
        ws.cell(row, 4).number_format = "yyyy-mm-dd"
        ws.cell(row, 5).number_format = "yyyy-mm-dd hh:mm:ss"
        ws.cell(row, 9).number_format = "000000"
    ws.cell(4, 8).data_type = "e"
    other = wb.create_sheet("Other")
    other.append(["Mobile"])
    other.append([447700900999])
    wb.save(HERE / "reader_formats.xlsx")


def write_ods() -> None:
    """A minimal ODS written by hand (no odfpy needed)."""
    cells = (
        '<table:table-row><table:table-cell office:value-type="string"><text:p>Mobile</text:p>'
        '</table:table-cell><table:table-cell office:value-type="string"><text:p>Name</text:p>'
        "</table:table-cell></table:table-row>"
        '<table:table-row><table:table-cell office:value-type="float" office:value="447700900123">'
        "<text:p>447700900123</text:p></table:table-cell>"
        '<table:table-cell office:value-type="string"><text:p>Ann</text:p></table:table-cell>'
        "</table:table-row>"
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="Sheet1">'
        f"{cells}</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.2"><manifest:file-entry manifest:full-path="/"'
        ' manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(HERE / "reader_small.ods", "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet",
                    compress_type=zipfile.ZIP_STORED)
        zf.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)


def write_xls() -> None:
    try:
        import xlwt  # type: ignore[import-not-found]
    except ImportError:
        return
    book = xlwt.Workbook()
    sheet = book.add_sheet("People")
    for c, value in enumerate(["Mobile", "Name", "When"]):
        sheet.write(1, c, value)
    sheet.write(2, 0, 447700900123)
    sheet.write(2, 1, "Ann ")
    sheet.write(2, 2, dt.date(2024, 1, 2), xlwt.easyxf(num_format_str="YYYY-MM-DD"))
    sheet.write(4, 0, "07700900456")
    sheet.write(4, 1, "Bob")
    book.save(str(HERE / "reader_small.xls"))


def write_bad() -> None:
    (HERE / "reader_binary.csv").write_bytes(bytes(range(256)) * 8)
    (HERE / "reader_not_zip_workbook.xlsx").write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    ole = bytearray(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024)
    ole[600:600] = "EncryptedPackage".encode("utf-16-le")
    (HERE / "reader_encrypted.xlsx").write_bytes(bytes(ole))
    (HERE / "reader_text.xlsx").write_text("Mobile,Name\n447700900123,Ann\n")
    (HERE / "reader_dup_headers.csv").write_text("Mobile,Name,Mobile\n1,2,3\n")
    (HERE / "reader_blank_only.csv").write_text("\n , ,\n\n")
    with zipfile.ZipFile(HERE / "reader_plain.zip.xlsx", "w") as zf:
        zf.writestr("readme.txt", "not a workbook")


if __name__ == "__main__":
    write_csvs()
    write_xlsx()
    write_ods()
    write_xls()
    write_bad()
