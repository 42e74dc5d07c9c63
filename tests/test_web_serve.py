"""`bsg-sync serve` takes --concurrency / --max-rps / --no-rate-limit like `sync`, and the
page says how fast it sends and about how long an apply takes (a real server process on
127.0.0.1, with a timeout)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import requests
from kit import WebApp
from web_helpers import upload_and_map, wait_job, words

from bsg_sync.emulator import Emulator
from bsg_sync.web.app import services

ROOT = Path(__file__).resolve().parent.parent


def served_page(emu: Emulator, tmp_path: Path, *args: str) -> str:
    """Start `bsg-sync serve --port 0 ARGS`, fetch its home page, stop it."""
    env = {**os.environ, "BSG_API_KEY": "live_serve_test_key", "PYTHONPATH": str(ROOT)}
    env.pop("BSG_SYNC_WEB_PASSWORD", None)
    command = [sys.executable, "-m", "bsg_sync", "serve", "--port", "0", "--json",
               "--api-url", emu.url, "--allow-insecure-http",
               "--state", str(tmp_path / "state.sqlite3"), *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            url = json.loads(line)["url"]
            return requests.get(url, timeout=10).text
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_serve_takes_the_sending_options(emu: Emulator, tmp_path: Path) -> None:
    text = words(served_page(emu, tmp_path, "--concurrency", "3", "--max-rps", "7"))
    assert "Changes go to BSG 3 at a time, at most 7 requests a second." in text
    text = words(served_page(emu, tmp_path, "--no-rate-limit"))
    assert "with no cap on requests a second" in text


def test_the_preview_says_about_how_long_the_apply_takes(emu: Emulator, web_app: WebApp) -> None:
    app = web_app(emu)
    svc = services(app)
    svc.config = dataclasses.replace(svc.config, max_rps=2.0)
    client = app.test_client()
    token, job = upload_and_map(client)
    wait_job(client, job, timeout=60)
    text = words(client.get(f"/u/{token}/preview").text)
    found = re.search(r"Apply: send (\d+) changes", text)
    assert found, text
    planned = int(found.group(1))
    # each change is a fresh read and a write: two requests, at 2 a second
    assert f"at most 2 requests a second: {planned} changes take about" in text
    assert f"about {planned} s" in text or f"about {planned // 60} min" in text
