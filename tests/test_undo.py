"""Undo a run (issue: undo): every confirmed write is journalled with its pre-image, so a run
can be put back; tests against the emulator on 127.0.0.1, both PUT semantics."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.models import Contact
from bsg_sync.state import StateStore
from bsg_sync.sync import SyncOptions, run_sync

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
def emu(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(put_semantics=request.param), seed=SEED) as e:
        yield e


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
