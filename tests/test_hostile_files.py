"""Files built to take the process down are refused in one sentence (exit 2) before a parser
allocates for them, and whatever gets past the checks is read in a child with limits.

Every file here is built by the test, tiny on disk, and opened only by a CLI subprocess that
runs with a timeout and an RLIMIT_AS cap, so a regression fails the test instead of taking
the machine down."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

from bsg_sync.errors import InputFileError
from bsg_sync.isolate import read_sheet_isolated
from bsg_sync.reader import read_sheet

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path("/work/shared/corpus")
CAP = 2 << 30  # the CLI under test gets 2 GiB of address space and 60 s
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


# --------------------------------------------------------------------------- builders


def _xlsx(path: Path, rows: str, *, dim: str = "A1", strings: list[str] | None = None) -> Path:
    """A minimal XLSX: one sheet with `rows` (sheetData XML) and optional shared strings."""
    sst = "".join(f"<si><t>{s}</t></si>" for s in (strings or ["Mobile"]))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.'
            'openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            "</Types>"))
        zf.writestr("_rels/.rels", (
            f'<?xml version="1.0"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" '
            f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'))
        zf.writestr("xl/workbook.xml", (
            f'<?xml version="1.0"?><workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'))
        zf.writestr("xl/_rels/workbook.xml.rels", (
            f'<?xml version="1.0"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" '
            f'Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" '
            f'Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'))
        zf.writestr("xl/worksheets/sheet1.xml", (
            f'<?xml version="1.0"?><worksheet xmlns="{MAIN}"><dimension ref="{dim}"/>'
            f"<sheetData>{rows}</sheetData></worksheet>"))
        zf.writestr("xl/sharedStrings.xml", f'<?xml version="1.0"?><sst xmlns="{MAIN}">{sst}</sst>')
    return path


HEADER = '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
END, FREE, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def _dir_entry(name: str, kind: int, start: int, size: int, child: int = NOSTREAM) -> bytes:
    entry = bytearray(128)
    raw = name.encode("utf-16-le") + b"\0\0"
    entry[: len(raw)] = raw
    struct.pack_into("<HBB", entry, 64, len(raw), kind, 1)
    struct.pack_into("<III", entry, 68, NOSTREAM, NOSTREAM, child)
    struct.pack_into("<IQ", entry, 116, start, size)
    return bytes(entry)


def _ole(path: Path, fat: list[int], dir_start: int = 1) -> Path:
    """A 2 KiB OLE file: FAT in sector 0, directory in 1, a Workbook stream from sector 2."""
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIII", header, 44, 1, dir_start, 0, 4096, END, 0, END, 0)
    struct.pack_into("<109I", header, 76, 0, *[FREE] * 108)
    fat_sector = struct.pack("<128I", *(fat + [FREE] * (128 - len(fat))))
    directory = (_dir_entry("Root Entry", 5, END, 0, child=1)
                 + _dir_entry("Workbook", 2, 2, 8192)).ljust(512, b"\0")
    bof = struct.pack("<HHHHIII", 0x0809, 16, 0x0600, 0x0005, 0, 0, 0)
    path.write_bytes(bytes(header) + fat_sector + directory + bof.ljust(512, b"\0"))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    env = dict(os.environ, PYTHONPATH=str(ROOT), BSG_API_KEY="", BSG_STATE="")
    return subprocess.run(
        [sys.executable, "-m", "bsg_sync", *args], capture_output=True, text=True,
        timeout=60, preexec_fn=cap, env=env, check=False,
    )


def _refused(tmp_path: Path, sheet: Path) -> str:
    """`bsg-sync init SHEET --offline` in a capped subprocess: exit 2 and one sentence."""
    done = _cli("init", str(sheet), "--offline", "-o", str(tmp_path / "out.toml"))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "panicked" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bsg-sync: ") and lines[0].endswith("."), lines
    assert done.stdout == "" and not (tmp_path / "out.toml").exists()
    return lines[0]


# --------------------------------------------------------------------------- XLSX


def test_a_cell_at_xfd1048576_is_refused_before_calamine_allocates_512_gib(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "xfd.xlsx", HEADER + '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>')
    assert path.stat().st_size < 2000
    line = _refused(tmp_path, path)
    assert "spans 17,179,869,184 cells" in line and "50,000,000-cell limit" in line


def test_a_cell_at_az1048576_is_refused_not_read_in_12_s(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "az.xlsx", HEADER + '<row r="1048576"><c r="AZ1048576"><v>1</v></c></row>')
    assert "spans 54,525,952 cells (rows 1-1048576, 52 columns) for 2 cells" in _refused(tmp_path, path)


def test_a_reference_with_other_attributes_first_is_found_too(tmp_path: Path) -> None:
    rows = HEADER + '<row r="2"><c s="0" t="n"\nr="XFD2"><v>1</v></c><c r="B1048576"><v>2</v></c></row>'
    assert "cells" in _refused(tmp_path, _xlsx(tmp_path / "odd.xlsx", rows))


def test_cells_beyond_excels_grid_are_damaged(tmp_path: Path) -> None:
    beyond_cell = _xlsx(tmp_path / "c.xlsx", HEADER + '<row r="2"><c r="XFE2"><v>1</v></c></row>')
    assert "a cell at XFE2, beyond Excel's XFD1048576" in _refused(tmp_path, beyond_cell)
    beyond_dim = _xlsx(tmp_path / "d.xlsx", HEADER, dim="A1:B1048577")
    assert "declares cells up to B1048577" in _refused(tmp_path, beyond_dim)


def test_a_15_mib_shared_string_used_by_2000_cells_is_refused(tmp_path: Path) -> None:
    cells = "".join(f'<row r="{r}"><c r="A{r}" t="s"><v>1</v></c></row>' for r in range(2, 2002))
    path = _xlsx(tmp_path / "sst.xlsx", HEADER + cells, strings=["Mobile", "x" * (15 << 20)])
    assert path.stat().st_size < 100_000
    assert "above Excel's 32,767 per cell" in _refused(tmp_path, path)


def test_strings_repeated_past_the_text_budget_are_refused(tmp_path: Path) -> None:
    cells = "".join(f'<row r="{r}"><c r="A{r}" t="s"><v>1</v></c></row>' for r in range(2, 40_002))
    path = _xlsx(tmp_path / "uses.xlsx", HEADER + cells, strings=["Mobile", "y" * 30_000])
    assert "repeats its shared text into 1.1 G characters" in _refused(tmp_path, path)


def test_an_empty_style_attribute_is_one_sentence_not_a_traceback(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "s.xlsx", '<row r="1"><c r="A1" s=""><v>1</v></c></row>')
    done = _cli("init", str(path), "--offline", "-o", str(tmp_path / "out.toml"))
    assert "Traceback" not in done.stderr and done.returncode in (0, 2), done.stderr


def test_sync_refuses_through_the_same_checks(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "xfd.xlsx", HEADER + '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>')
    (tmp_path / "m.toml").write_text('[columns]\n"Mobile" = "phone"\n')
    done = _cli("sync", str(path), "--mapping", str(tmp_path / "m.toml"), "--dry-run",
                "--offline", "--state", str(tmp_path / "s.sqlite3"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "panicked" not in done.stderr
    assert "50,000,000-cell limit" in done.stderr.strip().splitlines()[-1]


def test_what_gets_past_the_checks_is_read_under_the_callers_cap(tmp_path: Path) -> None:
    """The limit named is the one in force: the child cannot have more than its caller."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    code = ("import resource, sys; from bsg_sync.isolate import _effective; "
            "print(_effective(8 << 30) >> 20)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, preexec_fn=cap, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          check=True)
    assert int(done.stdout) == CAP >> 20


def test_a_normal_wide_sheet_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "wide.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([f"H{i}" for i in range(60)])  # columns past Z: the exact pass
    ws.append(["447700900123", *range(59)])
    wb.save(path)
    sheet = read_sheet(path)
    assert len(sheet.headers) == 60 and sheet.rows[0].values[59] == "58"


# --------------------------------------------------------------------------- ODS


def _ods(path: Path, rows: str) -> Path:
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", (
            f'<?xml version="1.0"?><office:document-content {ns}><office:body><office:spreadsheet>'
            f'<table:table table:name="Sheet1">{rows}</table:table></office:spreadsheet>'
            "</office:body></office:document-content>"))
        zf.writestr("META-INF/manifest.xml", (
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:'
            '1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/'
            'vnd.oasis.opendocument.spreadsheet"/></manifest:manifest>'))
    return path


def _ods_cell(text: str, repeat: int = 1) -> str:
    return (f'<table:table-cell table:number-columns-repeated="{repeat}" '
            f'office:value-type="string"><text:p>{text}</text:p></table:table-cell>')


def test_an_ods_whose_repeated_cells_expand_past_the_budget_is_refused(tmp_path: Path) -> None:
    rows = (f"<table:table-row>{_ods_cell('Mobile')}</table:table-row>"
            f'<table:table-row table:number-rows-repeated="1048575">{_ods_cell("x", 50)}'
            "</table:table-row>")
    path = _ods(tmp_path / "rows.ods", rows)
    assert path.stat().st_size < 2000  # on main this aborted under a 2 GiB cap (signal 6)
    assert "spans 52,428,800 cells (1,048,576 rows, 50 columns" in _refused(tmp_path, path)


def test_an_ods_with_libreoffices_trailing_empty_repeats_reads(tmp_path: Path) -> None:
    rows = (f"<table:table-row>{_ods_cell('Mobile')}{_ods_cell('City')}"
            '<table:table-cell table:number-columns-repeated="16382"/></table:table-row>'
            f"<table:table-row>{_ods_cell('447700900123')}{_ods_cell('Leeds')}"
            '<table:table-cell table:number-columns-repeated="16382"/></table:table-row>'
            '<table:table-row table:number-rows-repeated="1048574">'
            '<table:table-cell table:number-columns-repeated="16384"/></table:table-row>')
    sheet = read_sheet(_ods(tmp_path / "lo.ods", rows))
    assert sheet.headers == ("Mobile", "City") and sheet.rows[0].values == ("447700900123", "Leeds")


# --------------------------------------------------------------------------- XLS (OLE)


def test_an_ole_file_whose_sector_chain_loops_is_refused(tmp_path: Path) -> None:
    path = _ole(tmp_path / "loop.xls", [FATSECT, END, 2])  # the Workbook's sector 2 -> 2
    assert path.stat().st_size == 2048
    assert "a sector chain loops" in _refused(tmp_path, path)


def test_an_ole_directory_chain_that_loops_or_leaves_the_file_is_refused(tmp_path: Path) -> None:
    looped = _ole(tmp_path / "dir.xls", [FATSECT, 1, END])
    assert "a sector chain loops" in _refused(tmp_path, looped)
    outside = _ole(tmp_path / "out.xls", [FATSECT, 900, END])
    assert "outside the file" in _refused(tmp_path, outside)


def test_an_ole_stream_longer_than_the_file_is_refused(tmp_path: Path) -> None:
    path = _ole(tmp_path / "big.xls", [FATSECT, END, END])
    data = bytearray(path.read_bytes())
    struct.pack_into("<Q", data, 512 * 2 + 128 + 120, 1 << 40)  # Workbook's declared size
    path.write_bytes(bytes(data))
    assert "declares 1,099,511,627,776 bytes" in _refused(tmp_path, path)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("name", ["SheetJS__test_files/password_2002_128_strong.xls",
                                  "PHPOffice__PhpSpreadsheet/tests/data/Reader/XLS/pwtest.xls"])
def test_a_password_protected_xls_says_so(tmp_path: Path, name: str) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip("the shared corpus is not here")
    with pytest.raises(InputFileError, match="is password-protected; open it in Excel, remove the password"):
        read_sheet(path)


def test_a_password_protected_ods_says_so(tmp_path: Path) -> None:
    path = tmp_path / "secret.ods"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", b"\x8f\x12encrypted bytes")
        zf.writestr("META-INF/manifest.xml", (
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:'
            '1.0"><manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data'
            ' manifest:checksum-type="SHA1"/></manifest:file-entry></manifest:manifest>'))
    with pytest.raises(InputFileError, match="is password-protected; open it in LibreOffice, remove"):
        read_sheet(path)


def test_an_apple_numbers_file_says_export_it(tmp_path: Path) -> None:
    path = tmp_path / "contacts.numbers"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Index/Document.iwa", b"\0\1\2")
        zf.writestr("Metadata/Properties.plist", b"")
    with pytest.raises(InputFileError, match=r"export it as \.xlsx or \.csv from Numbers"):
        read_sheet(path)
    package = tmp_path / "bundle.numbers"  # as a macOS package: a folder
    (package / "Index").mkdir(parents=True)
    with pytest.raises(InputFileError, match=r"export it as \.xlsx or \.csv from Numbers"):
        read_sheet(package)


def _record(kind: int, data: bytes = b"") -> bytes:
    """One XLSB record: 7-bit varint type (1-2 bytes) and size, then the data."""
    head = bytes([kind]) if kind < 128 else bytes([0x80 | (kind & 0x7F), kind >> 7])
    size, n = b"", len(data)
    while True:
        size += bytes([(n & 0x7F) | (0x80 if n >> 7 else 0)])
        n >>= 7
        if not n:
            return head + size + data


def _wide(text: str) -> bytes:
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def _xlsb(path: Path, rows: list[list[str]], far: tuple[int, int] | None = None) -> Path:
    """A minimal XLSB (MS-XLSB records): one tab of inline string cells (and one at `far`)."""
    book = (_record(0x0183) + _record(0x018F)
            + _record(0x009C, struct.pack("<II", 0, 1) + _wide("rId1") + _wide("Contacts"))
            + _record(0x0090) + _record(0x009D, b"\0" * 16) + _record(0x0184))
    sheet = (_record(0x0081) + _record(0x0094, struct.pack("<IIII", 0, len(rows) - 1, 0, 1))
             + _record(0x0091))
    for r, row in enumerate(rows):
        sheet += _record(0x0000, struct.pack("<I", r) + b"\0" * 13)
        sheet += b"".join(_record(0x0006, struct.pack("<II", c, 0) + _wide(v)) for c, v in enumerate(row))
    if far is not None:
        sheet += _record(0x0000, struct.pack("<I", far[0]) + b"\0" * 13)
        sheet += _record(0x0006, struct.pack("<II", far[1], 0) + _wide("x"))
    sheet += _record(0x0092) + _record(0x0082)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("xl/workbook.bin", book)
        zf.writestr("xl/_rels/workbook.bin.rels", (
            f'<?xml version="1.0"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" '
            f'Type="{REL}/worksheet" Target="worksheets/sheet1.bin"/></Relationships>'))
        zf.writestr("xl/worksheets/sheet1.bin", sheet)
    return path


def test_xlsb_is_read(tmp_path: Path) -> None:
    path = _xlsb(tmp_path / "book.xlsb", [["Mobile", "City"], ["447700900123", "Leeds"],
                                          ["447700900124", "Le\x1beds"]])
    sheet = read_sheet(path)
    assert (sheet.sheet_name, sheet.headers) == ("Contacts", ("Mobile", "City"))
    assert [(r.row, r.values, [p.code for p in r.problems]) for r in sheet.rows] == [
        (2, ("447700900123", "Leeds"), []), (3, ("447700900124", "Le\x1beds"), ["control-character"])]


def test_a_far_cell_in_an_xlsb_is_caught_by_the_isolated_read(tmp_path: Path) -> None:
    """XLSB sheets are binary records and not pre-checked: the child's memory limit is what
    stops a cell at XFD1048576 there (calamine would allocate 512 GiB)."""
    path = _xlsb(tmp_path / "far.xlsb", [["Mobile", "City"]], far=(1_048_575, 16_383))
    assert "needs more memory than 2.0 GiB to read" in _refused(tmp_path, path)


# --------------------------------------------------------------------------- isolation


def _contacts_xlsx(path: Path, rows: int) -> Path:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Contacts")
    ws.append(["Mobile", "City", "Note"])
    for i in range(rows):
        city = "Le_x001E_eds" if i == 7 and rows > 100 else "Leeds"  # _x001E_: XML can't hold it
        ws.append([f"4477009{i:05d}", city, f"n\u202e{i}" if i == 9 else "x"])
    wb.save(path)
    return path


def test_the_isolated_read_returns_the_same_sheet(tmp_path: Path) -> None:
    path = _contacts_xlsx(tmp_path / "c.xlsx", 300)
    assert read_sheet_isolated(path) == read_sheet(path)
    plain = _contacts_xlsx(tmp_path / "p.xlsx", 50)  # the fast transport (no \x1e in a cell)
    assert read_sheet_isolated(plain, sheet="Contacts") == read_sheet(plain, sheet="Contacts")


def test_a_reader_error_in_the_child_is_the_same_error(tmp_path: Path) -> None:
    path = _contacts_xlsx(tmp_path / "c.xlsx", 3)
    with pytest.raises(InputFileError, match="has no tab 'Nope'"):
        read_sheet_isolated(path, sheet="Nope")


@pytest.fixture(scope="module")
def big_xlsx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _contacts_xlsx(tmp_path_factory.mktemp("big") / "c.xlsx", 20_000)


def test_a_child_out_of_memory_is_one_sentence(tmp_path: Path) -> None:
    """10 M cells pass the 50 M-cell check, but calamine needs ~320 MB for them: with 150 MiB
    the child's allocation fails (Rust aborts) and the caller says one sentence."""
    path = _xlsx(tmp_path / "j.xlsx", HEADER + '<row r="1000000"><c r="J1000000"><v>1</v></c></row>')
    with pytest.raises(InputFileError, match=r"needs more memory than 150 MiB to read; it is "
                       "probably damaged or not made by a spreadsheet program"):
        read_sheet_isolated(path, memory_limit=150 << 20)


def test_a_child_out_of_time_is_one_sentence(big_xlsx: Path) -> None:
    path = big_xlsx
    with pytest.raises(InputFileError, match=r"takes longer than 0 s to read"):
        read_sheet_isolated(path, time_limit=0.01)
