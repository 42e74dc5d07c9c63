"""CSV decoding never guesses wrong: strict UTF-8, a mix refused naming the row, other encodings
detected or refused naming candidates, UTF-16/UTF-32 with and without BOM, Excel's `sep=`."""

from __future__ import annotations

import codecs
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.errors import InputFileError
from bsg_sync.reader import read_sheet

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"
CITIES = ["Zürich", "São Paulo", "Málaga", "Kraków"]


def _mixed_bytes() -> bytes:
    """Five rows: four in UTF-8, the last (spreadsheet row 6) saved as cp1252."""
    lines = [b"Mobile,City"]
    lines += [f"4477009001{i:02d},{c}".encode() for i, c in enumerate(CITIES)]
    lines.append(b"447700900199,Orl\xe9ans")
    return b"\n".join(lines) + b"\n"


def test_utf8_rows_mixed_with_a_cp1252_row_are_refused_naming_row_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(_mixed_bytes())
    with pytest.raises(InputFileError) as info:
        read_sheet(path)
    message = str(info.value)
    assert "mixes UTF-8 with another encoding (row 6 holds the byte 0xE9" in message
    assert "--encoding" in message and message.endswith(".") and message.count(". ") == 0


def test_the_mix_is_found_past_the_first_mebibyte_and_counted_in_records(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    filler = b"".join(b'447700%06d,"Leeds\nWest"\n' % i for i in range(60_000))  # 2 lines/record
    path.write_bytes(b"Mobile,City\n447700900001,Z\xc3\xbcrich\n" + filler + b"1,Orl\xe9ans\n")
    assert path.stat().st_size > 1 << 20
    with pytest.raises(InputFileError, match=r"row 60003 holds the byte 0xE9"):
        read_sheet(path)


def test_the_mixed_file_reads_as_the_encoding_the_person_names(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(_mixed_bytes())
    sheet = read_sheet(path, encoding="cp1252")
    assert sheet.rows[-1].values[1] == "Orléans"


def test_a_pure_cp1252_file_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "west.csv"
    text = "Name;City;Note\nZoë;Köln;“quoted” 5€\nJosé;Orléans;it’s\nBjörn;Málaga;ça\n"
    path.write_bytes(text.encode("cp1252"))
    sheet = read_sheet(path)
    assert sheet.encoding == "cp1252"
    assert [r.values for r in sheet.rows] == [
        ("Zoë", "Köln", "“quoted” 5€"), ("José", "Orléans", "it’s"), ("Björn", "Málaga", "ça")]


@pytest.mark.parametrize(
    ("codec", "text"),
    [
        ("iso-8859-7", "Όνομα,Κινητό,Πόλη\nΛεωνίδας,306971234567,Αθήνα\nΆννα,306981234567,"
                       "Θεσσαλονίκη\nΓιώργος,306991234567,Άρτα\nΕλένη,306901234567,Πάτρα\n"),
        ("cp1251", "Имя,Телефон,Город\nИван,79161234567,Москва\nМария,79261234567,"
                   "Санкт-Петербург\nОльга,79031234567,Новосибирск\n"),
        ("shift_jis", "名前,電話,都市\n山田太郎,819012345678,東京\n鈴木花子,818012345678,大阪\n"
                      "佐藤次郎,817012345678,名古屋\n"),
    ],
)
def test_other_encodings_read_as_their_own_script(tmp_path: Path, codec: str, text: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode(codec))
    expected = [tuple(line.split(",")) for line in text.splitlines()]
    sheet = read_sheet(path)
    assert codecs.lookup(sheet.encoding or "").name == codecs.lookup(codec).name or (
        codec == "shift_jis" and sheet.encoding == "cp932")  # cp932 is Windows' Shift-JIS
    assert (sheet.headers, *[r.values for r in sheet.rows]) == tuple(expected)


def test_a_short_unknown_byte_is_refused_naming_candidates(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"Mobile,Name\n447700900123,A\x81b\n")
    with pytest.raises(InputFileError, match=r"cannot be told for sure \(it could be .*--encoding"):
        read_sheet(path)


def test_greek_iso_8859_7_is_never_read_as_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "greek.csv"
    text = "Όνομα,Πόλη\n" + "".join(f"Λεωνίδας {i},Αθήνα\n" for i in range(20))
    path.write_bytes(text.encode("iso-8859-7"))
    sheet = read_sheet(path)
    assert sheet.headers == ("Όνομα", "Πόλη") and sheet.rows[0].values[1] == "Αθήνα"


@pytest.mark.parametrize(
    ("codec", "bom", "detected"),
    [
        ("utf-32-le", codecs.BOM_UTF32_LE, "utf-32"),
        ("utf-32-be", codecs.BOM_UTF32_BE, "utf-32"),
        ("utf-32-le", b"", "utf-32-le"),
        ("utf-32-be", b"", "utf-32-be"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16"),
        ("utf-16-le", b"", "utf-16-le"),
        ("utf-16-be", b"", "utf-16-be"),
    ],
)
def test_utf32_and_utf16_with_and_without_bom(
    tmp_path: Path, codec: str, bom: bytes, detected: str
) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(bom + "Mobile\tCity\n447700900123\tZürich\n447700900124\tKraków\n".encode(codec))
    sheet = read_sheet(path)
    assert (sheet.encoding, sheet.delimiter, sheet.headers) == (detected, "\t", ("Mobile", "City"))
    assert [r.values for r in sheet.rows] == [("447700900123", "Zürich"), ("447700900124", "Kraków")]


def test_a_broken_utf16_file_is_refused_not_read_with_nuls(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "Mobile\n1\n".encode("utf-16-le") + b"\x00")
    with pytest.raises(InputFileError, match=r"not valid utf-16 .*--encoding"):
        read_sheet(path)


def test_excel_sep_line_sets_the_delimiter_and_is_not_the_header(tmp_path: Path) -> None:
    path = tmp_path / "sep.csv"
    path.write_bytes(b"sep=;\r\nMobile;City,Region\r\n447700900123;Leeds,Yorks\r\n")
    sheet = read_sheet(path)
    assert (sheet.delimiter, sheet.header_row, sheet.headers) == (";", 1, ("Mobile", "City,Region"))
    assert [(r.row, r.values) for r in sheet.rows] == [(2, ("447700900123", "Leeds,Yorks"))]


def test_sync_dry_run_of_a_mixed_file_exits_2_and_sends_nothing(tmp_path: Path) -> None:
    shutil.copy2(SAMPLES / "contacts.toml", tmp_path / "contacts.toml")
    text = (SAMPLES / "contacts.csv").read_bytes().rstrip(b"\r\n")
    (tmp_path / "contacts.csv").write_bytes(text + b"\n248400005,+447700900199,Zoe,Orl\xe9ans,,\n")
    rows = text.count(b"\n") + 2  # the header is row 1
    with Emulator(EmulatorConfig(), seed=SAMPLES / "seed.json") as emu:
        before = emu.stats()["requests"]
        result = CliRunner().invoke(
            cli,
            ["sync", str(tmp_path / "contacts.csv"), "--dry-run", "--mapping",
             str(tmp_path / "contacts.toml"), "--state", str(tmp_path / "s.sqlite3"),
             "--api-url", emu.url, "--report", str(tmp_path / "r.jsonl")],
            env={"BSG_API_KEY": "live_decode", "BSG_STATE": "", "BSG_API_URL": ""},
        )
        assert emu.stats()["requests"] == before
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert f"row {rows} holds the byte 0xE9" in last and "--encoding" in last
    assert not (tmp_path / "r.jsonl").exists()
