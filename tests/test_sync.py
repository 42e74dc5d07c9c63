"""The pipeline end to end (run_sync) on every sample sheet, against the real emulator.

The expected outcome is computed here from the seed, the sheet and the mapping by a small
oracle written without the product's mapping/phones/differ code, so a wrong plan or a wrong
write shows up as a difference between the two.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from kit import Emulators

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.errors import AuthFailed, LockHeld, TooManyChanges, Unreachable, UsageError
from bsg_sync.models import Status, Threshold
from bsg_sync.reader import read_sheet
from bsg_sync.state import StateStore
from bsg_sync.sync import Hooks, SyncOptions, SyncOutcome, run_sync

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"
SEED_PATH = SAMPLES / "seed.json"
KEY = "live_sync_tests"
SHEETS = [
    ("contacts.csv", "contacts.toml"),
    ("contacts-eu.csv", "contacts-eu.toml"),
    ("newsletter.xlsx", "newsletter.toml"),
]
# Country code and national significant number length of the sample sheets' regions.
REGIONS = {"GB": ("44", 10), "ES": ("34", 9)}

# --------------------------------------------------------------------------- the oracle


@dataclass(frozen=True)
class Book:
    """A contact book as plain values: id -> (phone digits, {field id: value}, {list ids})."""

    contacts: dict[int, tuple[str, dict[int, str], frozenset[int]]]
    field_ids: dict[str, int]
    group_ids: dict[str, int]

    def by_phone(self, phone: str) -> int | None:
        for cid, (p, _f, _g) in self.contacts.items():
            if p == phone:
                return cid
        return None


def _fields(raw: Any) -> dict[int, str]:
    items = raw.items() if isinstance(raw, dict) else [(f["id"], f["value"]) for f in raw or []]
    return {int(k): str(v) for k, v in items if v not in (None, "")}


def _groups(raw: Any) -> frozenset[int]:
    return frozenset(int(g["id"]) if isinstance(g, dict) else int(g) for g in raw or [])


def book_of(contacts: list[dict[str, Any]], seed: dict[str, Any]) -> Book:
    return Book(
        {int(c["id"]): (str(c["phone"]), _fields(c.get("fields")), _groups(c.get("groups")))
         for c in contacts},
        {f["name"]: int(f["id"]) for f in seed["fields"]},
        {g["name"]: int(g["id"]) for g in seed["groups"]},
    )


def seed_book() -> Book:
    seed = json.loads(SEED_PATH.read_text(encoding="utf-8"))
    return book_of(seed["contacts"], seed)


def oracle_phone(cell: str, country: str | None) -> str | None:
    """Digits of a phone cell, or None when it is not a usable number."""
    text = cell.strip()
    if "e" in text.lower():
        return None
    digits = re.sub(r"\D", "", text)
    if digits.startswith("00"):
        digits = digits[2:]
    elif not text.startswith("+") and country in REGIONS:
        code, nsn = REGIONS[country]
        national = digits[1:] if digits.startswith("0") else digits
        if len(national) == nsn:
            digits = code + national
    return digits if 9 <= len(digits) <= 15 else None


@dataclass(frozen=True)
class Wish:
    row: int
    contact_id: int | None
    phone: str | None
    fields: dict[int, str | None]  # None: clear
    groups: frozenset[int] | None


def _column_targets(mapping: dict[str, Any], book: Book) -> dict[str, tuple[str, int | None, str]]:
    """header -> (kind, field id, blank) from the TOML, resolved against the seed."""
    default_blank = mapping.get("options", {}).get("blank", "keep")
    out: dict[str, tuple[str, int | None, str]] = {}
    for header, spec in mapping["columns"].items():
        blank = default_blank
        if isinstance(spec, dict):
            blank = spec.get("blank", blank)
            spec = spec["target"]
        if isinstance(spec, int):
            out[header] = ("field", spec, blank)
        elif spec.startswith("field:"):
            out[header] = ("field", book.field_ids[spec[6:]], blank)
        else:
            out[header] = (spec, None, blank)
    return out


def expected_statuses(sheet_path: Path, mapping_path: Path, book: Book
                      ) -> tuple[dict[int, str], Book]:
    """Row -> status a real sync should report, and the book after it."""
    mapping = tomllib.loads(mapping_path.read_text(encoding="utf-8"))
    options = mapping.get("options", {})
    country, exact = options.get("default_country"), options.get("groups") == "exact"
    targets = _column_targets(mapping, book)
    sheet = read_sheet(sheet_path)
    statuses: dict[int, str] = {}
    wishes: list[Wish] = []
    for r in sheet.rows:
        cells = dict(zip(sheet.headers, r.values, strict=True))
        if not any(v.strip() for v in r.values):
            continue
        wish = _wish(r.row, cells, targets, book, country)
        if isinstance(wish, str):
            statuses[r.row] = wish
        else:
            wishes.append(wish)
    after = {cid: (p, dict(f), g) for cid, (p, f, g) in book.contacts.items()}
    by_contact: dict[int, list[Wish]] = {}
    for w in wishes:
        assert w.contact_id is not None
        by_contact.setdefault(w.contact_id, []).append(w)
    for cid, group in by_contact.items():
        if any(_key(w) != _key(group[0]) for w in group):
            statuses.update({w.row: "invalid" for w in group})
            continue
        for w in group[1:]:
            statuses[w.row] = "unchanged"
        w = group[0]
        new = _apply(book.contacts[cid], w, exact)
        statuses[w.row] = "ok" if new != book.contacts[cid] else "unchanged"
        after[cid] = new
    return statuses, replace(book, contacts=after)


def _key(w: Wish) -> tuple[Any, ...]:
    return (w.phone, sorted(w.fields.items(), key=lambda kv: kv[0]), w.groups)


def _wish(row: int, cells: dict[str, str], targets: dict[str, tuple[str, int | None, str]],
          book: Book, country: str | None) -> Wish | str:
    cid: int | None = None
    phone: str | None = None
    fields: dict[int, str | None] = {}
    groups: frozenset[int] | None = None
    for header, (kind, fid, blank) in targets.items():
        value = cells[header].strip()
        if kind == "id" and value:
            cid = int(value)
        elif kind == "phone" and value:
            phone = oracle_phone(value, country)
            if phone is None:
                return "invalid"
        elif kind == "groups" and value:
            groups = frozenset(book.group_ids[n.strip()] for n in re.split("[,;]", value)
                               if n.strip())
        elif kind == "field" and fid is not None and (value or blank == "clear"):
            fields[fid] = value or None
    if cid is None and phone is None:
        return "invalid"
    if cid is None:
        assert phone is not None
        cid = book.by_phone(phone)
    if cid is None or cid not in book.contacts:
        return "not_found"
    return Wish(row, cid, phone, fields, groups)


def _apply(old: tuple[str, dict[int, str], frozenset[int]], w: Wish, exact: bool
           ) -> tuple[str, dict[int, str], frozenset[int]]:
    phone, fields, groups = old
    fields = dict(fields)
    for fid, value in w.fields.items():
        if value is None:
            fields.pop(fid, None)
        else:
            fields[fid] = value
    if w.groups is not None:
        groups = w.groups if exact else groups | w.groups
    return (w.phone or phone, fields, groups)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def emu(module_emulator: Emulators) -> Emulator:
    return module_emulator(SEED_PATH)


@pytest.fixture()
def fresh(emu: Emulator) -> Emulator:
    emu.reset()
    return emu


def _options(emu: Emulator, tmp_path: Path, sheet: str, mapping: str, **kw: Any) -> SyncOptions:
    base: dict[str, Any] = {
        "sheet": SAMPLES / sheet,
        "mapping": SAMPLES / mapping,
        "state": tmp_path / "state.sqlite3",
        "api_url": emu.url,
        "report": tmp_path / "report.jsonl",
        "policy": RetryPolicy.fast(),
        "max_rps": None,
        "concurrency": 4,
    }
    base.update(kw)
    return SyncOptions(**base)


def _report(path: Path) -> dict[int, dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {rec["row"]: rec for rec in map(json.loads, lines)}


def _writes(emu: Emulator) -> int:
    return int(emu.stats()["writes"])


def _gets(emu: Emulator) -> int:
    return int(emu.stats()["requests"]["GET"])


def _statuses(outcome: SyncOutcome) -> dict[int, str]:
    return {r.row: r.status.value for r in outcome.results}


# --------------------------------------------------------------------------- every sample sheet


@pytest.mark.parametrize(("sheet", "mapping"), SHEETS)
def test_dry_run_plans_exactly_the_differences_and_sends_nothing(
        fresh: Emulator, tmp_path: Path, sheet: str, mapping: str) -> None:
    want, _ = expected_statuses(SAMPLES / sheet, SAMPLES / mapping, seed_book())
    planned = {row: ("planned" if s == "ok" else s) for row, s in want.items()}
    opts = _options(fresh, tmp_path, sheet, mapping, dry_run=True)
    outcome = run_sync(opts, KEY)
    assert _writes(fresh) == 0
    assert {row: rec["status"] for row, rec in _report(tmp_path / "report.jsonl").items()} \
        == planned
    assert _statuses(outcome) == planned
    assert "planned" in planned.values()  # each sample has something to change
    failing = {"invalid", "not_found"} & set(want.values())
    assert int(outcome.exit_code) == (1 if failing else 0)


@pytest.mark.parametrize(("sheet", "mapping"), SHEETS)
def test_sync_makes_the_book_equal_the_sheet_then_a_second_sync_sends_nothing(
        fresh: Emulator, tmp_path: Path, sheet: str, mapping: str) -> None:
    seed = json.loads(SEED_PATH.read_text(encoding="utf-8"))
    want, after = expected_statuses(SAMPLES / sheet, SAMPLES / mapping, seed_book())
    opts = _options(fresh, tmp_path, sheet, mapping)
    first = run_sync(opts, KEY)
    assert _statuses(first) == want
    assert book_of(fresh.contacts(), seed).contacts == after.contacts
    assert _writes(fresh) == sum(1 for s in want.values() if s == "ok")
    failing = {"invalid", "not_found"} & set(want.values())
    assert int(first.exit_code) == (1 if failing else 0)

    writes = _writes(fresh)
    second = run_sync(replace(opts, report=tmp_path / "second.jsonl"), KEY)
    assert _writes(fresh) == writes
    assert "ok" not in _statuses(second).values()
    assert "planned" not in _statuses(second).values()
    again = run_sync(replace(opts, dry_run=True, report=tmp_path / "third.jsonl"), KEY)
    assert "planned" not in _statuses(again).values()
    assert _writes(fresh) == writes


def test_oracle_knows_the_contacts_sheet() -> None:
    """The oracle itself, pinned on the rows the sample was written to exercise."""
    want, _ = expected_statuses(SAMPLES / "contacts.csv", SAMPLES / "contacts.toml",
                                seed_book())
    assert want[6] == "invalid"  # 4.47712E+11
    assert want[14] == "invalid"  # 07700 90
    assert want[44] == "not_found"
    assert want[37] == "unchanged"  # identical duplicate of row 35
    assert 33 not in want  # blank row
    assert sum(1 for s in want.values() if s == "ok") == 11


# --------------------------------------------------------------------------- options


def test_max_changes_refuses_before_sending(fresh: Emulator, tmp_path: Path) -> None:
    opts = _options(fresh, tmp_path, "contacts.csv", "contacts.toml",
                    max_changes=Threshold.parse("5"))
    with pytest.raises(TooManyChanges, match="changes 11 of 42 rows"):
        run_sync(opts, KEY)
    assert _writes(fresh) == 0


def test_max_failures_aborts_and_leaves_the_rest_not_sent(fresh: Emulator,
                                                          tmp_path: Path) -> None:
    opts = _options(fresh, tmp_path, "contacts.csv", "contacts.toml", concurrency=1,
                    max_failures=Threshold.parse("1"),
                    policy=replace(RetryPolicy.fast(), max_attempts=1))
    # The sending (not the refresh before it) meets the errors: script them once it starts.
    hooks = Hooks(on_plan=lambda _n: fresh.inject("500", "500", "500"))
    outcome = run_sync(opts, KEY, hooks)
    assert outcome.aborted is not None and int(outcome.exit_code) == 3
    assert "max-failures" in str(outcome.aborted) or "failures" in str(outcome.aborted)
    counts = outcome.summary.counts
    assert (counts["failed"], counts["ok"], counts["not_sent"]) == (2, 0, 9)
    report = _report(tmp_path / "report.jsonl")
    assert sum(1 for r in report.values() if r["status"] == "not_sent") == 9
    assert _writes(fresh) == 0  # the faults met the rows' fresh GETs: no PUT went out


def test_wrong_api_key_is_refused(tmp_path: Path) -> None:
    with Emulator(EmulatorConfig(api_key="live_right"), seed=SEED_PATH) as emu:
        opts = _options(emu, tmp_path, "contacts.csv", "contacts.toml")
        with pytest.raises(AuthFailed, match="API Key not found"):
            run_sync(opts, "live_wrong")
        assert _writes(emu) == 0


def test_unreachable_api_is_refused(tmp_path: Path) -> None:
    with Emulator() as emu:
        url = emu.url  # a port that was just free and is closed again below
    opts = SyncOptions(sheet=SAMPLES / "contacts.csv", mapping=SAMPLES / "contacts.toml",
                       state=tmp_path / "s.sqlite3", api_url=url, report=tmp_path / "r.jsonl",
                       policy=replace(RetryPolicy.fast(), max_attempts=2))
    with pytest.raises(Unreachable, match="cannot reach the BSG API"):
        run_sync(opts, KEY)


def test_lock_held_by_a_live_process_refuses(fresh: Emulator, tmp_path: Path) -> None:
    opts = _options(fresh, tmp_path, "contacts.csv", "contacts.toml")
    with StateStore(opts.state) as holder:
        holder.acquire_lock()
        info = holder.lock_holder()
        assert info is not None
        with pytest.raises(LockHeld) as exc:
            run_sync(opts, KEY)
    assert f"pid {info.pid}" in str(exc.value)
    assert info.host in str(exc.value) and info.started_at in str(exc.value)
    assert _writes(fresh) == 0


def test_stale_lock_of_a_dead_process_is_taken_over(fresh: Emulator, tmp_path: Path) -> None:
    opts = _options(fresh, tmp_path, "contacts.csv", "contacts.toml")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    with StateStore(opts.state) as store:
        store.acquire_lock()
        me = store.lock_holder()
        assert me is not None
        store._conn.execute("UPDATE lock SET pid = ?", (pid,))  # as a killed sync leaves it
        store._conn.commit()
        store._holds_lock = False
    outcome = run_sync(opts, KEY)
    assert outcome.summary.counts["ok"] == 11
    with StateStore(opts.state) as store:
        assert store.lock_holder() is None


def test_offline_dry_run_after_pull_sends_no_request(fresh: Emulator, tmp_path: Path) -> None:
    from bsg_sync.client import BsgClient
    from bsg_sync.refresh import pull_all

    state = tmp_path / "state.sqlite3"
    with BsgClient(fresh.url, KEY, policy=RetryPolicy.fast()) as client, \
            StateStore(state) as store:
        pull_all(client, store)
    online = run_sync(_options(fresh, tmp_path, "contacts.csv", "contacts.toml",
                               dry_run=True, report=tmp_path / "online.jsonl"), KEY)
    before = fresh.stats()["requests"]
    offline = run_sync(_options(fresh, tmp_path, "contacts.csv", "contacts.toml",
                                dry_run=True, offline=True), None)
    assert fresh.stats()["requests"] == before
    assert _statuses(offline) == _statuses(online)


def test_create_missing_creates_the_not_found_row(fresh: Emulator, tmp_path: Path) -> None:
    opts = _options(fresh, tmp_path, "contacts.csv", "contacts.toml", create_missing=True)
    outcome = run_sync(opts, KEY)
    row = next(r for r in outcome.results if r.row == 44)
    assert (row.status, row.action.value) == (Status.OK, "create")
    created = [c for c in fresh.contacts() if str(c["phone"]) == "447700900461"]
    assert len(created) == 1 and created[0]["id"] == row.contact_id
    seed = json.loads(SEED_PATH.read_text(encoding="utf-8"))
    _phone, fields, groups = book_of(created, seed).contacts[created[0]["id"]]
    assert fields == {387714: "Priya", 387716: "Leeds", 387718: "Basic"}
    assert groups == {1864618}
    second = run_sync(replace(opts, report=tmp_path / "again.jsonl"), KEY)
    assert next(r for r in second.results if r.row == 44).status is Status.UNCHANGED


def _write_sheet(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def test_groups_exact_removes_unlisted_lists(fresh: Emulator, tmp_path: Path) -> None:
    sheet = _write_sheet(tmp_path / "exact.csv", ["Contact ID", "Lists"], [
        ["248400004", "Spring promo"],  # seed: Newsletter + Spring promo
        ["248400001", "VIP"],  # seed: Newsletter + Leeds store
    ])
    mapping = tmp_path / "exact.toml"
    mapping.write_text('[columns]\n"Contact ID" = "id"\n"Lists" = "groups"\n'
                       '[options]\ngroups = "exact"\n', encoding="utf-8")
    opts = SyncOptions(sheet=sheet, mapping=mapping, state=tmp_path / "s.sqlite3",
                       api_url=fresh.url, report=tmp_path / "r.jsonl",
                       policy=RetryPolicy.fast(), max_rps=None)
    outcome = run_sync(opts, KEY)
    assert {r.row: r.status for r in outcome.results} == {2: Status.OK, 3: Status.OK}
    seed = json.loads(SEED_PATH.read_text(encoding="utf-8"))
    book = book_of(fresh.contacts(), seed)
    assert book.contacts[248400004][2] == {1864621}
    assert book.contacts[248400001][2] == {1864619}
    assert book.contacts[248400001][1] == seed_book().contacts[248400001][1]
    assert "−list Newsletter" in next(r.changes for r in outcome.results if r.row == 2)


def test_drift_is_reported_and_keep_drift_keeps_bsg_value(fresh: Emulator,
                                                          tmp_path: Path) -> None:
    from bsg_sync.client import BsgClient

    sheet = _write_sheet(tmp_path / "d.csv", ["Contact ID", "City"], [["248400002", "Bath"]])
    mapping = tmp_path / "d.toml"
    mapping.write_text('[columns]\n"Contact ID" = "id"\n"City" = "field:City"\n',
                       encoding="utf-8")
    opts = SyncOptions(sheet=sheet, mapping=mapping, state=tmp_path / "s.sqlite3",
                       api_url=fresh.url, report=tmp_path / "r.jsonl",
                       policy=RetryPolicy.fast(), max_rps=None)
    assert run_sync(opts, KEY).summary.counts["ok"] == 1

    def city() -> str:
        c = next(c for c in fresh.contacts() if c["id"] == 248400002)
        return str(c["fields"]["387716"])

    with BsgClient(fresh.url, KEY, policy=RetryPolicy.fast()) as client:  # someone edits BSG
        now = client.get_contact(248400002)
        assert now is not None
        client.update_contact(replace(now, fields={**now.fields, 387716: "Derby"}), now)
    assert city() == "Derby"

    planned = run_sync(replace(opts, dry_run=True, report=tmp_path / "p.jsonl"), KEY)
    row = planned.results[0]
    assert row.status is Status.PLANNED and "Derby" in row.changes and "Bath" in row.changes
    assert "changed in BSG since last sync" in row.changes

    kept = run_sync(replace(opts, keep_drift=True, report=tmp_path / "k.jsonl"), KEY)
    assert kept.results[0].status is Status.UNCHANGED
    assert city() == "Derby"
    won = run_sync(replace(opts, report=tmp_path / "w.jsonl"), KEY)
    assert won.results[0].status is Status.OK
    assert city() == "Bath"


def test_errors_file_round_trip(fresh: Emulator, tmp_path: Path) -> None:
    errors = tmp_path / "contacts.errors.csv"
    opts = _options(fresh, tmp_path, "contacts.csv", "contacts.toml", errors=errors)
    first = run_sync(opts, KEY)
    assert int(first.exit_code) == 1
    with errors.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    assert header[-2:] == ["error_code", "error"]
    assert [r[header.index("error_code")] for r in rows[1:]] == \
        ["phone-precision-lost", "invalid-phone", "not-found"]
    fixes = {"248400005": "+447155640352", "248400013": "+447700900999"}
    for r in rows[1:]:
        if r[0] in fixes:
            r[1] = fixes[r[0]]
    fixed = _write_sheet(tmp_path / "fixed.csv", rows[0], rows[1:])
    warnings: list[str] = []
    second = run_sync(
        replace(opts, sheet=fixed, errors=tmp_path / "fixed.errors.csv", create_missing=True,
                report=tmp_path / "fixed.jsonl"),
        KEY, Hooks(on_warning=warnings.append))
    assert {r.row: r.status for r in second.results} == \
        {2: Status.UNCHANGED, 3: Status.OK, 4: Status.OK}
    assert not any("error" in w for w in warnings), warnings
    assert int(second.exit_code) == 0
    phones = {c["id"]: str(c["phone"]) for c in fresh.contacts()}
    assert phones[248400013] == "447700900999"


@pytest.mark.parametrize(("report_name", "message"), [
    ("out.pdf", "--report must end in .xlsx, .csv or .jsonl"),
    ("missing/out.csv", "--report: directory"),
])
def test_a_bad_report_path_is_refused_before_anything_is_sent(
        tmp_path: Path, report_name: str, message: str) -> None:
    with Emulator(seed=SAMPLES / "seed.json") as emu:
        opts = SyncOptions(sheet=SAMPLES / "contacts.csv", mapping=SAMPLES / "contacts.toml",
                           state=tmp_path / "s.sqlite3", api_url=emu.url,
                           report=tmp_path / report_name, policy=RetryPolicy.fast())
        with pytest.raises(UsageError, match=message):
            run_sync(opts, KEY)
        assert sum(emu.stats()["requests"].values()) == 0


def test_missing_api_key_is_a_usage_error(tmp_path: Path) -> None:
    opts = SyncOptions(sheet=SAMPLES / "contacts.csv", mapping=SAMPLES / "contacts.toml",
                       state=tmp_path / "s.sqlite3", api_url="http://127.0.0.1:9")
    with pytest.raises(UsageError, match="no API key"):
        run_sync(opts, None)


def test_phone_only_sheet_on_a_cold_state_lists_the_book_instead_of_searching_each_phone(
        tmp_path: Path) -> None:
    """300 phone-only rows, no snapshot: one list page resolves them all; 300 searches do not.

    Each phone the snapshot cannot place costs a search; the refresh weighs those searches
    against the listing (100k phone-only rows would otherwise be 100k GETs).
    """
    n = 300
    seed = {"fields": [{"id": 1, "name": "City", "type": "text"}], "groups": [],
            "contacts": [{"id": 1000 + i, "phone": 447700000000 + i, "fields": {"1": "A"},
                          "groups": []} for i in range(n)]}
    sheet = _write_sheet(tmp_path / "phones.csv", ["Phone", "City"],
                         [[f"+{447700000000 + i}", "A"] for i in range(n)])
    mapping = tmp_path / "phones.toml"
    mapping.write_text('[columns]\n"Phone" = "phone"\n"City" = "field:City"\n', encoding="utf-8")
    with Emulator(seed=seed) as emu:
        opts = SyncOptions(sheet=sheet, mapping=mapping, state=tmp_path / "s.sqlite3",
                           api_url=emu.url, report=tmp_path / "r.jsonl", dry_run=True,
                           policy=RetryPolicy.fast(), max_rps=None)
        outcome = run_sync(opts, KEY)
        assert outcome.summary.counts["unchanged"] == n
        # fields + lists + (count) + one page of 500
        assert _gets(emu) <= 4, f"{_gets(emu)} GETs for {n} rows that fit one list page"
