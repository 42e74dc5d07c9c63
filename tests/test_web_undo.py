"""Undo from History: each send offers "Undo this run" -> a preview of what will be restored
(an undo dry run) -> Apply (the real undo), through the job runner, POST/redirect/GET, and
only for the session that asked (Flask's test client against the real emulator)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit import WebApp
from web_helpers import (
    CITY,
    SAMPLES,
    csrf,
    mapping_form,
    upload,
    upload_and_apply,
    upload_and_map,
    wait_job,
)
from web_helpers import words as text_of

from bsg_sync.emulator import Emulator
from bsg_sync.state import StateStore
from bsg_sync.web.app import services

Book = dict[int, tuple[str, dict[str, str], set[int]]]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.sqlite3"


@pytest.fixture
def app(web_app: WebApp, emu: Emulator, state: Path) -> Flask:
    return web_app(emu, state=state)


def book(emu: Emulator) -> Book:
    out = {}
    for c in emu.contacts():
        f = c["fields"]
        fields = {str(k): v for k, v in f.items()} if isinstance(f, dict) else {}
        groups = {int(g["id"]) if isinstance(g, dict) else int(g) for g in c["groups"]}
        out[int(c["id"])] = (str(c["phone"]), fields, groups)
    return out


def last_run(state: Path) -> int:
    with StateStore(state) as store:
        return store.runs()[0].id


def send_via_page(client: FlaskClient, state: Path, **changes: str) -> int:
    """Upload contacts.csv, preview and apply it; the id of the run that sent."""
    token, job = upload_and_map(client, **changes)
    assert wait_job(client, job)["state"] == "done"
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    assert r.status_code == 303
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    return last_run(state)


def send_csv_via_page(client: FlaskClient, state: Path, data: bytes, name: str) -> int:
    upload_and_apply(client, data, name)
    return last_run(state)


def ask_undo(client: FlaskClient, run_id: int) -> tuple[str, dict[str, Any]]:
    """Press "Undo this run" on History; (the undo's token, its preview job's status)."""
    page = client.get("/history").text
    assert f'action="/history/{run_id}/undo"' in page
    r = client.post(f"/history/{run_id}/undo", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["Location"].startswith("/jobs/"), r.text
    status = wait_job(client, r.headers["Location"])
    nxt = client.get(status["next"] or r.headers["Location"] + "/next")
    assert nxt.status_code == 303
    token = nxt.headers["Location"].split("/")[2]
    assert nxt.headers["Location"] == f"/u/{token}/preview"
    return token, status


def apply_undo(client: FlaskClient, token: str) -> dict[str, Any]:
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["Location"].startswith("/jobs/"), r.text
    return wait_job(client, r.headers["Location"])


def test_undo_from_history_puts_every_contact_back(app: Flask, emu: Emulator, state: Path) -> None:
    client = app.test_client()
    before = book(emu)
    sent = send_via_page(client, state)
    synced = book(emu)
    assert synced != before
    history = client.get("/history").text
    assert f'action="/history/{sent - 1}/undo"' not in history  # the preview changed nothing
    token, status = ask_undo(client, sent)
    assert status["state"] == "done" and status["error"] == ""
    writes = emu.stats()["writes"]
    preview = client.get(f"/u/{token}/preview").text
    words = text_of(preview)
    assert f"Undo of run {sent}: what would be restored" in words
    assert "Nothing has been restored yet." in words
    assert re.search(r"City: \S+ → \S+", words), words  # per contact, before -> after
    assert re.search(r"Apply: restore \d+ contacts?", words)
    assert emu.stats()["writes"] == writes  # the preview is a dry run
    done = apply_undo(client, token)
    assert done["state"] == "done" and done["error"] == ""
    assert book(emu) == before
    result = text_of(client.get(f"/u/{token}/result").text)
    assert f"Undone: run {sent}" in result
    undo_id = last_run(state)
    history = text_of(client.get("/history").text)
    assert f"#{undo_id}" in history and f"Undo of run {sent}" in history


def test_an_undo_can_itself_be_undone(app: Flask, emu: Emulator, state: Path) -> None:
    client = app.test_client()
    sent = send_via_page(client, state)
    synced = book(emu)
    token, _ = ask_undo(client, sent)
    assert apply_undo(client, token)["state"] == "done"
    undo_id = last_run(state)
    assert f'action="/history/{undo_id}/undo"' in client.get("/history").text
    again, _ = ask_undo(client, undo_id)
    assert f"Undo of run {undo_id}" in text_of(client.get(f"/u/{again}/preview").text)
    assert apply_undo(client, again)["state"] == "done"
    assert book(emu) == synced


def test_a_contact_changed_since_is_skipped_with_both_values(
    app: Flask, emu: Emulator, state: Path
) -> None:
    client = app.test_client()
    before = book(emu)
    sent = send_via_page(client, state)
    synced = book(emu)
    first = min(c for c in synced if synced[c][1].get(CITY) != before[c][1].get(CITY))
    city_now = synced[first][1][CITY]
    later = send_csv_via_page(
        client, state, f"Contact ID,City\n{first},Derby\n".encode(), "later.csv"
    )
    token, _ = ask_undo(client, sent)
    words = text_of(client.get(f"/u/{token}/preview").text)
    assert "Skipped" in words
    assert f"City: run {sent} wrote {city_now}, BSG now holds Derby" in words
    assert "--force" not in words  # no command-line options on the page
    assert apply_undo(client, token)["state"] == "done"
    after = book(emu)
    assert after[first][1][CITY] == "Derby"  # left as the later run wrote it
    assert {k: v for k, v in after.items() if k != first} == {
        k: v for k, v in before.items() if k != first
    }
    assert later == sent + 2  # the later send's own preview in between


def test_a_preview_run_cannot_be_undone(app: Flask, state: Path) -> None:
    client = app.test_client()
    _, job = upload_and_map(client)
    assert wait_job(client, job)["state"] == "done"
    dry = last_run(state)
    r = client.post(f"/history/{dry}/undo", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["Location"] == "/history"
    words = text_of(client.get("/history").text)
    assert f"Run {dry} was a preview: it changed nothing, so there is nothing to undo." in words
    r = client.post("/history/999/undo", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["Location"] == "/history"
    assert "There is no run 999 in the history." in text_of(client.get("/history").text)


def test_a_reload_never_undoes_twice_and_another_session_sees_nothing(
    app: Flask, emu: Emulator, state: Path
) -> None:
    client, other = app.test_client(), app.test_client()
    sent = send_via_page(client, state)
    token, _ = ask_undo(client, sent)
    other.get("/")
    assert other.get(f"/u/{token}/preview").status_code == 404
    r = other.post(f"/u/{token}/apply", data={"csrf_token": csrf(other)})
    assert r.status_code == 404
    assert apply_undo(client, token)["state"] == "done"
    runs = last_run(state)
    writes = emu.stats()["writes"]
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["Location"] == f"/u/{token}/result"
    assert (last_run(state), emu.stats()["writes"]) == (runs, writes)
    assert "Undone" in text_of(client.get(f"/u/{token}/preview").text)


def test_an_undo_while_another_run_goes_keeps_history_and_says_so(
    app: Flask, emu: Emulator, state: Path
) -> None:
    client = app.test_client()
    sent = send_via_page(client, state)
    r = upload(client, (SAMPLES / "contacts.csv").read_bytes(), "again.csv")
    mapping_url = r.headers["Location"]
    form = mapping_form(client.get(mapping_url).text)
    form["default_country"] = "GB"
    job = services(app).jobs
    # a preview is too quick to catch running: hold the runner's slot by marking it running
    r = client.post(mapping_url, data=form)
    status = wait_job(client, r.headers["Location"])
    current = job.current()
    assert current is not None and status["state"] == "done"
    current.state = "running"
    try:
        r = client.post(f"/history/{sent}/undo", data={"csrf_token": csrf(client)})
        assert r.status_code == 303 and r.headers["Location"] == "/history"
        words = text_of(client.get("/history").text)
        assert "Another run is in progress; undo this run when it has finished." in words
    finally:
        current.state = "done"
