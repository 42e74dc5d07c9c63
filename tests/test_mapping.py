"""Tests for bsg_sync.mapping: parse, resolve, map rows, generate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kit import SAMPLE_SEED, Emulators

from bsg_sync.errors import ConfigError
from bsg_sync.mapping import (
    RawMapping,
    find_mapping_file,
    generate_mapping,
    load_mapping,
    map_rows,
    parse_mapping,
    resolve_mapping,
    unmapped_headers,
)
from bsg_sync.models import (
    Account,
    Action,
    Blank,
    ColumnMapping,
    ColumnTarget,
    Field,
    Group,
    GroupsMode,
    Sheet,
    SheetRow,
    Status,
    TargetKind,
)
from bsg_sync.phones import PhoneResult, normalise_phone

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"
DATA = Path(__file__).resolve().parent / "data"

ACCOUNT = Account(
    fields=(Field(11, "First name"), Field(12, "City"), Field(13, "Plan"),
            Field(14, "Birthday", "date")),
    groups=(Group(1, "Newsletter"), Group(2, "VIP"), Group(3, "Leeds store")),
)
HEADERS = ("Contact ID", "Mobile", "First name", "City", "Plan", "Lists", "Notes")
GOOD = """
[columns]
"Contact ID" = "id"
"Mobile" = "phone"
"First name" = 11
"City" = { target = "field:City", blank = "clear" }
"plan " = "field:plan"
"Lists" = "groups"
[options]
default_country = "gb"
groups = "exact"
"""


def resolved(text: str = GOOD, headers: tuple[str, ...] = HEADERS) -> ColumnMapping:
    return resolve_mapping(parse_mapping(text), headers, ACCOUNT)


# --------------------------------------------------------------------------- resolve


def test_resolve_good_mapping() -> None:
    m = resolved()
    assert m.columns == (
        ColumnTarget("Contact ID", TargetKind.ID),
        ColumnTarget("Mobile", TargetKind.PHONE),
        ColumnTarget("First name", TargetKind.FIELD, 11),
        ColumnTarget("City", TargetKind.FIELD, 12, Blank.CLEAR),
        ColumnTarget("Plan", TargetKind.FIELD, 13),  # header and name matched loosely
        ColumnTarget("Lists", TargetKind.GROUPS),
    )
    assert m.options.default_country == "GB"
    assert m.options.groups is GroupsMode.EXACT
    assert m.options.blank is Blank.KEEP


def test_field_targets_by_digit_string_and_field_prefix() -> None:
    m = resolved('[columns]\n"Mobile" = "phone"\n"City" = "12"\n"Plan" = "field:13"\n')
    assert [c.field_id for c in m.columns] == [None, 12, 13]


COLS = '[columns]\n"Mobile" = "phone"\n'
ERROR_CASES = [
    ('[columns]\n"Mobil" = "phone"\n',
     "mapping: column 'Mobil' is not in the sheet; did you mean 'Mobile'?"),
    (COLS + '"City" = "field:Cty"\n',
     "mapping: column 'City': unknown field 'Cty'; did you mean 'City'?"),
    (COLS + '"City" = 99\n',
     "mapping: column 'City': unknown field id 99; did you mean 12 (City)?"),
    (COLS + '"Lists" = "group"\n',
     "mapping: column 'Lists': bad target 'group' (use id, phone, groups, field:<name> or a "
     "field id); did you mean 'groups'?"),
    (COLS + '"City" = true\n',
     "mapping: column 'City': target must be id, phone, groups, field:<name> or a field id, "
     "not True"),
    (COLS + '"City" = { target = "field:City", blank = "empty" }\n',
     "mapping: column 'City': blank = 'empty' must be 'keep' or 'clear'"),
    (COLS + '"City" = { target = "field:City", blnk = "clear" }\n',
     "mapping: column 'City': unknown key 'blnk' (use target, blank)"),
    (COLS + '[options]\nblank = "empty"\n',
     "mapping: option blank = 'empty' must be 'keep' or 'clear'"),
    (COLS + '[options]\ngroups = "replace"\n',
     "mapping: option groups = 'replace' must be 'add' or 'exact'"),
    (COLS + '[options]\ndefault_country = "UK"\n',
     "mapping: option default_country = 'UK' is not a region code like 'GB', 'DE' or 'US'"),
    (COLS + '[options]\nheader_row = 0\n',
     "mapping: option header_row = 0 must be a row number (1 or more)"),
    (COLS + '[options]\ndefault_contry = "GB"\n',
     "mapping: unknown option 'default_contry'; did you mean 'default_country'?"),
    ('[column]\n"Mobile" = "phone"\n',
     "mapping has 2 problems:\n  - unknown table [column]; did you mean 'columns'?\n"
     "  - no column is mapped to phone or id, so no row can name its contact"),
    ('[columns]\n"City" = "field:City"\n',
     "mapping: no column is mapped to phone or id, so no row can name its contact"),
    (COLS + '"Contact ID" = "phone"\n',
     "mapping: two columns are mapped to phone: 'Mobile' and 'Contact ID'"),
    (COLS + '"mobile" = "id"\n', "mapping: column 'Mobile' is mapped twice"),
    (COLS + '"Plan" = "field:City"\n"City" = 12\n',
     "mapping: two columns are mapped to field 12: 'Plan' and 'City'"),
]


@pytest.mark.parametrize(("text", "message"), ERROR_CASES)
def test_resolve_errors_have_exact_messages(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolved(text)
    assert str(info.value) == message


def test_every_problem_is_listed_once_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "bsg-sync.toml"
    path.write_text('[columns]\n"Mobil" = "phone"\n"Town" = "field:Cty"\n[options]\n'
                    'groups = "all"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        resolve_mapping(load_mapping(path), HEADERS, ACCOUNT)
    assert str(info.value) == (
        "bsg-sync.toml has 4 problems:\n"
        "  - option groups = 'all' must be 'add' or 'exact'\n"
        "  - column 'Mobil' is not in the sheet; did you mean 'Mobile'?\n"
        "  - column 'Town' is not in the sheet\n"
        "  - column 'Town': unknown field 'Cty'; did you mean 'City'?"
    )


def test_no_header_matching_points_at_header_row() -> None:
    title_row = ("Export from CRM, 2026-11-27", "Column 2")
    with pytest.raises(ConfigError) as info:
        resolve_mapping(parse_mapping(COLS), title_row, ACCOUNT)
    assert str(info.value) == (
        "mapping has 2 problems:\n"
        "  - column 'Mobile' is not in the sheet\n"
        "  - the header row read from the sheet is 'Export from CRM, 2026-11-27', 'Column 2'; "
        "if the real headers are further down, set header_row in [options]"
    )


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[columns]\n"Mobile" = phone\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^m\.toml is not valid TOML: .*line 2"):
        load_mapping(path)


def test_missing_mapping_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found; write one with `bsg-sync init SHEET`"):
        load_mapping(tmp_path / "nope.toml")


def test_load_mapping_accepts_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_bytes('[columns]\n"Mobile" = "phone"\n'.encode("utf-8-sig"))
    assert load_mapping(path) == RawMapping({"Mobile": "phone"}, {}, path)


def test_find_mapping_file_order(tmp_path: Path) -> None:
    sheets, cwd = tmp_path / "sheets", tmp_path / "cwd"
    sheets.mkdir()
    cwd.mkdir()
    sheet = sheets / "july.csv"
    assert find_mapping_file(sheet, cwd) is None
    (cwd / "bsg-sync.toml").write_text("")
    assert find_mapping_file(sheet, cwd) == cwd / "bsg-sync.toml"
    (sheets / "bsg-sync.toml").write_text("")
    assert find_mapping_file(sheet, cwd) == sheets / "bsg-sync.toml"
    (sheets / "july.toml").write_text("")
    assert find_mapping_file(sheet, cwd) == sheets / "july.toml"


def test_unmapped_headers_ignore_errors_file_columns_and_blanks() -> None:
    headers = (*HEADERS, "error_code", "error", " ")
    assert unmapped_headers(resolved(), headers) == ["Notes"]


# --------------------------------------------------------------------------- map_rows


def sheet_of(*rows: tuple[str, ...], headers: tuple[str, ...] = HEADERS[:6]) -> Sheet:
    return Sheet(Path("s.csv"), headers,
                 [SheetRow(i + 2, tuple(r)) for i, r in enumerate(rows)], sha256="x")


MAPPING = resolved()  # City blank clears, other fields keep; groups exact; GB


def test_map_rows_values_blanks_and_groups() -> None:
    sheet = sheet_of(
        ("7", "07700 900123", "Ann", "Leeds", "Pro", "newsletter; 2"),
        ("8", "", "", "", "", ""),
        ("", "+49 151 12345678", "Jo", "", "", "VIP,Leeds Store , 1"),
    )
    mapped = map_rows(sheet, MAPPING, ACCOUNT)
    assert mapped.results == []
    first, second, third = mapped.desired
    assert (first.contact_id, first.phone, dict(first.fields), first.groups) == (
        7, "447700900123", {11: "Ann", 12: "Leeds", 13: "Pro"}, frozenset({1, 2}))
    assert first.groups_mode is GroupsMode.EXACT
    assert (second.contact_id, second.phone, dict(second.fields), second.groups) == (
        8, None, {12: ""}, None)
    assert (third.contact_id, third.phone, dict(third.fields), third.groups) == (
        None, "4915112345678", {11: "Jo", 12: ""}, frozenset({1, 2, 3}))


def test_blank_groups_cell_clears_when_the_column_says_so() -> None:
    text = GOOD.replace('"Lists" = "groups"', '"Lists" = { target = "groups", blank = "clear" }')
    mapped = map_rows(sheet_of(("8", "", "", "", "", "")), resolved(text), ACCOUNT)
    assert mapped.desired[0].groups == frozenset()


INVALID_CASES = [
    (("abc", "", "", "", "", ""), "invalid-id",
     "Contact ID 'abc' is not a whole number above 0; use the contact's BSG id or leave it empty."),
    (("0", "", "", "", "", ""), "invalid-id",
     "Contact ID '0' is not a whole number above 0; use the contact's BSG id or leave it empty."),
    # str.isdigit() is true for these, but int() refuses the first (found by the fuzz test)
    (("²", "", "", "", "", ""), "invalid-id",
     "Contact ID '²' is not a whole number above 0; use the contact's BSG id or leave it empty."),
    (("١٢", "", "", "", "", ""), "invalid-id",
     "Contact ID '١٢' is not a whole number above 0; use the contact's BSG id or leave it empty."),
    (("", "", "Ann", "Leeds", "", ""), "missing-contact", "The row needs a contact id or a phone."),
    (("5", "4.47712E+11", "", "", "", ""), "phone-precision-lost", None),
    (("", "12345", "", "", "", ""), "invalid-phone", None),
]


@pytest.mark.parametrize(("row", "code", "error"), INVALID_CASES)
def test_invalid_rows(row: tuple[str, ...], code: str, error: str | None) -> None:
    mapped = map_rows(sheet_of(row), MAPPING, ACCOUNT)
    assert mapped.desired == []
    (result,) = mapped.results
    assert (result.row, result.status, result.action, result.error_code) == (
        2, Status.INVALID, Action.SKIP, code)
    assert result.error == error if error else result.error


def test_unknown_list_names_are_one_config_error_with_rows() -> None:
    sheet = sheet_of(
        ("1", "", "", "", "", "Newsleter"),
        ("2", "", "", "", "", "VIP"),
        ("3", "", "", "", "", "VIP; Newsleter"),
    )
    with pytest.raises(ConfigError) as info:
        map_rows(sheet, MAPPING, ACCOUNT)
    assert str(info.value) == "unknown list 'Newsleter' (rows 2, 4); did you mean 'Newsletter'?"


def test_several_unknown_lists_are_listed_together() -> None:
    sheet = sheet_of(("1", "", "", "", "", "Gold"), ("2", "", "", "", "", "99"))
    with pytest.raises(ConfigError) as info:
        map_rows(sheet, MAPPING, ACCOUNT)
    assert str(info.value) == (
        "the sheet names 2 unknown lists:\n  - unknown list 'Gold' (row 2)\n"
        "  - unknown list '99' (row 3)"
    )


def test_duplicates_identical_and_conflicting() -> None:
    sheet = sheet_of(
        ("7", "", "Ann", "", "", ""),
        ("", "+447700900123", "Bo", "", "", ""),
        ("7", "", "Ann", "", "", ""),
        ("", "07700 900123", "Cy", "", "", ""),
        ("9", "", "Di", "", "", ""),
    )
    mapped = map_rows(sheet, MAPPING, ACCOUNT)
    assert [d.row for d in mapped.desired] == [2, 6]
    by_row = {r.row: r for r in mapped.results}
    assert sorted(by_row) == [3, 4, 5]
    assert (by_row[4].status, by_row[4].action, by_row[4].error_code, by_row[4].error) == (
        Status.UNCHANGED, Action.NONE, "duplicate-row", "Same as row 2; sent once.")
    assert (by_row[3].status, by_row[3].error_code, by_row[3].error) == (
        Status.INVALID, "duplicate-contact",
        "Same phone 447700900123 as row 5 but different values; keep one of them.")
    assert by_row[5].error == (
        "Same phone 447700900123 as row 3 but different values; keep one of them.")


def test_three_rows_for_one_contact_name_each_other() -> None:
    sheet = sheet_of(*[("7", "", name, "", "", "") for name in ("A", "B", "A")])
    results = map_rows(sheet, MAPPING, ACCOUNT).results
    assert [r.error for r in results] == [
        "Same contact 7 as rows 3, 4 but different values; keep one of them.",
        "Same contact 7 as rows 2, 4 but different values; keep one of them.",
        "Same contact 7 as rows 2, 3 but different values; keep one of them.",
    ]


def test_every_row_is_covered_once_and_the_phone_normaliser_runs_once_per_value() -> None:
    calls: list[str] = []

    def counting(text: str) -> PhoneResult:
        calls.append(text)
        return normalise_phone(text, "GB")

    rows = [(str(i % 7 + 1), "07700 90012" + str(i % 3), "", "", "", "") for i in range(50)]
    mapped = map_rows(sheet_of(*rows), MAPPING, ACCOUNT, phone_func=counting)
    covered = sorted([d.row for d in mapped.desired] + [r.row for r in mapped.results])
    assert covered == list(range(2, 52))
    assert sorted(calls) == ["07700 900120", "07700 900121", "07700 900122"]


# --------------------------------------------------------------------------- generate


def test_generate_maps_well_known_names_and_fields() -> None:
    headers = ["Contact_ID", "Téléphone", "first_name", "CITY", "Segments", "Notes", "Mobile"]
    text, unmapped = generate_mapping(headers, ACCOUNT, default_country="de")
    raw = parse_mapping(text)
    assert raw.columns == {"Contact_ID": "id", "Téléphone": "phone",
                           "first_name": "field:First name", "CITY": "field:City",
                           "Segments": "groups"}
    assert raw.options["default_country"] == "DE"
    assert unmapped == ["Notes", "Mobile"]
    assert '# "Notes" = "field:..."' in text
    resolve_mapping(raw, headers, ACCOUNT)


def test_generate_escapes_odd_headers_and_warns_without_phone() -> None:
    headers = ['Say "hi"\\', "tab\there", "del\x7f"]
    text, unmapped = generate_mapping(headers, ACCOUNT, default_country=None)
    assert unmapped == headers
    assert "No column looks like a phone or a contact id" in text
    assert parse_mapping(text).columns == {}


def test_generate_rejects_a_bad_country() -> None:
    with pytest.raises(ConfigError, match="default_country = 'XX' is not a region code"):
        generate_mapping(["Phone"], ACCOUNT, default_country="XX")


def seed_account() -> Account:
    seed = json.loads((SAMPLES / "seed.json").read_text(encoding="utf-8"))
    return Account(tuple(Field(f["id"], f["name"], f["type"]) for f in seed["fields"]),
                   tuple(Group(g["id"], g["name"]) for g in seed["groups"]))


SAMPLE_SHEETS = ["contacts.csv", "contacts-eu.csv", "newsletter.xlsx"]


@pytest.mark.parametrize("name", SAMPLE_SHEETS)
def test_sample_sheets_map_cleanly(name: str) -> None:
    from bsg_sync.reader import read_sheet

    account = seed_account()
    sheet = read_sheet(SAMPLES / name)
    found = find_mapping_file(SAMPLES / name, SAMPLES)
    assert found is not None and found.stem == Path(name).stem
    mapping = resolve_mapping(load_mapping(found), sheet.headers, account)
    assert unmapped_headers(mapping, sheet.headers) == []
    mapped = map_rows(sheet, mapping, account)
    assert len(mapped.desired) + len(mapped.results) == len(sheet.rows)
    generated, _ = generate_mapping(sheet.headers, account, default_country="GB")
    resolve_mapping(parse_mapping(generated), sheet.headers, account)


def test_contacts_sample_has_the_advertised_problems() -> None:
    from bsg_sync.reader import read_sheet

    sheet = read_sheet(SAMPLES / "contacts.csv")
    mapping = resolve_mapping(load_mapping(SAMPLES / "contacts.toml"), sheet.headers,
                              seed_account())
    codes = sorted(r.error_code for r in map_rows(sheet, mapping, seed_account()).results)
    assert codes == ["duplicate-row", "invalid-phone", "phone-precision-lost"]


# --------------------------------------------------------------------------- bsg-sync init


@pytest.fixture(scope="module")
def emulator_url(module_emulator: Emulators) -> str:
    return module_emulator(SAMPLE_SEED, api_key="live_init_test").url


def run_init(tmp_path: Path, *args: str, key: str | None = "live_init_test") -> Result:
    from bsg_sync.cli import cli

    shutil.copy(SAMPLES / "contacts.csv", tmp_path / "contacts.csv")
    env = {"BSG_API_KEY": key, "BSG_API_URL": None}
    return CliRunner().invoke(cli, ["init", str(tmp_path / "contacts.csv"), *args], env=env)


def test_init_maps_fields_from_the_api(tmp_path: Path, emulator_url: str) -> None:
    result = run_init(tmp_path, "--api-url", emulator_url, "--default-country", "gb")
    assert result.exit_code == 0, result.output
    written = tmp_path / "bsg-sync.toml"
    assert result.stdout.splitlines() == [
        f"wrote {written} for contacts.csv",
        '  "Contact ID" -> id',
        '  "Mobile" -> phone',
        '  "First name" -> field:First name',
        '  "City" -> field:City',
        '  "Plan" -> field:Plan',
        '  "Lists" -> groups',
    ]
    assert result.stderr == ""
    raw = load_mapping(written)
    assert raw.options["default_country"] == "GB"
    from bsg_sync.reader import read_sheet

    mapping = resolve_mapping(raw, read_sheet(tmp_path / "contacts.csv").headers, seed_account())
    assert len(mapping.columns) == 6


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, emulator_url: str) -> None:
    out = tmp_path / "mine.toml"
    out.write_text("# keep me\n", encoding="utf-8")
    result = run_init(tmp_path, "--api-url", emulator_url, "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == f"bsg-sync: {out} already exists; pass --force to overwrite it\n"
    assert out.read_text(encoding="utf-8") == "# keep me\n"
    result = run_init(tmp_path, "--api-url", emulator_url, "-o", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert '"Mobile" = "phone"' in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(("args", "key"), [(("--offline",), "live_init_test"), ((), None)])
def test_init_offline_or_without_key_maps_well_known_names(
    tmp_path: Path, args: tuple[str, ...], key: str | None
) -> None:
    result = run_init(tmp_path, "--api-url", "http://127.0.0.1:9", *args, key=key)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: mapped well-known names only")
    assert result.stdout.splitlines()[1:] == [
        '  "Contact ID" -> id',
        '  "Mobile" -> phone',
        '  "Lists" -> groups',
        'not mapped (sync ignores them): "First name", "City", "Plan"',
    ]


def test_init_with_a_rejected_key_exits_3(tmp_path: Path, emulator_url: str) -> None:
    result = run_init(tmp_path, "--api-url", emulator_url, key="live_wrong")
    assert result.exit_code == 3
    assert result.stderr.startswith("bsg-sync: ") and "API Key not found" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "bsg-sync.toml").exists()


def test_init_with_a_bad_country_exits_2(tmp_path: Path) -> None:
    result = run_init(tmp_path, "--offline", "--default-country", "ZZ")
    assert result.exit_code == 2
    assert result.stderr == (
        "bsg-sync: mapping: option default_country = 'ZZ' is not a region code "
        "like 'GB', 'DE' or 'US'\n"
    )


@pytest.mark.parametrize("name", SAMPLE_SHEETS)
def test_a_second_sync_of_each_sample_sends_nothing(tmp_path: Path, name: str) -> None:
    from bsg_sync.cli import cli
    from bsg_sync.emulator import Emulator, EmulatorConfig

    for f in SAMPLES.iterdir():
        if f.suffix in (".csv", ".xlsx", ".toml"):
            shutil.copy(f, tmp_path / f.name)
    with Emulator(EmulatorConfig(), seed=SAMPLES / "seed.json") as emu:
        writes = []
        for run in ("first", "second"):
            args = ["sync", str(tmp_path / name), "--api-url", emu.url, "-q", "--no-rate-limit",
                    "--state", str(tmp_path / "state.db"), "--report", str(tmp_path / f"{run}.csv")]
            before = emu.stats()["writes"]
            result = CliRunner().invoke(cli, args, env={"BSG_API_KEY": "live_samples"})
            assert result.exit_code in (0, 1), result.output
            writes.append(emu.stats()["writes"] - before)
    assert writes[0] > 0
    assert writes[1] == 0


def test_problems_stay_one_per_line_when_headers_hold_line_breaks() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_mapping(parse_mapping('[columns]\n"Mobile\\nphone" = "phone"\n"Town" = "x"\n'),
                        ("0\x0c0",), ACCOUNT)
    lines = str(info.value).splitlines()
    assert lines[0] == "mapping has 4 problems:"
    assert all(line.startswith("  - ") for line in lines[1:])
    assert "column 'Mobile\\nphone' is not in the sheet" in str(info.value)
