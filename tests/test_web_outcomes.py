"""The page says what is true at the end of a run: a stopped send says how far it got and
offers the rest; a preview with nothing to send says why (rows to fix, no data rows)
(Flask's test client against the real emulator)."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit import SAMPLE_SEED, Emulators, WebApp
from web_helpers import (
    CONTACTS_CSV,
    csrf,
    mapping_form,
    upload,
    upload_and_preview,
    wait_job,
    words,
)

from bsg_sync.emulator import Emulator


@pytest.fixture
def app(web_app: WebApp, emu: Emulator) -> Flask:
    return web_app(emu, concurrency=1)


def preview_of(client: FlaskClient, data: bytes, name: str) -> tuple[str, str]:
    """Upload, keep the pre-filled mapping, wait for the preview; (token, preview page)."""
    token = upload_and_preview(client, data, name)
    return token, client.get(f"/u/{token}/preview").text


def stopped_apply(client: FlaskClient, emu: Emulator, token: str) -> tuple[str, dict[str, object]]:
    """Apply slowly, press Stop after the first write; (job URL, its final status)."""
    emu.config = dataclasses.replace(emu.config, latency_ms=150)
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    job = r.headers["Location"]
    deadline = time.monotonic() + 20
    while emu.stats()["writes"] == 0:
        assert time.monotonic() < deadline, "the apply never sent"
        time.sleep(0.01)
    r = client.post(f"{job}/stop", data={"csrf_token": csrf(client)})
    assert r.status_code == 303
    status = wait_job(client, job, timeout=60)
    emu.config = dataclasses.replace(emu.config, latency_ms=0)
    return job, status


def test_a_stopped_send_says_how_far_it_got_and_sends_the_rest(app: Flask, emu: Emulator) -> None:
    client = app.test_client()
    token, page = preview_of(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    planned = int(re.search(r"Apply: send (\d+) changes", page).group(1))  # type: ignore[union-attr]
    job, status = stopped_apply(client, emu, token)
    sent = emu.stats()["writes"]
    assert 0 < sent < planned
    assert status["stopped"] is True and status["done"] == sent
    progress = client.get(job).text
    assert f"Stopped: {sent} of {planned} sent" in words(progress)
    assert "Stop sending" not in progress  # no Stop button once it has stopped
    assert f'value="{sent}"' in progress and f'max="{planned}"' in progress  # the bar is not full
    result = words(client.get(f"/u/{token}/result").text)
    assert f"Stopped: {sent} of {planned} sent" in result
    assert f"Send the remaining {planned - sent}" in result
    fix = client.get(f"/u/{token}/download/result-errors")
    assert fix.status_code == 200
    rows = list(csv.DictReader(io.StringIO(fix.data.decode("utf-8-sig"))))
    unsent = [r for r in rows if r["error_code"] == "not-sent"]
    assert len(unsent) == planned - sent and unsent[0]["error"].startswith("Not sent")
    assert unsent[0]["Mobile"]  # the sheet's own columns, ready to send again
    r = client.post(f"/u/{token}/send-remaining", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["Location"].startswith("/jobs/")
    again = wait_job(client, r.headers["Location"], timeout=60)
    assert again["state"] == "done" and again["total"] == planned - sent
    assert emu.stats()["writes"] == planned  # each change sent once
    result = words(client.get(f"/u/{token}/result").text)
    assert "Send the remaining" not in result and "Stopped" not in result
    r = client.post(f"/u/{token}/send-remaining", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["Location"] == f"/u/{token}/result"
    assert emu.stats()["writes"] == planned  # a reload or a second press sends nothing


def test_a_finished_send_is_not_called_stopped(app: Flask, emu: Emulator) -> None:
    client = app.test_client()
    token, _ = preview_of(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    status = wait_job(client, r.headers["Location"])
    assert status["stopped"] is False
    result = words(client.get(f"/u/{token}/result").text)
    assert "Stopped" not in result and "Send the remaining" not in result


def test_nothing_to_send_with_rows_to_fix_says_so(app: Flask) -> None:
    client = app.test_client()
    data = b"Contact ID,Mobile,City\n248400001,not a phone,Leeds\n248400002,12,York\n"
    _, page = preview_of(client, data, "bad.csv")
    text = words(page)
    assert "BSG already matches" not in text
    assert "0 changes; 2 rows need fixing (listed below)." in text


def test_a_sheet_with_no_data_rows_says_so(app: Flask) -> None:
    client = app.test_client()
    _, page = preview_of(client, b"Contact ID,Mobile,City\n", "empty.csv")
    text = words(page)
    assert "BSG already matches" not in text
    assert "Nothing to send: this sheet has no data rows" in text


def test_nothing_to_send_names_the_ignored_columns(app: Flask) -> None:
    client = app.test_client()
    _, page = preview_of(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    token = re.search(r"/u/([^/]+)/apply", page).group(1)  # type: ignore[union-attr]
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    wait_job(client, r.headers["Location"])
    data = CONTACTS_CSV.read_bytes().replace(b"Plan,Lists", b"Plan,Lists,Notes", 1)
    _, page = preview_of(client, data, "again.csv")
    text = words(page)
    assert "BSG already matches" not in text  # rows are not found in BSG: said instead
    assert "1 column is ignored: Notes." in text


def test_nothing_to_send_is_said_with_the_ignored_columns(app: Flask) -> None:
    client = app.test_client()
    token, _ = preview_of(client, b"Contact ID,City\n248400001,Leeds\n", "one.csv")
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    wait_job(client, r.headers["Location"])
    _, page = preview_of(client, b"Contact ID,City,Notes\n248400001,Leeds,call back\n", "b.csv")
    text = words(page)
    assert "Nothing to send: 0 changes: BSG already matches this sheet." in text
    assert "1 column is ignored: Notes." in text


# --------------------------------------------------------------------------- words for people


def test_row_problems_say_what_to_do_on_the_page_not_on_the_command_line(app: Flask) -> None:
    client = app.test_client()
    r = upload(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    mapping_url = r.headers["Location"]
    form = mapping_form(client.get(mapping_url).text)
    form["default_country"] = ""  # national numbers then have no country
    r = client.post(mapping_url, data=form)
    wait_job(client, r.headers["Location"])
    token = mapping_url.split("/")[2]
    text = words(client.get(f"/u/{token}/preview").text)
    assert "tick “create contacts whose phone number is not in BSG yet” on the mapping page" in text
    assert "choose the country of numbers written without a country code on the mapping page" in text
    for cli in ("--create-missing", "default_country", "--force", "BSG_API"):
        assert cli not in text


def test_a_refused_api_key_is_explained_without_environment_variables(
        emulator: Emulators, web_app: WebApp) -> None:
    emu = emulator(SAMPLE_SEED, api_key="live_the_right_key")
    app = web_app(emu)
    client = app.test_client()
    r = upload(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    page = client.get(r.headers["Location"])
    text = words(page.text)
    assert page.status_code == 502
    assert "ask whoever started this page to check its BSG API key" in text
    assert "BSG_API_KEY" not in text and "key file" not in text


def test_an_unreachable_bsg_is_explained_without_options(emu: Emulator, web_app: WebApp) -> None:
    app = web_app(emu)
    emu.stop()  # nothing answers on its port now
    client = app.test_client()
    r = upload(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    text = words(client.get(r.headers["Location"]).text)
    assert "ask whoever started this page to check the BSG address it uses" in text
    assert "--api-url" not in text and "BSG_API_URL" not in text


def test_hlr_is_explained_where_it_first_appears(app: Flask) -> None:
    client = app.test_client()
    _, page = preview_of(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    assert '<abbr title="Home Location Register check: whether the number is live on a mobile network, as BSG last checked it">HLR</abbr>' in page
