"""Bad input, fuzzed: whatever the sheet or mapping, `sync` never shows a traceback.

Each example runs `sync --offline --dry-run` in-process (CliRunner) against a snapshot pulled
once from an in-process emulator, so no network is needed while fuzzing. The outcome must be
either exit 2 with one `bsg-sync: ...` sentence on stderr, or a report (exit 0/1/3)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from kit import Emulators
from reliability_helpers import API_KEY, MAPPING, make_world

from bsg_sync.cli import cli
from bsg_sync.phones import normalise_phone

# FUZZ_EXAMPLES=2000 hunts longer (locally); the suite keeps to a few seconds.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
Quoting = Literal[0, 1, 2, 3]  # csv.QUOTE_*, as typeshed spells csv.writer's argument
HEADERS = ["Contact ID", "Mobile", "First name", "City", "Lists"]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory, module_emulator: Emulators) -> Path:
    """A state store with the account and contacts pulled from an emulator (then stopped)."""
    world = make_world(tmp_path_factory.mktemp("fuzz"), 20)
    emu = module_emulator(world.seed)
    pulled = CliRunner(env={"BSG_API_KEY": API_KEY}).invoke(
        cli, ["pull", "--api-url", emu.url, "--state", str(world.state)])
    emu.stop()
    assert pulled.exit_code == 0, pulled.output
    return world.state


def _dry_run(state: Path, sheet_bytes: bytes, suffix: str, mapping: str = MAPPING) -> None:
    """Run the offline dry run on these bytes and check the no-traceback contract."""
    with tempfile.TemporaryDirectory() as tmp:
        sheet = Path(tmp) / f"sheet{suffix}"
        sheet.write_bytes(sheet_bytes)
        mapping_path = Path(tmp) / "map.toml"
        mapping_path.write_text(mapping, encoding="utf-8", errors="surrogatepass")
        report = Path(tmp) / "report.jsonl"
        result = CliRunner(env={"BSG_API_KEY": None}).invoke(cli, [
            "sync", str(sheet), "--mapping", str(mapping_path), "--state", str(state),
            "--offline", "--dry-run", "--report", str(report)])
        _check_outcome(result, report)


def _check_outcome(result: Any, report: Path) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback: {result.exception!r}") from result.exception
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2, 3), result.output
    if currently_in_test_context():
        event(f"exit {result.exit_code}")  # --hypothesis-show-statistics shows the mix
    if result.exit_code == 2:
        lines = [ln for ln in result.stderr.splitlines() if not ln.startswith("warning: ")]
        # one sentence; a mapping with several problems lists them below it as "  - ..."
        assert lines and lines[0].startswith("bsg-sync: "), result.stderr
        assert all(ln.startswith("  - ") for ln in lines[1:] if ln.strip()), result.stderr
        assert not report.exists()
    else:
        rows = [json.loads(x) for x in report.read_text(encoding="utf-8-sig").splitlines()]
        assert all(r["status"] in ("planned", "unchanged", "invalid", "not_found")
                   for r in rows), rows


# --------------------------------------------------------------------------- sheets


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".txt", ".xlsx", ".xls",
                                                             ".ods", ".xlsm"]))
def test_random_bytes_as_a_sheet(snapshot: Path, data: bytes, suffix: str) -> None:
    _dry_run(snapshot, data, suffix)


CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["248500001", "248500003", "+44 7700 900001", "07700900002", "4.47712E+11",
                     "", " ", "Newsletter; VIP", "Nope", "=1+1", "0044 7700 900004", "ç€ü"]),
)


@FUZZ
@given(
    rows=st.lists(st.lists(CELL, min_size=0, max_size=6), max_size=8),
    headers=st.one_of(st.just(HEADERS), st.lists(st.text(max_size=10), max_size=6)),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_random_csv_dialects_and_encodings(
    snapshot: Path, rows: list[list[str]], headers: list[str], delimiter: str, quoting: Quoting,
    encoding: str, newline: str,
) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, quoting=quoting, lineterminator=newline)
    writer.writerow(headers)
    writer.writerows(rows)
    _dry_run(snapshot, buf.getvalue().encode(encoding, errors="replace"), ".csv")


# Below about -1e13 a date/time-formatted number makes python-calamine panic; the reader turns
# that into exit 2 (test_a_huge_negative_number_in_a_date_cell_is_exit_2).
XLSX_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**17), 10**17),
    st.floats(allow_infinity=False), st.just(float("nan")),
    st.text(max_size=10).map(lambda s: "".join(c for c in s if c.isprintable())),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2100, 1, 1)),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(2100, 1, 1)),
    st.times(), st.sampled_from(["=1+1", "=A1", 447700900001, 4.47712e11, "248500002"]),
)
FORMATS = st.sampled_from(["General", "@", "00000000000", "0.00E+00", "0.00", "yyyy-mm-dd",
                           "hh:mm", "#,##0", "0%"])


@pytest.mark.slow
@FUZZ
@given(
    cells=st.lists(st.lists(st.tuples(XLSX_VALUE, FORMATS), max_size=6), max_size=6),
    header_first=st.booleans(),
)
def test_random_xlsx_cell_types(
    snapshot: Path, cells: list[list[tuple[Any, str]]], header_first: bool
) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    if header_first:
        ws.append(HEADERS)
    for row in cells:
        ws.append([v for v, _ in row])
        for cell, (_, fmt) in zip(ws[ws.max_row], row, strict=False):
            cell.number_format = fmt
    buf = io.BytesIO()
    wb.save(buf)
    _dry_run(snapshot, buf.getvalue(), ".xlsx")


@pytest.mark.parametrize("fmt", ["yyyy-mm-dd", "hh:mm"])
def test_a_huge_negative_number_in_a_date_cell_is_exit_2(snapshot: Path, fmt: str) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADERS)
    ws.append([248500001, "+44 7700 900001", "Neu1", -(10**16), "VIP"])
    ws["D2"].number_format = fmt
    buf = io.BytesIO()
    wb.save(buf)
    _dry_run(snapshot, buf.getvalue(), ".xlsx")


# --------------------------------------------------------------------------- mappings

GOOD_SHEET = ("\n".join([",".join(HEADERS), "248500001,+44 7700 900001,Neu1,Leeds,VIP",
                         ",07700900002,,York,"]) + "\n").encode()
TARGET = st.one_of(
    st.sampled_from(["id", "phone", "groups", "field:City", "field:First name", "field:Nope",
                     "fields", "", "ID", "Phone"]),
    st.integers(-5, 400000), st.booleans(), st.floats(allow_nan=False),
    st.fixed_dictionaries({"target": st.sampled_from(["field:City", "phone", "x", 387701])},
                          optional={"blank": st.sampled_from(["keep", "clear", "maybe", 3])}),
)
OPTION = st.fixed_dictionaries({}, optional={
    "default_country": st.sampled_from(["GB", "gb", "XX", "", 44]),
    "blank": st.sampled_from(["keep", "clear", "other", 1]),
    "groups": st.sampled_from(["add", "exact", "all", 0]),
    "header_row": st.one_of(st.integers(-2, 5), st.text(max_size=3)),
    "unknown": st.just(1),
})


def _toml_value(v: Any) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


@FUZZ
@given(
    columns=st.dictionaries(st.sampled_from([*HEADERS, "Missing", "", "city"]), TARGET,
                            max_size=6),
    options=OPTION,
)
def test_random_mapping_files(snapshot: Path, columns: dict[str, Any],
                              options: dict[str, Any]) -> None:
    lines = ["[columns]", *(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in columns.items()),
             "", "[options]", *(f"{k} = {_toml_value(v)}" for k, v in options.items())]
    _dry_run(snapshot, GOOD_SHEET, ".csv", "\n".join(lines) + "\n")


@FUZZ
@given(text=st.text(max_size=200))
def test_random_text_as_a_mapping_file(snapshot: Path, text: str) -> None:
    _dry_run(snapshot, GOOD_SHEET, ".csv", text)


# --------------------------------------------------------------------------- phones


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40), country=st.one_of(st.none(), st.sampled_from(
    ["GB", "DE", "US", "gb", "XX", "", "ZZZ", "001"])))
def test_normalise_phone_never_raises(text: str, country: str | None) -> None:
    result = normalise_phone(text, country)
    digits = getattr(result, "digits", None) or getattr(result, "phone", None)
    if isinstance(digits, str):
        assert digits.isdigit() and 9 <= len(digits) <= 15, result
