"""The "Check numbers first" step in a real browser (Playwright driving Debian's Chromium)
against the app on 127.0.0.1 and the emulator: preview → price → check (progress) → results
→ Apply without the unreachable numbers. Screenshots go to the test's tmp_path."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_web_browser import TIMEOUT_MS, chromium, pytestmark

from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.web import WebConfig, create_app
from bsg_sync.web.app import services

HLR_KEY = "hlrBrowserKey0123"
SEED = {"fields": [{"id": 387714, "name": "Name", "type": "text"}], "groups": [],
        "contacts": [{"id": 1001, "phone": 447700900101, "fields": {"387714": "A"}}]}
# last digit: 4 active, 6 absent, 8 failed
SHEET = b"phone,Name\n447700900101,A2\n447700900104,D\n447700900106,F\n447700900108,H\n"

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Page

__all__ = ["pytestmark"]  # the browser tests' skips: no playwright, or no Chromium


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Emulator]]:
    from werkzeug.serving import make_server

    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    config = EmulatorConfig(hlr_api_key=HLR_KEY, hlr_delay=0.3, latency_ms=10)
    with Emulator(config, seed=seed) as emu:
        app = create_app(WebConfig(
            api_url=emu.url, api_key="live_browser_check_key", state=tmp_path / "s.sqlite3",
            max_rps=None, policy=RetryPolicy(backoff_initial=0.01, backoff_max=0.05,
                                             retry_after_cap=0.1),
            upload_root=tmp_path, hlr_url=emu.url + "/rest", hlr_api_key=HLR_KEY,
            hlr_poll_interval=0.1))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", emu
        finally:
            server.shutdown()
            server.server_close()
            services(app).close()


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()


def test_check_numbers_first_then_apply_without_the_dead_ones(
        served: tuple[str, Emulator], page: Page, tmp_path: Path) -> None:
    url, emu = served
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    sheet: FilePayload = {"name": "numbers.csv", "mimeType": "text/csv", "buffer": SHEET}
    page.set_input_files("#sheet", files=[sheet])
    page.click("button:has-text('Upload and continue')")
    page.wait_for_url("**/mapping")
    page.select_option("#default_country", "GB")
    page.check("input[name=create_missing]")
    page.click("#preview-button")
    page.wait_for_url("**/preview")

    # the price first: the page follows the work by itself and pays nothing
    page.click("#check-first button")
    page.wait_for_selector("#quote")
    assert "3 numbers would be checked for at most 0.0210000 EUR" in page.inner_text("#quote")
    assert emu.hlr_stats()["lookups"] == 0
    page.screenshot(path=str(tmp_path / "1-price.png"))

    # confirmed: the progress, then the results per status
    page.click("#check-now")
    page.wait_for_selector("#check-bar")
    page.screenshot(path=str(tmp_path / "2-checking.png"))
    page.wait_for_selector("#check-counts", timeout=TIMEOUT_MS)
    counts = page.inner_text("#check-counts")
    assert "Reachable" in counts and "Switched off" in counts and "Does not exist" in counts
    assert "Row 4: 447700900106 absent" in page.inner_text("#dead")
    assert page.is_checked("#skip")
    page.screenshot(path=str(tmp_path / "3-results.png"), full_page=True)

    # Apply, leaving the unreachable numbers out
    page.click("#apply")
    page.wait_for_url("**/result")
    assert "number-unreachable" in page.inner_text("main")
    phones = {str(c["phone"]) for c in emu.contacts()}
    assert "447700900104" in phones and not {"447700900106", "447700900108"} & phones
    assert emu.hlr_stats()["lookups"] == 3
    assert not errors, errors  # no script errors, no CSP violations
