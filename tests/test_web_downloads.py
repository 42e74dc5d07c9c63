"""Downloads say what the person knows: the report's Summary names their file and tab (no
server paths), History's rebuilt report has the run's real duration and the live report's
time format, and "rows to fix" is offered only when there are some (Flask's test client
against the real emulator)."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit import SAMPLE_SEED, Emulators, WebApp
from test_web_layout import CONTACT_ROWS, READ_ME, workbook
from web_helpers import csrf, mapping_form, upload, upload_and_apply, wait_job

from bsg_sync.emulator import Emulator

TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@pytest.fixture
def emu(emulator: Emulators) -> Emulator:
    return emulator(SAMPLE_SEED, latency_ms=5)


def applied(client: FlaskClient, data: bytes, name: str) -> tuple[str, str]:
    """Upload, preview and apply; (token, result page)."""
    token = upload_and_apply(client, data, name)
    return token, client.get(f"/u/{token}/result").text


def summary_of(data: bytes) -> dict[str, Any]:
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    sheet = next(ws for ws in wb.worksheets if ws.title.lower() == "summary")
    return {str(r[0]): r[1] if len(r) > 1 else None
            for r in sheet.iter_rows(values_only=True) if r and r[0] is not None}


def test_the_report_summary_names_the_persons_file_and_tab(
    app: Flask, tmp_path: Path
) -> None:
    client = app.test_client()
    data = workbook([("Read me", READ_ME), ("Contacts", CONTACT_ROWS)])
    token, _ = applied(client, data, "spring customers.xlsx")
    summary = summary_of(client.get(f"/u/{token}/download/result-report").data)
    assert summary["sheet"] == "spring customers.xlsx"
    assert summary["sheet tab"] == "Contacts"
    cells = " ".join(str(v) for v in summary.values())
    assert str(tmp_path) not in cells and "/tmp" not in cells
    preview = summary_of(client.get(f"/u/{token}/download/preview-report").data)
    assert preview["sheet"] == "spring customers.xlsx"


def test_rows_to_fix_are_offered_only_when_there_are_some(app: Flask) -> None:
    client = app.test_client()
    _, page = applied(client, b"Contact ID,City\n248400001,Derby\n", "good.csv")
    assert "Download the rows to fix" not in page
    _, page = applied(client, b"Contact ID,Mobile\n248400001,not a phone\n", "bad.csv")
    assert "Download the rows to fix" in page


def test_historys_report_has_the_runs_duration_and_time_format(
    emu: Emulator, web_app: WebApp
) -> None:
    """The store keeps times to the second: a send held over a second has a duration."""
    app = web_app(emu, concurrency=1)
    client = app.test_client()
    sheet = b"Contact ID,City\n" + b"".join(b"24840000%d,Derby\n" % i for i in range(1, 5))
    r = upload(client, sheet, "one.csv")
    mapping_url = r.headers["Location"]
    r = client.post(mapping_url, data=mapping_form(client.get(mapping_url).text))
    wait_job(client, r.headers["Location"])
    token = mapping_url.split("/")[2]
    emu.config = dataclasses.replace(emu.config, latency_ms=150)
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    emu.config = dataclasses.replace(emu.config, latency_ms=0)
    live = summary_of(client.get(f"/u/{token}/download/result-report").data)
    again = summary_of(client.get("/history/2/report.xlsx").data)
    assert again["sheet"] == "one.csv"
    assert TIME.fullmatch(str(live["started"])) and TIME.fullmatch(str(again["started"]))
    assert TIME.fullmatch(str(again["finished"]))
    assert float(again["duration (s)"]) >= 1
