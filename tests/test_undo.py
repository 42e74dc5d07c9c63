"""Undo a run (issue: undo): every confirmed write is journalled with its pre-image, so a run
can be put back; tests against the emulator on 127.0.0.1, both PUT semantics."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kit import Emulators

from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator
from bsg_sync.errors import UsageError
from bsg_sync.models import Action, Contact, Status
from bsg_sync.state import StateStore
from bsg_sync.sync import SyncOptions, run_sync
from bsg_sync.undo import UndoOptions, run_undo

KEY = "live_undo"
CITY, PLAN = 1, 2
NEWS, VIP = 10, 11
FIRST_ID = 8_000_000
ROWS = 6


def phone_of(n: int) -> str:
    return str(447900000000 + n)


SEED: dict[str, Any] = {
    "fields": [{"id": CITY, "name": "City", "type": "text"},
               {"id": PLAN, "name": "Plan", "type": "text"}],
    "groups": [{"id": NEWS, "name": "News"}, {"id": VIP, "name": "VIP"}],
    "contacts": [{"id": FIRST_ID + n, "phone": int(phone_of(n)),
                  "fields": {str(CITY): f"Old {n}", str(PLAN): "Basic"}, "groups": [NEWS]}
                 for n in range(ROWS)],
}
MAPPING = ('[columns]\n"Contact ID" = "id"\n"Mobile" = "phone"\n"City" = "field:City"\n'
           '"Lists" = "groups"\n')


@pytest.fixture(params=["merge", "replace"])
def emu(request: pytest.FixtureRequest, emulator: Emulators) -> Emulator:
    return emulator(SEED, put_semantics=request.param)


def sync_sheet(emu: Emulator, tmp_path: Path, rows: list[list[str]], **kw: Any) -> Any:
    sheet = tmp_path / "c.csv"
    with sheet.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["Contact ID", "Mobile", "City", "Lists"], *rows])
    (tmp_path / "m.toml").write_text(MAPPING, encoding="utf-8")
    opts = SyncOptions(sheet=sheet, mapping=tmp_path / "m.toml", state=tmp_path / "s.sqlite3",
                       api_url=emu.url, report=tmp_path / "r.jsonl", policy=RetryPolicy.fast(),
                       max_rps=None)
    return run_sync(replace(opts, **kw), KEY)


def test_every_confirmed_write_is_journalled_with_its_pre_image(emu: Emulator,
                                                                tmp_path: Path) -> None:
    outcome = sync_sheet(emu, tmp_path, [
        [str(FIRST_ID), "", "Leeds", "VIP"],
        [str(FIRST_ID + 1), "", "Old 1", ""],  # unchanged: no write, no pre-image
        ["", "+44 7900 000099", "York", "News"],  # created
    ], create_missing=True)
    assert outcome.summary.counts["ok"] == 2
    with StateStore(tmp_path / "s.sqlite3") as store:
        writes = store.run_writes(outcome.summary.run_id)
    assert [w.row for w in writes] == [2, 4]
    first, created = writes
    assert first.before == Contact(FIRST_ID, phone_of(0), {CITY: "Old 0", PLAN: "Basic"},
                                   frozenset({NEWS}))
    assert first.after == Contact(FIRST_ID, phone_of(0), {CITY: "Leeds", PLAN: "Basic"},
                                  frozenset({NEWS, VIP}))
    assert created.before is None and created.after.fields == {CITY: "York"}


# --------------------------------------------------------------------------- undo


def book(emu: Emulator) -> dict[int, tuple[str, dict[str, str], set[int]]]:
    out = {}
    for c in emu.contacts():
        f = c["fields"]
        fields = {str(k): v for k, v in f.items()} if isinstance(f, dict) else {}
        groups = {int(g["id"]) if isinstance(g, dict) else int(g) for g in c["groups"]}
        out[int(c["id"])] = (str(c["phone"]), fields, groups)
    return out


def undo(emu: Emulator, tmp_path: Path, run_id: int, name: str = "u", **kw: Any) -> Any:
    opts = UndoOptions(run_id=run_id, state=tmp_path / "s.sqlite3", api_url=emu.url,
                       report=tmp_path / f"{name}.jsonl", policy=RetryPolicy.fast(),
                       max_rps=None)
    return run_undo(replace(opts, **kw), KEY)


SHEET = [
    [str(FIRST_ID), "", "Leeds", "VIP"],
    [str(FIRST_ID + 1), "+44 7900 000077", "York", ""],  # a phone change
    [str(FIRST_ID + 2), "", "", ""],  # nothing to do
    [str(FIRST_ID + 3), "", "Hull", "VIP"],
]


def test_undo_puts_every_contact_back_as_before_the_sync(emu: Emulator, tmp_path: Path) -> None:
    before = book(emu)
    synced = sync_sheet(emu, tmp_path, SHEET)
    assert synced.summary.counts["ok"] == 3
    assert book(emu) != before
    dry = undo(emu, tmp_path, synced.summary.run_id, "dry", dry_run=True)
    writes = emu.stats()["writes"]
    assert dry.summary.counts["planned"] == 3
    assert "City: Leeds → Old 0" in dry.results[0].changes
    assert emu.stats()["writes"] == writes  # a dry run writes nothing
    done = undo(emu, tmp_path, synced.summary.run_id)
    assert done.summary.counts["ok"] == 3 and int(done.exit_code) == 0
    assert book(emu) == before


def test_an_edit_made_since_is_skipped_and_force_restores_it(emu: Emulator,
                                                            tmp_path: Path) -> None:
    before = book(emu)
    synced = sync_sheet(emu, tmp_path, SHEET)
    sync_sheet(emu, tmp_path, [[str(FIRST_ID + 3), "", "Derby", ""]],
               report=tmp_path / "later.jsonl")  # someone's later run changes contact 3
    done = undo(emu, tmp_path, synced.summary.run_id)
    by_row = {r.row: r for r in done.results}
    assert (by_row[5].status, by_row[5].error_code) == (Status.SKIPPED, "changed-since")
    assert "City: run 1 wrote Hull, BSG now holds Derby" in by_row[5].changes
    assert int(done.exit_code) == 1
    after = book(emu)
    assert after[FIRST_ID] == before[FIRST_ID] and after[FIRST_ID + 1] == before[FIRST_ID + 1]
    assert after[FIRST_ID + 3][1][str(CITY)] == "Derby"
    forced = undo(emu, tmp_path, synced.summary.run_id, "f", force=True)
    assert forced.summary.counts["ok"] == 1 and forced.summary.counts["unchanged"] == 2
    assert book(emu) == before


def test_undo_again_restores_nothing_twice_and_undo_of_undo_redoes(emu: Emulator,
                                                                   tmp_path: Path) -> None:
    synced = sync_sheet(emu, tmp_path, SHEET)
    after_sync = book(emu)
    first = undo(emu, tmp_path, synced.summary.run_id)
    puts = emu.stats()["requests"]["PUT"]
    again = undo(emu, tmp_path, synced.summary.run_id, "again")
    assert again.summary.counts["unchanged"] == 3
    assert emu.stats()["requests"]["PUT"] == puts  # as after a kill: nothing restored twice
    redo = undo(emu, tmp_path, first.summary.run_id, "redo")
    assert redo.summary.counts["ok"] == 3
    assert book(emu) == after_sync


def test_undo_of_an_unknown_run_or_a_dry_run_is_a_usage_error(emu: Emulator,
                                                               tmp_path: Path) -> None:
    sync_sheet(emu, tmp_path, SHEET[:1])
    with pytest.raises(UsageError, match="no run 99"):
        undo(emu, tmp_path, 99)
    dry = sync_sheet(emu, tmp_path, SHEET[:1], dry_run=True, report=tmp_path / "d.jsonl")
    with pytest.raises(UsageError, match="was a dry run"):
        undo(emu, tmp_path, dry.summary.run_id)


def test_contacts_the_run_created_are_deleted_only_when_asked(emu: Emulator,
                                                             tmp_path: Path) -> None:
    synced = sync_sheet(emu, tmp_path, [["", "+44 7900 000099", "York", "News"],
                                        ["", "+44 7900 000098", "Bath", ""]],
                        create_missing=True)
    assert synced.summary.ok_actions == {"create": 2}
    created = [r.contact_id for r in synced.results]
    kept = undo(emu, tmp_path, synced.summary.run_id, "kept")
    assert [(r.status, r.error_code) for r in kept.results] == [
        (Status.SKIPPED, "created-by-run")] * 2
    assert all(cid in book(emu) for cid in created)
    sync_sheet(emu, tmp_path, [["", "+44 7900 000098", "Ely", ""]], report=tmp_path / "x.jsonl")
    gone = undo(emu, tmp_path, synced.summary.run_id, "gone", delete_created=True)
    by_row = {r.row: r for r in gone.results}
    assert (by_row[2].status, by_row[2].action) == (Status.OK, Action.DELETE)
    assert (by_row[3].status, by_row[3].error_code) == (Status.SKIPPED, "changed-since")
    assert "City: run 1 wrote Bath, BSG now holds Ely" in by_row[3].changes
    assert created[0] not in book(emu) and created[1] in book(emu)


def test_an_undo_killed_half_way_through_a_row_is_finished_by_a_re_run(emu: Emulator,
                                                                       tmp_path: Path) -> None:
    """The run set City and added a list; BSG holds City as before but still the list (an
    undo killed between its PUT and its detach): the re-run finishes, nothing is skipped."""
    synced = sync_sheet(emu, tmp_path, SHEET[:1])
    with StateStore(tmp_path / "s.sqlite3") as store:
        (w,) = store.run_writes(synced.summary.run_id)
    assert w.after is not None and w.before is not None
    assert w.after.groups - w.before.groups == {VIP}
    emu.edit_before_get(FIRST_ID, fields={str(CITY): "Old 0"})  # only the PUT had landed
    done = undo(emu, tmp_path, synced.summary.run_id)
    (row,) = done.results
    assert row.status is Status.OK, row.error
    assert book(emu)[FIRST_ID][2] == {NEWS}
