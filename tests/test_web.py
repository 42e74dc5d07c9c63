"""The web page (bsg-sync serve): every step and every error, with Flask's test client against
the real emulator over 127.0.0.1 (seeded from sample_sheets/seed.json)."""

from __future__ import annotations

import io
import os
import re
import signal
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from kit import SAMPLE_SEED, Emulators, WebApp
from web_helpers import (
    API_KEY,
    CITY,
    CONTACTS_CSV,
    ROOT,
    SAMPLES,
    csrf,
    make_app,
    mapping_form,
    upload,
    upload_and_map,
    wait_job,
)

from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator
from bsg_sync.errors import UsageError
from bsg_sync.state import StateStore
from bsg_sync.web import check_bind, parse_allowed_hosts
from bsg_sync.web.app import services
from bsg_sync.web.guards import GuessPolicy
from bsg_sync.web.store import WEB_DB_NAME, header_key


@pytest.fixture(scope="module")
def shared(module_emulator: Emulators) -> Emulator:
    return module_emulator(SAMPLE_SEED)


@pytest.fixture
def emu(shared: Emulator) -> Emulator:
    shared.reset()
    return shared


# --------------------------------------------------------------------------- the flow


def test_upload_page_is_safe_by_default(client: FlaskClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "Up to 50 MB." in r.text
    assert 'type="file"' in r.text and 'accept=".csv,' in r.text
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "SameSite=Strict" in r.headers["Set-Cookie"]


def test_whole_flow_upload_map_preview_apply_result_history(
    client: FlaskClient, emu: Emulator, app: Flask
) -> None:
    pages: list[str] = []
    r = upload(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    assert r.status_code == 303
    token = r.headers["Location"].split("/")[2]
    up = services(app).uploads.get(token)
    assert up is not None and up.sheet_path.name != "contacts.csv"  # stored under a random name
    assert stat.S_IMODE(up.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(services(app).uploads.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(up.sheet_path.stat().st_mode) == 0o600

    page = client.get(r.headers["Location"]).text
    pages.append(page)
    form = mapping_form(page)  # pre-filled from generate_mapping and the account's fields
    assert [form[f"target-{i}"] for i in range(6)] == [
        "id",
        "phone",
        "field:First name",
        "field:City",
        "field:Plan",
        "groups",
    ]
    form.update(default_country="GB")
    r = client.post(r.headers["Location"], data=form)
    assert r.status_code == 303
    pages.append(client.get(r.headers["Location"]).text)  # the progress page
    status = wait_job(client, r.headers["Location"])
    assert status["state"] == "done" and status["error"] == ""
    assert status["counts"] == {"unchanged": 29, "planned": 10, "invalid": 2, "not_found": 1}
    assert emu.stats()["writes"] == 0  # the preview sends nothing

    assert token not in status["next"]  # the JSON carries no upload token
    preview = client.get(status["next"], follow_redirects=True).text
    pages.append(preview)
    assert "City: York → Leeds" in preview
    assert "phone-precision-lost" in preview and "Row 6" in preview  # invalid rows with reasons
    assert "Apply: send 10 changes to BSG" in preview
    assert "tick “create contacts whose phone number is not in BSG yet”" in preview
    invalid_only = client.get(f"/u/{token}/preview?status=invalid").text
    assert "2 rows with status “Invalid”" in invalid_only
    assert "City: York → Leeds" not in invalid_only

    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    assert r.status_code == 303
    status = wait_job(client, r.headers["Location"])
    assert status["state"] == "done" and status["done"] == status["total"] == 10
    assert status["rows_per_s"] > 0 and status["eta_s"] == 0
    landing = client.get(status["next"])
    assert landing.status_code == 303 and landing.headers["Location"] == f"/u/{token}/result"
    result = client.get(landing.headers["Location"]).text
    pages.append(result)
    assert "10 updated" in result and "absent" in result  # counts and the HLR summary
    assert emu.stats()["writes"] == 10
    contact = next(c for c in emu.contacts() if c["id"] == 248400003)
    assert contact["fields"][CITY] == "Leeds"
    assert not up.sheet_path.exists()  # the upload itself is deleted after the run

    rep = client.get(f"/u/{token}/download/result-report")
    assert rep.status_code == 200
    assert "contacts.report.xlsx" in rep.headers["Content-Disposition"]
    assert zipfile.ZipFile(io.BytesIO(rep.data)).namelist()
    errs = client.get(f"/u/{token}/download/result-errors")
    assert errs.status_code == 200 and b"phone-precision-lost" in errs.data

    history = client.get("/history").text
    pages.append(history)
    assert history.count("contacts.csv") == 2 and "Preview (dry run)" in history
    run_ids = [int(n) for n in re.findall(r'href="/history/(\d+)"', history)]
    detail = client.get(f"/history/{max(run_ids)}?status=ok").text
    pages.append(detail)
    assert "10 rows with status “OK”" in detail
    old = client.get(f"/history/{max(run_ids)}/report.xlsx")
    assert old.status_code == 200 and zipfile.ZipFile(io.BytesIO(old.data)).namelist()
    for text in pages:  # the API key never reaches a page
        assert API_KEY not in text


def test_mapping_is_remembered_for_the_same_header_set(client: FlaskClient, tmp_path: Path) -> None:
    fresh = mapping_form(
        client.get(upload(client, CONTACTS_CSV.read_bytes(), "a.csv").headers["Location"]).text
    )
    assert fresh["target-3"] == "field:City" and "clear-4" not in fresh
    assert fresh["default_country"] == ""
    _token, job = upload_and_map(client, **{"target-3": "ignore", "clear-4": "on"})
    wait_job(client, job)
    assert (tmp_path / "state" / WEB_DB_NAME).is_file()
    again = mapping_form(
        client.get(upload(client, CONTACTS_CSV.read_bytes(), "b.csv").headers["Location"]).text
    )
    assert again["target-3"] == "ignore" and again["clear-4"] == "on"
    assert again["default_country"] == "GB"
    # the same columns in another order and case are the same layout
    text = "mobile,Contact ID,Lists,CITY,Plan,First name\n447700900123,248400001,,,,\n"
    moved = mapping_form(
        client.get(upload(client, text.encode(), "c.csv").headers["Location"]).text
    )
    assert [moved[f"target-{i}"] for i in range(6)] == [
        "phone",
        "id",
        "groups",
        "ignore",
        "field:Plan",
        "field:First name",
    ]
    assert moved["clear-4"] == "on"
    # another layout is not pre-filled from it
    other = mapping_form(
        client.get(
            upload(client, b"Mobile,City\n447700900123,x\n", "d.csv").headers["Location"]
        ).text
    )
    assert other["target-1"] == "field:City" and other["default_country"] == ""


def test_header_key_ignores_order_case_and_spacing() -> None:
    assert header_key(["A", "b "]) == header_key(["B", "a"])
    assert header_key(["First  name"]) == header_key(["first name"])
    assert header_key(["A"]) != header_key(["A", "B"])


@pytest.mark.parametrize(
    "path",
    [
        SAMPLES / "newsletter.xlsx",
        ROOT / "tests" / "data" / "reader_small.xls",
        ROOT / "tests" / "data" / "reader_small.ods",
    ],
    ids=lambda p: p.suffix,
)
def test_workbooks_are_read_by_the_library(client: FlaskClient, path: Path) -> None:
    from markupsafe import escape

    from bsg_sync.reader import read_sheet

    r = upload(client, path.read_bytes(), path.name.upper())  # extension case does not matter
    assert r.status_code == 303, r.text
    page = client.get(r.headers["Location"]).text
    sheet = read_sheet(path)
    assert f"{len(sheet.rows)} data row" in page
    for header in sheet.headers:
        assert f'value="{escape(header)}"' in page


def test_not_applied_twice_and_unknown_upload(client: FlaskClient) -> None:
    token, job = upload_and_map(client)
    wait_job(client, job)
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    wait_job(client, r.headers["Location"])
    again = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    assert again.status_code == 303 and again.headers["Location"] == f"/u/{token}/result"
    assert "already applied" in client.get(again.headers["Location"]).text
    assert client.get("/u/nope/mapping").status_code == 404


def test_discard_deletes_the_upload(client: FlaskClient, app: Flask) -> None:
    r = upload(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    token = r.headers["Location"].split("/")[2]
    folder = services(app).uploads.get(token).dir  # type: ignore[union-attr]
    assert folder.is_dir()
    r = client.post(f"/u/{token}/discard", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and not folder.exists()


def test_closing_removes_every_upload(emu: Emulator, tmp_path: Path) -> None:
    app = make_app(emu, tmp_path)
    c = app.test_client()
    upload(c, CONTACTS_CSV.read_bytes(), "contacts.csv")
    root = services(app).uploads.root
    assert any(root.iterdir())
    services(app).close()
    assert not root.exists()


def test_history_without_a_state_store(client: FlaskClient) -> None:
    r = client.get("/history")
    assert r.status_code == 200 and "No runs yet." in r.text
    assert client.get("/history/7").status_code == 404


# --------------------------------------------------------------------------- errors


def test_wrong_file_type_is_refused(client: FlaskClient, app: Flask) -> None:
    r = upload(client, b"%PDF-1.4", "notes.pdf")
    assert r.status_code == 303 and r.headers["Location"] == "/"
    assert "notes.pdf is not a spreadsheet this page can read" in client.get("/").text
    assert not any(services(app).uploads.root.iterdir())


def test_unreadable_file_is_refused_and_deleted(client: FlaskClient, app: Flask) -> None:
    r = upload(client, b"this is not a workbook at all", "list.xlsx")
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).text
    assert "Cannot use this file" in page and "list.xlsx" in page
    assert not re.search(r"[0-9a-f]{32}\.xlsx", page)  # the random name stays private
    assert not any(services(app).uploads.root.iterdir())


def test_no_file_chosen(client: FlaskClient) -> None:
    r = client.post("/upload", data={"csrf_token": csrf(client)})
    assert r.status_code == 303
    assert "Choose a spreadsheet file first." in client.get(r.headers["Location"]).text


def test_file_over_the_size_limit(emu: Emulator, web_app: WebApp) -> None:
    app = web_app(emu, max_upload_bytes=1000)
    r = upload(app.test_client(), b"Mobile\n" + b"447700900123\n" * 200, "big.csv")
    assert r.status_code == 413 and "larger than 1000 bytes" in r.text
    # one sentence that fits any file (this one is a CSV already)
    assert "the most this page takes; split it into smaller files" in r.text
    assert "upload a CSV" not in r.text


def test_unknown_header_in_the_mapping(client: FlaskClient) -> None:
    r = upload(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    form = mapping_form(client.get(r.headers["Location"]).text)
    form["header-1"] = "Telephone"
    bad = client.post(r.headers["Location"], data=form)
    assert bad.status_code == 303 and bad.headers["Location"] == r.headers["Location"]
    assert (
        "column &#39;Telephone&#39; is not in the sheet" in client.get(r.headers["Location"]).text
    )
    form = mapping_form(client.get(r.headers["Location"]).text)
    form["header-9"] = "Extra"
    bad = client.post(r.headers["Location"], data=form)
    assert bad.status_code == 303
    assert "does not fit this sheet" in client.get(r.headers["Location"]).text


def test_target_the_account_does_not_have(client: FlaskClient) -> None:
    r = upload(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    form = mapping_form(client.get(r.headers["Location"]).text)
    form["target-3"] = "field:Shoe size"
    bad = client.post(r.headers["Location"], data=form)
    assert bad.status_code == 303 and "Shoe size" in client.get(r.headers["Location"]).text


def test_mapping_without_phone_or_id_is_explained(client: FlaskClient) -> None:
    r = upload(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    form = mapping_form(client.get(r.headers["Location"]).text)
    form.update({"target-0": "ignore", "target-1": "ignore"})
    bad = client.post(r.headers["Location"], data=form)
    assert bad.status_code == 303 and bad.headers["Location"] == r.headers["Location"]
    again = client.get(r.headers["Location"]).text  # a reload shows it again, sends nothing
    assert "no column is mapped to phone or id" in again
    kept = mapping_form(again)  # the form is shown again with the choices kept
    assert kept["target-0"] == kept["target-1"] == "ignore" and kept["target-3"] == "field:City"


def test_a_cli_sync_holding_the_state_store(client: FlaskClient, tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(exist_ok=True)
    with StateStore(tmp_path / "state" / "state.sqlite3") as store:
        store.acquire_lock()
        try:
            _token, job = upload_and_map(client)
            status = wait_job(client, job)
        finally:
            store.release_lock()
    assert status["state"] == "failed" and status["next"] is None
    assert "another sync holds" in status["error"]
    assert "another sync holds" in client.get(job).text


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_forms_need_the_csrf_token(client: FlaskClient, token: str | None) -> None:
    data: dict[str, Any] = {"sheet": (io.BytesIO(CONTACTS_CSV.read_bytes()), "contacts.csv")}
    if token is not None:
        data["csrf_token"] = token
    client.get("/")  # the session has a token; the form does not carry it
    r = client.post("/upload", data=data)
    assert r.status_code == 400 and "security token" in r.text


def test_csrf_token_is_checked_on_apply_too(client: FlaskClient, emu: Emulator) -> None:
    token, job = upload_and_map(client)
    wait_job(client, job)
    assert client.post(f"/u/{token}/apply", data={}).status_code == 400
    assert emu.stats()["writes"] == 0


def test_password_is_required_when_set(emu: Emulator, web_app: WebApp) -> None:
    app = web_app(emu, password="s3cret", guess_policy=GuessPolicy(base_delay_s=0))
    c = app.test_client()
    assert c.get("/").status_code == 401
    assert c.get("/static/style.css").status_code == 401
    wrong = c.get("/", auth=("marketing", "guess"))
    assert wrong.status_code == 401 and "Basic" in wrong.headers["WWW-Authenticate"]
    assert c.get("/", auth=("marketing", "s3cret")).status_code == 200


def test_other_addresses_need_a_password() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    check_bind("0.0.0.0", "pw", parse_allowed_hosts(["bsg.example.com"]))
    with pytest.raises(UsageError, match="BSG_SYNC_WEB_PASSWORD"):
        check_bind("0.0.0.0", None)
    with pytest.raises(UsageError):
        check_bind("192.168.1.20", "")


def test_serve_refuses_a_public_address_without_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BSG_SYNC_WEB_PASSWORD", raising=False)
    monkeypatch.setenv("BSG_API_KEY", API_KEY)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "set BSG_SYNC_WEB_PASSWORD" in result.stderr and result.stdout == ""


def test_serve_needs_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BSG_API_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 2 and "BSG_API_KEY" in result.stderr


def test_sheet_values_are_escaped(client: FlaskClient, emu: Emulator) -> None:
    text = 'Mobile,<script>alert("x")</script>\n447700900123,<b>bold</b>\n'
    r = upload(client, text.encode(), "<img src=x onerror=alert(1)>.csv")
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "<script>alert" not in page and "<img src=x" not in page


def test_api_errors_are_shown_not_raised(emulator: Emulators, web_app: WebApp) -> None:
    other = emulator(SAMPLE_SEED, api_key="live_other")
    app = web_app(other)
    c = app.test_client()
    r = upload(c, CONTACTS_CSV.read_bytes(), "contacts.csv")
    page = c.get(r.headers["Location"])
    assert page.status_code == 502 and "did not accept the API key" in page.text
    assert API_KEY not in page.text


def test_serve_command_serves_and_cleans_up(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BSG_API_KEY": API_KEY,
        "BSG_STATE": str(tmp_path / "s.sqlite3"),
        "TMPDIR": str(tmp_path),
    }
    env.pop("BSG_SYNC_WEB_PASSWORD", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bsg_sync",
            "serve",
            "--port",
            "0",
            "--api-url",
            "http://127.0.0.1:9",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"serving on (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, line
        import requests

        page = requests.get(match.group(1), timeout=5)
        assert page.status_code == 200 and "Upload a contact sheet" in page.text
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("bsg-sync-web-")]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("bsg-sync-web-")]
