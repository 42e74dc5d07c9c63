"""Every upload is read in a child process with a memory and a time limit (WebConfig): a file
built to take a parser down gives one sentence on the page, and the server, the next upload
and a run in progress carry on (Flask's test client against the real emulator).

The hostile files are built here by test_hostile_files' builders; none is shipped."""

from __future__ import annotations

import dataclasses
import html
import io
import re
import time
from pathlib import Path

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit import WebApp
from test_hostile_files import HEADER, _xlsb, _xlsx
from web_helpers import CONTACTS_CSV, csrf, mapping_form, upload, wait_job

from bsg_sync.emulator import Emulator
from bsg_sync.web.app import services


@pytest.fixture
def app(web_app: WebApp, emu: Emulator) -> Flask:
    return web_app(emu, concurrency=1, read_memory_limit=1 << 30, read_time_limit=30)


def _flash(client: FlaskClient, response: object) -> str:
    """The sentence the page shows after a refused upload (POST/redirect/GET)."""
    assert getattr(response, "status_code", None) == 303
    assert getattr(response, "headers", {})["Location"] == "/"
    page = client.get("/").text
    found = re.search(r'<div class="alert" role="alert"><p class="pre">(.*?)</p>', page, re.S)
    assert found, page
    return html.unescape(" ".join(found.group(1).split()))


def _contacts_xlsx(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Mobile", "City"])
    ws.append(["447700900123", "Leeds"])
    wb.save(path)
    return path


def _far_xlsb(tmp_path: Path) -> bytes:
    """An XLSB (binary records, not pre-checked) with a cell at XFD1048576: read in-process,
    calamine would try to allocate 512 GiB and abort the server."""
    return _xlsb(tmp_path / "far.xlsb", [["Mobile", "City"]], far=(1_048_575, 16_383)).read_bytes()


def test_a_cell_at_xfd1048576_is_one_sentence_and_the_next_upload_works(
    app: Flask, tmp_path: Path
) -> None:
    client = app.test_client()
    bomb = _xlsx(tmp_path / "xfd.xlsx", HEADER + '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>')
    sentence = _flash(client, upload(client, bomb.read_bytes(), "big.xlsx"))
    assert sentence.startswith("Cannot use this file: big.xlsx")
    assert "spans 17,179,869,184 cells" in sentence and "Traceback" not in sentence
    r = upload(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    assert r.status_code == 303 and r.headers["Location"].endswith("/mapping")


def test_a_file_that_gets_past_the_checks_is_stopped_by_the_childs_memory_limit(
    app: Flask, tmp_path: Path
) -> None:
    client = app.test_client()
    sentence = _flash(client, upload(client, _far_xlsb(tmp_path), "far.xlsb"))
    assert sentence == (
        "Cannot use this file: far.xlsb needs more memory than 1.0 GiB to read; it is probably "
        "damaged or not made by a spreadsheet program: open it in Excel and save a new copy, "
        "or export it as .csv."
    )
    r = upload(client, _contacts_xlsx(tmp_path / "ok.xlsx").read_bytes(), "ok.xlsx")
    assert r.status_code == 303 and r.headers["Location"].endswith("/mapping")


def test_a_tiny_memory_limit_on_webconfig_gives_the_sentence(
        emu: Emulator, tmp_path: Path, web_app: WebApp) -> None:
    app = web_app(emu, read_memory_limit=16 << 20)
    client = app.test_client()
    data = _contacts_xlsx(tmp_path / "ok.xlsx").read_bytes()
    sentence = _flash(client, upload(client, data, "contacts.xlsx"))
    assert sentence.startswith("Cannot use this file: contacts.xlsx needs more memory than 16 MiB")
    assert str(tmp_path) not in sentence  # the stored name stays ours


def test_a_time_limit_on_webconfig_gives_the_sentence(
        emu: Emulator, tmp_path: Path, web_app: WebApp) -> None:
    app = web_app(emu, read_time_limit=0.05)  # less than the child's start-up
    client = app.test_client()
    data = _contacts_xlsx(tmp_path / "ok.xlsx").read_bytes()
    sentence = _flash(client, upload(client, data, "contacts.xlsx"))
    assert sentence.startswith("Cannot use this file: contacts.xlsx takes longer than 0 s")


def test_the_preview_reads_with_the_webconfig_limits(app: Flask, tmp_path: Path) -> None:
    """The run (preview, apply) reads the sheet again: with the page's limits, not defaults."""
    client = app.test_client()
    r = upload(client, _contacts_xlsx(tmp_path / "ok.xlsx").read_bytes(), "ok.xlsx")
    mapping_url = r.headers["Location"]
    form = mapping_form(client.get(mapping_url).text)
    form["default_country"] = "GB"
    cfg = services(app).config
    services(app).config = dataclasses.replace(cfg, read_memory_limit=16 << 20)
    r = client.post(mapping_url, data=form)
    status = wait_job(client, r.headers["Location"])
    assert status["state"] == "failed"
    assert status["error"].startswith("ok.xlsx needs more memory than 16 MiB")


def test_a_hostile_upload_during_a_run_leaves_the_run_going(
    app: Flask, emu: Emulator, tmp_path: Path
) -> None:
    alice, bob = app.test_client(), app.test_client()
    r = upload(alice, CONTACTS_CSV.read_bytes(), "contacts.csv")
    mapping_url = r.headers["Location"]
    form = mapping_form(alice.get(mapping_url).text)
    form["default_country"] = "GB"
    r = alice.post(mapping_url, data=form)
    assert wait_job(alice, r.headers["Location"])["state"] == "done"
    token = mapping_url.split("/")[2]
    emu.config = dataclasses.replace(emu.config, latency_ms=150)
    r = alice.post(f"/u/{token}/apply", data={"csrf_token": csrf(alice)})
    job = r.headers["Location"]
    deadline = time.monotonic() + 20
    while (alice.get(f"{job}.json").json or {}).get("total") is None:
        assert time.monotonic() < deadline, "the apply never started sending"
        time.sleep(0.02)
    sentence = _flash(bob, upload(bob, _far_xlsb(tmp_path), "far.xlsb"))
    assert "needs more memory" in sentence
    emu.config = dataclasses.replace(emu.config, latency_ms=0)
    status = wait_job(alice, job, timeout=60)
    assert status["state"] == "done" and status["error"] == ""
    assert status["done"] == status["total"] > 0


def test_the_upload_page_still_answers_a_plain_stream(app: Flask) -> None:
    client = app.test_client()
    r = client.post("/upload", data={"csrf_token": csrf(client), "sheet": (io.BytesIO(b""), "")})
    assert _flash(client, r) == "Choose a spreadsheet file first."
