"""History reads runs and results through StateStore (each page its own store, even with two
in one folder), shows local times, keeps previews apart from sends, and offers each run's
rows to fix (Flask's test client against the real emulator)."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime
from pathlib import Path

from flask import Flask
from web_helpers import (
    CONTACTS_CSV,
    make_app,
    upload_and_apply,
)

from bsg_sync.emulator import Emulator
from bsg_sync.state import StateStore
from bsg_sync.web.app import services


def rows_of(page: str) -> list[str]:
    body = [re.sub(r"<[^>]+>", " ", row) for row in re.findall(r"<tr.*?</tr>", page, re.S)]
    return [" ".join(html.unescape(b).split()) for b in body]


def test_two_state_stores_in_one_folder_each_show_their_own_runs(
    emu: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "state"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_app(emu, tmp_path / "a", state=folder / "a.sqlite3")
    b = make_app(emu, tmp_path / "b", state=folder / "b.sqlite3")
    try:
        upload_and_apply(a.test_client(), CONTACTS_CSV.read_bytes(), "contacts.csv")
        upload_and_apply(b.test_client(), b"Contact ID,City\n248400001,Derby\n", "extra_cols.csv")
        history_a = " ".join(rows_of(a.test_client().get("/history").text))
        history_b = " ".join(rows_of(b.test_client().get("/history").text))
        assert "contacts.csv" in history_a and "extra_cols.csv" not in history_a
        assert "extra_cols.csv" in history_b and "contacts.csv" not in history_b
    finally:
        services(a).close()
        services(b).close()


def test_history_shows_local_times_and_keeps_previews_apart(app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    upload_and_apply(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    page = client.get("/history").text
    with StateStore(tmp_path / "state" / "state.sqlite3") as store:
        started = store.run(2).started_at  # type: ignore[union-attr]
    local = datetime.fromisoformat(started).astimezone().strftime("%Y-%m-%d %H:%M")
    assert local in page and started not in page
    sends = page.index('id="sends-h"')
    previews = page.index('id="previews-h"')
    assert sends < page.index('href="/history/2"') < previews < page.index('href="/history/1"')


def test_each_run_offers_its_rows_to_fix_when_it_has_some(app: Flask) -> None:
    client = app.test_client()
    upload_and_apply(client, b"Contact ID,Mobile\n248400001,not a phone\n248400002,+447700900123\n", "b.csv")
    upload_and_apply(client, b"Contact ID,City\n248400001,Derby\n", "good.csv")
    page = client.get("/history").text
    assert 'href="/history/2/rows-to-fix.csv"' in page
    assert 'href="/history/4/rows-to-fix.csv"' not in page
    r = client.get("/history/2/rows-to-fix.csv")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert [(row["row"], row["status"]) for row in rows] == [("2", "invalid")]
    assert client.get("/history/4/rows-to-fix.csv").status_code == 404
    other = app.test_client()
    assert other.get("/history/2/rows-to-fix.csv").status_code == 403  # needs the session
