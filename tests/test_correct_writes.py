"""What is written is what the sheet means against what BSG holds right now (issue: correct
writes): edits made in BSG during a run survive, one write per contact, more than 100 lists.

Every test runs a real sync against the emulator on 127.0.0.1; a colleague is a second real
client editing BSG between the tool's refresh and its writes (the `on_plan` hook fires after
the plan is made and before the first write).
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from kit import Emulators

from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.models import Contact, Status
from bsg_sync.state import StateStore
from bsg_sync.sync import Hooks, SyncOptions, run_sync

KEY = "live_correct_writes"
CITY, PLAN = 1, 2
NEWS, VIP, EXTRA = 10, 11, 12
FIRST_ID = 7_000_000
ROWS = 40
MANY_LISTS = 150  # a contact in more lists than one write's `groups` may carry (100)


def phone_of(n: int) -> str:
    return str(447800000000 + n)


def seed(lists_of_first: int = 1) -> dict[str, Any]:
    groups = [{"id": NEWS, "name": "News"}, {"id": VIP, "name": "VIP"},
              {"id": EXTRA, "name": "Extra"}]
    groups += [{"id": 1000 + g, "name": f"List {g}"} for g in range(MANY_LISTS + 1)]
    contacts = [{"id": FIRST_ID + n, "phone": int(phone_of(n)),
                 "fields": {str(CITY): "Old", str(PLAN): "Basic"}, "groups": [NEWS]}
                for n in range(ROWS)]
    if lists_of_first > 1:
        contacts[0]["groups"] = [1000 + g for g in range(lists_of_first)]
    return {"fields": [{"id": CITY, "name": "City", "type": "text"},
                       {"id": PLAN, "name": "Plan", "type": "text"}],
            "groups": groups, "contacts": contacts}


@pytest.fixture(params=["merge", "replace"])
def emu(request: pytest.FixtureRequest, emulator: Emulators) -> Emulator:
    return emulator(seed(), put_semantics=request.param)


def write_sheet(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def options(emu: Emulator, tmp_path: Path, sheet: Path, mapping: str, **kw: Any) -> SyncOptions:
    (tmp_path / "m.toml").write_text(mapping, encoding="utf-8")
    base = SyncOptions(sheet=sheet, mapping=tmp_path / "m.toml", state=tmp_path / "s.sqlite3",
                       api_url=emu.url, report=tmp_path / "r.jsonl", policy=RetryPolicy.fast(),
                       max_rps=None, concurrency=8)
    return replace(base, **kw)


CITY_BY_ID = '[columns]\n"Contact ID" = "id"\n"Mobile" = "phone"\n"City" = "field:City"\n'


def contact(emu: Emulator, cid: int) -> dict[str, Any]:
    return next(c for c in emu.contacts() if c["id"] == cid)


def fields_of(c: dict[str, Any]) -> dict[str, str]:
    f = c["fields"]
    return {str(k): v for k, v in f.items()} if isinstance(f, dict) else {
        str(i["id"]): i["value"] for i in f}


def groups_of(c: dict[str, Any]) -> set[int]:
    return {int(g["id"]) if isinstance(g, dict) else int(g) for g in c["groups"]}


class Colleague:
    """Someone else editing BSG through the API with plain requests (full-record PUTs)."""

    def __init__(self, emu: Emulator) -> None:
        self.url = emu.url
        self.session = requests.Session()
        token = self.session.post(f"{self.url}/api/auth/login", json={"api_key": "live_other"},
                                  timeout=10).json()["bearer"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def edit(self, cid: int, fields: dict[int, str], add_group: int | None = None) -> None:
        now = self.session.get(f"{self.url}/api/contacts/{cid}", timeout=10).json()["data"]
        values = {**fields_of(now), **{str(k): v for k, v in fields.items()}}
        groups = groups_of(now) | ({add_group} if add_group is not None else set())
        body = {"phone": now["phone"], "groups": sorted(groups),
                "fields": [{"id": int(k), "value": v} for k, v in values.items()]}
        self.session.put(f"{self.url}/api/contacts/{cid}", json=body,
                         timeout=10).raise_for_status()


def colleague_edits(emu: Emulator, ids: list[int]) -> None:
    """Someone changes the unmapped Plan field and adds a list."""
    other = Colleague(emu)
    for cid in ids:
        other.edit(cid, {PLAN: "Gold"}, add_group=EXTRA)


# --------------------------------------------------------------------------- fresh state


def test_edits_made_in_bsg_during_a_run_are_not_undone(emu: Emulator, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path / "c.csv", ["Contact ID", "Mobile", "City"],
                        [[str(FIRST_ID + n), "", f"Town {n}"] for n in range(ROWS)])
    edited = [FIRST_ID + n for n in range(0, ROWS, 4)]  # 10 contacts
    hooks = Hooks(on_plan=lambda _n: colleague_edits(emu, edited))
    outcome = run_sync(options(emu, tmp_path, sheet, CITY_BY_ID), KEY, hooks)
    assert outcome.summary.counts["ok"] == ROWS
    for n in range(ROWS):
        c = contact(emu, FIRST_ID + n)
        assert fields_of(c)[str(CITY)] == f"Town {n}"
        touched = FIRST_ID + n in edited
        assert fields_of(c)[str(PLAN)] == ("Gold" if touched else "Basic"), n
        assert groups_of(c) == ({NEWS, EXTRA} if touched else {NEWS}), n


def test_a_row_made_unnecessary_by_an_edit_in_bsg_sends_nothing(emu: Emulator,
                                                                tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path / "c.csv", ["Contact ID", "Mobile", "City"],
                        [[str(FIRST_ID), "", "Leeds"], [str(FIRST_ID + 1), "", "York"]])

    def same_edit(_n: int) -> None:
        Colleague(emu).edit(FIRST_ID, {CITY: "Leeds"})

    before = emu.stats()["requests"]["PUT"]
    outcome = run_sync(options(emu, tmp_path, sheet, CITY_BY_ID), KEY, Hooks(on_plan=same_edit))
    first, second = outcome.results
    assert (first.status, first.changes) == (Status.UNCHANGED, "")
    assert "already held" in first.error
    assert second.status is Status.OK
    assert emu.stats()["requests"]["PUT"] - before == 2  # the colleague's and row 3's


def test_offline_real_sync_writes_from_a_fresh_read_not_the_snapshot(emu: Emulator,
                                                                     tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path / "c.csv", ["Contact ID", "Mobile", "City"],
                        [[str(FIRST_ID + n), "", f"Town {n}"] for n in range(4)])
    opts = options(emu, tmp_path, sheet, CITY_BY_ID)
    assert run_sync(replace(opts, dry_run=True), KEY).summary.counts["planned"] == 4  # snapshot
    colleague_edits(emu, [FIRST_ID + 1])  # after the snapshot was taken
    outcome = run_sync(replace(opts, offline=True), KEY)
    assert outcome.summary.counts["ok"] == 4
    c = contact(emu, FIRST_ID + 1)
    assert fields_of(c)[str(PLAN)] == "Gold" and EXTRA in groups_of(c)
    assert fields_of(c)[str(CITY)] == "Town 1"


# --------------------------------------------------------------------------- one write per contact


def test_one_contact_by_id_and_by_phone_with_different_values_is_refused(
        emu: Emulator, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path / "c.csv", ["Contact ID", "Mobile", "City"],
                        [[str(FIRST_ID), "", "Leeds"], ["", "+44 7800 000000", "York"],
                         [str(FIRST_ID + 1), "", "Hull"]])
    opts = options(emu, tmp_path, sheet, CITY_BY_ID)
    for _ in range(2):  # never a write, however often it runs
        outcome = run_sync(opts, KEY)
        by_row = {r.row: r for r in outcome.results}
        assert (by_row[2].status, by_row[2].error_code) == (Status.INVALID, "duplicate-contact")
        assert (by_row[3].status, by_row[3].error_code) == (Status.INVALID, "duplicate-contact")
        assert "row 3" in by_row[2].error and "row 2" in by_row[3].error
    assert fields_of(contact(emu, FIRST_ID))[str(CITY)] == "Old"
    assert fields_of(contact(emu, FIRST_ID + 1))[str(CITY)] == "Hull"


def test_one_contact_by_id_and_by_phone_with_the_same_values_is_written_once(
        emu: Emulator, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path / "c.csv", ["Contact ID", "Mobile", "City"],
                        [[str(FIRST_ID), "", "Leeds"], ["", "+44 7800 000000", "Leeds"]])
    before = emu.stats()["requests"]["PUT"]
    outcome = run_sync(options(emu, tmp_path, sheet, CITY_BY_ID), KEY)
    first, second = outcome.results
    assert first.status is Status.OK
    assert (second.status, second.error_code) == (Status.UNCHANGED, "duplicate-row")
    assert emu.stats()["requests"]["PUT"] - before == 1


# --------------------------------------------------------------------------- more than 100 lists


@pytest.mark.parametrize("semantics", ["merge", "replace"])
def test_a_contact_in_more_than_100_lists_keeps_them_all(semantics: str,
                                                         tmp_path: Path) -> None:
    cfg = EmulatorConfig(put_semantics=semantics)
    with Emulator(cfg, seed=seed(lists_of_first=MANY_LISTS)) as emu:
        assert len(groups_of(contact(emu, FIRST_ID))) == MANY_LISTS
        sheet = write_sheet(tmp_path / "c.csv", ["Contact ID", "City", "Lists"],
                            [[str(FIRST_ID), "Leeds", f"List {MANY_LISTS}"]])
        mapping = '[columns]\n"Contact ID" = "id"\n"City" = "field:City"\n"Lists" = "groups"\n'
        outcome = run_sync(options(emu, tmp_path, sheet, mapping), KEY)
        (row,) = outcome.results
        assert row.status is Status.OK, row.error
        c = contact(emu, FIRST_ID)
        assert fields_of(c)[str(CITY)] == "Leeds"
        assert groups_of(c) == {1000 + g for g in range(MANY_LISTS + 1)}
        again = run_sync(options(emu, tmp_path, sheet, mapping, report=tmp_path / "2.jsonl"),
                         KEY)
        assert again.results[0].status is Status.UNCHANGED


def test_a_write_never_carries_more_than_100_list_ids(tmp_path: Path) -> None:
    from bsg_sync.wire import MAX_CONTACT_GROUPS, write_body

    before = Contact(1, "447800000000", {}, frozenset(range(1000, 1000 + MANY_LISTS)))
    target = replace(before, groups=before.groups | {5, 6})
    body = write_body(target, before)
    assert len(body["groups"]) == MAX_CONTACT_GROUPS
    assert {5, 6} <= set(body["groups"])  # what the write adds goes first
    assert json.dumps(body)  # plain JSON


# --------------------------------------------------------------------------- the emulator's hooks


def test_an_edit_right_after_the_refresh_read_survives_the_write(emu: Emulator,
                                                                 tmp_path: Path) -> None:
    """The emulator edits each contact right after the refresh's GET answered (the GET shows
    the old state): only the fresh read at send time can know of the edit."""
    ids = [FIRST_ID + n for n in range(3)]
    sheet = write_sheet(tmp_path / "c.csv", ["Contact ID", "Mobile", "City"],
                        [[str(cid), "", "Leeds"] for cid in ids])
    for cid in ids:
        emu.edit_after_get(cid, fields={str(PLAN): "Gold"}, groups_add=[EXTRA])
    outcome = run_sync(options(emu, tmp_path, sheet, CITY_BY_ID), KEY)
    assert emu.hooks()["applied_edits"] == 3  # each fired after the refresh's GET
    assert outcome.summary.counts["ok"] == 3
    for cid in ids:
        c = contact(emu, cid)
        assert (fields_of(c)[str(CITY)], fields_of(c)[str(PLAN)]) == ("Leeds", "Gold")
        assert groups_of(c) == {NEWS, EXTRA}


def test_an_answer_about_another_contact_fails_and_is_not_journalled(emu: Emulator,
                                                                     tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path / "c.csv", ["Contact ID", "Mobile", "City"],
                        [[str(FIRST_ID + 5), "", "Leeds"]])
    emu.answer_with_wrong_id(1)
    outcome = run_sync(options(emu, tmp_path, sheet, CITY_BY_ID, concurrency=1), KEY)
    (row,) = outcome.results
    assert (row.status, row.error_code) == (Status.FAILED, "not-applied")
    assert f"not contact {FIRST_ID + 5}" in row.error
    assert (row.contact_id, row.phone) == (FIRST_ID + 5, phone_of(5))  # ours, not the answer's
    with StateStore(tmp_path / "s.sqlite3") as store:
        known = store.load_known()
    assert all(k.written is None for k in known.values())  # nothing recorded as written
    assert all(k.seen.id == cid for cid, k in known.items())
