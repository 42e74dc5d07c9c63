"""Shared helpers of the web page's tests: an app on the emulator, and a browser's moves
(upload, post the mapping as shown, wait for a run) with Flask's test client."""

from __future__ import annotations

import html
import io
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator
from bsg_sync.web import WebConfig, create_app

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_sheets"
CONTACTS_CSV = SAMPLES / "contacts.csv"
API_KEY = "live_web_test_key_0123456789"
FAST = RetryPolicy(backoff_initial=0.01, backoff_max=0.05, retry_after_cap=0.1)
CITY = "387716"


def make_app(emu: Emulator, tmp_path: Path, state: Path | None = None, **kw: Any) -> Flask:
    config = WebConfig(
        api_url=emu.url,
        api_key=API_KEY,
        state=state or tmp_path / "state" / "state.sqlite3",
        max_rps=None,
        policy=FAST,
        upload_root=tmp_path,
        **kw,
    )
    return create_app(config)


def csrf(client: FlaskClient) -> str:
    page = client.get("/").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def upload(client: FlaskClient, data: bytes, name: str) -> Any:
    return client.post(
        "/upload", data={"csrf_token": csrf(client), "sheet": (io.BytesIO(data), name)}
    )


def mapping_form(page: str) -> dict[str, str]:
    """The mapping form as a browser would post it unchanged."""
    form = dict(re.findall(r'name="(header-\d+)" value="([^"]*)"', page))
    for select, body in re.findall(r'<select id="(target-\d+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        form[select] = chosen.group(1) if chosen else "ignore"
    for box in re.findall(r'name="(clear-\d+)" checked', page):
        form[box] = "on"
    country = re.search(r'<select id="default_country"[^>]*>.*?<option value="([^"]*)" selected',
                        page, re.S)
    form["default_country"] = country.group(1) if country else ""
    form["groups_mode"] = "add"
    form["csrf_token"] = re.findall(r'name="csrf_token" value="([^"]+)"', page)[0]
    return form


def wait_job(client: FlaskClient, location: str, timeout: float = 20) -> dict[str, Any]:
    job_id = location.rstrip("/").rsplit("/", 1)[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(f"/jobs/{job_id}.json").json or {}
        if status["state"] != "running":
            return status
        time.sleep(0.02)
    raise AssertionError("the run did not finish")


def words(page: str) -> str:
    """A page's text as a person reads it: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def open_mapping(client: FlaskClient, data: bytes, name: str) -> tuple[str, str]:
    """Upload a sheet and open its mapping page; (mapping url, page)."""
    r = upload(client, data, name)
    assert r.status_code == 303, r.text
    url: str = r.headers["Location"]
    return url, client.get(url).text


def post_mapping(client: FlaskClient, data: bytes, name: str,
                 changes: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Upload a sheet, post the pre-filled mapping with country GB and the changes; (token,
    job url)."""
    mapping_url, page = open_mapping(client, data, name)
    form = mapping_form(page)
    form.update({"default_country": "GB", **(changes or {})})
    r = client.post(mapping_url, data=form)
    assert r.status_code == 303 and r.headers["Location"].startswith("/jobs/"), r.text
    return mapping_url.split("/")[2], r.headers["Location"]


def upload_and_map(client: FlaskClient, **changes: str) -> tuple[str, str]:
    """Upload contacts.csv, post the pre-filled mapping (with changes); (token, job url)."""
    return post_mapping(client, CONTACTS_CSV.read_bytes(), "contacts.csv", changes)


def upload_and_preview(client: FlaskClient, data: bytes, name: str) -> str:
    """Upload a sheet, keep the pre-filled mapping (country GB) and wait for the preview; the
    upload's token."""
    token, job = post_mapping(client, data, name)
    assert wait_job(client, job)["state"] == "done"
    return token


def upload_and_apply(client: FlaskClient, data: bytes, name: str) -> str:
    """Upload a sheet, keep the pre-filled mapping (country GB), wait for the preview, apply
    and wait for the run; the upload's token."""
    token = upload_and_preview(client, data, name)
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    return token
