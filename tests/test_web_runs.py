"""One run at a time, seen by everyone: another person's run keeps your preview and brings
Apply back when it ends; every POST answers with a redirect; a banner on every page and
History follow the live run (Flask's test client against the real emulator)."""

from __future__ import annotations

import dataclasses
import io
import re
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit import WebApp
from web_helpers import (
    CONTACTS_CSV,
    csrf,
    make_app,
    mapping_form,
    upload,
    upload_and_preview,
    wait_job,
)

from bsg_sync.emulator import Emulator
from bsg_sync.web.app import services


@pytest.fixture
def app(web_app: WebApp, emu: Emulator) -> Flask:
    return web_app(emu, concurrency=1)


def previewed(client: FlaskClient, name: str) -> str:
    """Upload contacts.csv as `name`, map it as pre-filled and wait for its preview; the token."""
    return upload_and_preview(client, CONTACTS_CSV.read_bytes(), name)


def start_slow_apply(emu: Emulator, client: FlaskClient, token: str) -> str:
    """Apply with every API request slowed down; returns once it is sending (the job URL)."""
    emu.config = dataclasses.replace(emu.config, latency_ms=250)
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    assert r.status_code == 303
    job = r.headers["Location"]
    deadline = time.monotonic() + 20
    while (client.get(f"{job}.json").json or {}).get("total") is None:
        assert time.monotonic() < deadline, "the apply never started sending"
        time.sleep(0.02)
    return str(job)


def finish(emu: Emulator, client: FlaskClient, job: str) -> dict[str, Any]:
    emu.config = dataclasses.replace(emu.config, latency_ms=0)
    return wait_job(client, job, timeout=60)


def test_another_run_keeps_my_preview_and_apply_comes_back(app: Flask, emu: Emulator) -> None:
    alice, bob = app.test_client(), app.test_client()
    a_token = previewed(alice, "spring.csv")
    b_token = previewed(bob, "autumn.csv")
    a_job = start_slow_apply(emu, alice, a_token)

    page = bob.get(f"/u/{b_token}/preview")
    assert page.status_code == 200
    text = page.text
    assert "Preview: what would change" in text and "City: York → Leeds" in text  # kept
    assert re.search(
        r"spring\.csv is being sent to BSG: \d+ of 10 sent \(started \d\d:\d\d\)", text
    )
    assert re.search(r'<button type="submit" id="apply" disabled data-wait-for-run>', text)
    assert '<meta http-equiv="refresh"' in text  # without scripts the page looks again

    jobs_before = services(app).jobs.current()
    r = bob.post(f"/u/{b_token}/apply", data={"csrf_token": csrf(bob)})
    assert r.status_code == 303 and r.headers["Location"] == f"/u/{b_token}/preview"
    again = bob.get(r.headers["Location"]).text  # what a reload shows: no second POST
    assert "Nothing was sent yet; Apply works again when the other run ends." in again
    assert "spring.csv is being sent" in again
    assert "City: York → Leeds" in again
    assert services(app).jobs.current() is jobs_before  # nothing of Bob's started

    writes_during = emu.stats()["writes"]
    assert finish(emu, alice, a_job)["state"] == "done"
    assert writes_during <= 10 and emu.stats()["writes"] == 10  # Alice's only

    after = bob.get(f"/u/{b_token}/preview").text
    assert 'id="apply" disabled' not in after and "Please wait" not in after
    assert "Apply: send 10 changes to BSG" in after
    r = bob.post(f"/u/{b_token}/apply", data={"csrf_token": csrf(bob)})
    assert r.status_code == 303 and r.headers["Location"].startswith("/jobs/")
    assert wait_job(bob, r.headers["Location"])["state"] == "done"


def test_a_mapping_posted_during_a_run_is_kept(app: Flask, emu: Emulator) -> None:
    alice, carol = app.test_client(), app.test_client()
    a_token = previewed(alice, "spring.csv")
    r = upload(carol, CONTACTS_CSV.read_bytes(), "winter.csv")
    mapping_url = r.headers["Location"]
    form = mapping_form(carol.get(mapping_url).text)
    form.update({"default_country": "GB", "target-3": "ignore", "clear-4": "on"})
    a_job = start_slow_apply(emu, alice, a_token)

    r = carol.post(mapping_url, data=form)
    assert r.status_code == 303 and r.headers["Location"] == mapping_url
    page = carol.get(mapping_url).text
    assert "spring.csv is being sent to BSG" in page and "Your choices are kept" in page
    kept = mapping_form(page)
    assert kept["target-3"] == "ignore" and kept["clear-4"] == "on"
    assert kept["default_country"] == "GB"
    assert 'id="preview-button" disabled data-wait-for-run' in page

    finish(emu, alice, a_job)
    page = carol.get(mapping_url).text
    assert 'id="preview-button" disabled' not in page
    r = carol.post(mapping_url, data=mapping_form(page))
    assert r.status_code == 303 and r.headers["Location"].startswith("/jobs/")
    wait_job(carol, r.headers["Location"])


def test_every_post_answers_with_a_redirect(app: Flask, emu: Emulator) -> None:
    """Each POST route, in the states that refuse it and the state that does it: always 303,
    so a reload repeats a GET, never the action."""
    c = app.test_client()
    answers: dict[str, list[int]] = {}

    def post(rule: str, url: str, **data: Any) -> Any:
        r = c.post(url, data={"csrf_token": csrf(c), **data})
        answers.setdefault(rule, []).append(r.status_code)
        return r

    post("/upload", "/upload")  # no file
    post("/upload", "/upload", sheet=(io.BytesIO(b"%PDF"), "a.pdf"))  # not a sheet
    post("/upload", "/upload", sheet=(io.BytesIO(b"\x00\x01junk"), "a.xlsx"))  # unreadable
    r = post("/upload", "/upload", sheet=(io.BytesIO(CONTACTS_CSV.read_bytes()), "c.csv"))
    mapping_url = r.headers["Location"]
    token = mapping_url.split("/")[2]
    form = mapping_form(c.get(mapping_url).text)
    post("/u/<token>/apply", f"/u/{token}/apply")  # no preview yet
    post("/u/<token>/send-remaining", f"/u/{token}/send-remaining")  # nothing sent yet
    post("/u/<token>/layout", f"/u/{token}/layout", header_row="99")  # not a row shown
    post("/u/<token>/layout", f"/u/{token}/layout", header_row="1")
    post("/u/<token>/mapping", mapping_url, **{**form, "target-0": "ignore", "target-1": "ignore"})
    post("/u/<token>/mapping", mapping_url, **{**form, "header-0": "Nope"})
    r = post("/u/<token>/mapping", mapping_url, **{**form, "default_country": "GB"})
    wait_job(c, r.headers["Location"])
    r = post("/u/<token>/apply", f"/u/{token}/apply")
    job = r.headers["Location"]
    post("/jobs/<job_id>/stop", f"{job}/stop")
    wait_job(c, job)
    post("/u/<token>/apply", f"/u/{token}/apply")  # already applied
    post("/u/<token>/layout", f"/u/{token}/layout", header_row="1")  # too late
    r = post("/u/<token>/send-remaining", f"/u/{token}/send-remaining")  # after the stop
    if r.headers["Location"].startswith("/jobs/"):
        wait_job(c, r.headers["Location"])
    post("/u/<token>/send-remaining", f"/u/{token}/send-remaining")  # nothing left
    post("/history/<int:run_id>/undo", "/history/999/undo")  # no such run
    post("/history/<int:run_id>/undo", "/history/1/undo")  # a preview
    r = post("/history/<int:run_id>/undo", "/history/2/undo")
    status = wait_job(c, r.headers["Location"])
    undo_token = c.get(status["next"]).headers["Location"].split("/")[2]
    post("/u/<token>/apply", f"/u/{undo_token}/apply")
    post("/u/<token>/verify/quote", f"/u/{token}/verify/quote")  # already applied
    post("/u/<token>/verify/check", f"/u/{token}/verify/check")  # no price yet
    post("/u/<token>/verify/apply", f"/u/{token}/verify/apply")  # already applied
    post("/u/<token>/verify/stop", f"/u/{token}/verify/stop")  # nothing to stop
    post("/u/<token>/discard", f"/u/{token}/discard")
    posts = {rule.rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ())}
    assert posts == set(answers)  # a new POST route needs a line above
    assert all(code == 303 for codes in answers.values() for code in codes), answers


def test_the_live_run_is_on_every_page_and_in_history(app: Flask, emu: Emulator) -> None:
    alice, dave = app.test_client(), app.test_client()
    a_token = previewed(alice, "spring.csv")
    d_token = previewed(dave, "summer.csv")
    a_job = start_slow_apply(emu, alice, a_token)

    history = dave.get("/history").text
    for url in ("/", "/history", f"/u/{d_token}/mapping", f"/u/{d_token}/preview", "/running"):
        text = dave.get(url).text
        if url != "/running":
            assert 'id="live-banner"' in text and 'href="/running"' in text, url
        assert re.search(r"spring\.csv is being sent to BSG: \d+ of 10 sent", text), url
    live_row = re.search(r'<tr class="live-run">(.*?)</tr>', history, re.S)
    assert live_row, history
    row = live_row.group(1)
    assert "spring.csv" in row and "Running" in row and "See the live progress" in row
    assert re.search(r"\d+ of 10 sent", row)
    assert not re.search(r"[0-9a-f]{32}\.csv", history)  # never the stored name
    run_id = re.search(r'href="/history/(\d+)"', row).group(1)  # type: ignore[union-attr]
    detail = dave.get(f"/history/{run_id}").text
    assert "still running" in detail and "did not finish" not in detail

    live = dave.get("/running.json").json or {}
    assert live["state"] == "running" and live["filename"] == "spring.csv" and live["total"] == 10
    assert a_token not in str(live) and a_job.rsplit("/", 1)[1] not in str(live)
    # Alice closed her tab: her home page leads back to her own progress page
    home = alice.get("/").text
    assert 'id="live-banner"' in home
    assert alice.get("/running").headers["Location"] == a_job
    assert dave.get("/running").status_code == 200  # others get the read-only view

    finish(emu, alice, a_job)
    assert 'id="live-banner"' not in dave.get("/").text
    history = dave.get("/history").text
    assert 'class="live-run"' not in history and history.count("spring.csv") == 2
    ended = dave.get("/running.json").json or {}
    assert ended["state"] == "done" and ended["history_url"] == f"/history/{run_id}"


def test_the_stage_shows_the_person_s_file_name(app: Flask, emu: Emulator) -> None:
    c = app.test_client()
    token = previewed(c, "spring.csv")
    job = services(app).jobs.current()
    assert job is not None and job.sheet is not None
    assert job.sheet.name not in job.stage
    job.on_stage(f"reading {job.sheet.name}")
    assert job.stage == "reading spring.csv"
    assert token


def test_the_preview_after_apply_says_sending_then_applied(app: Flask, emu: Emulator) -> None:
    c = app.test_client()
    token = previewed(c, "spring.csv")
    job = start_slow_apply(emu, c, token)
    sending = c.get(f"/u/{token}/preview").text  # Back from the progress page
    assert 'id="apply"' not in sending and "Sending…" in sending
    assert f'href="{job}"' in sending
    assert "Your run is in progress" in sending
    finish(emu, c, job)
    applied = c.get(f"/u/{token}/preview").text
    assert 'id="apply"' not in applied
    assert re.search(
        r"Applied at \d\d:\d\d</strong> — <a href=\"/u/[^/]+/result\">see the result", applied
    )


def test_history_names_runs_by_their_own_sheet(emu: Emulator, tmp_path: Path) -> None:
    """Two state stores in one folder share the page's small database; each run keeps the
    name of its own upload, also after the server restarted (its uploads are gone)."""
    state = tmp_path / "state"

    def history_names(state_file: str, name: str | None) -> list[str]:
        app = make_app(emu, tmp_path, state=state / state_file)
        try:
            c = app.test_client()
            if name is not None:
                previewed(c, name)
            page = c.get("/history").text
            return re.findall(r"<td>([^<]+\.csv)</td>", page)
        finally:
            services(app).close()

    assert history_names("a.sqlite3", "spring.csv") == ["spring.csv"]
    assert history_names("b.sqlite3", "autumn.csv") == ["autumn.csv"]  # its run #1 too
    assert history_names("a.sqlite3", None) == ["spring.csv"]  # a new process, no uploads
    assert history_names("b.sqlite3", None) == ["autumn.csv"]
