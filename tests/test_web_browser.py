"""The web page end to end in a real browser: Playwright driving Debian's Chromium against the
app served on 127.0.0.1 and the emulator. Screenshots of each step go to the test's tmp_path
(docs/screenshots/ comes from test_web_a11y: `python docs/make_screenshots.py`)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import SAMPLE_SEED, Emulators, ServeApp, WebApp

from bsg_sync.emulator import Emulator

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_sheets"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 20_000

try:
    from playwright.sync_api import Browser, FilePayload, Page, sync_playwright
except ImportError:  # pragma: no cover - CI installs it
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(
        sync_playwright is None, reason="playwright is not installed (pip install playwright)"
    ),
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason="/usr/bin/chromium is missing (apt-get install -y chromium)"
    ),
]


@pytest.fixture
def served(emulator: Emulators, web_app: WebApp, serve_app: ServeApp) -> tuple[str, Emulator]:
    emu = emulator(SAMPLE_SEED, latency_ms=20)
    return serve_app(web_app(emu, concurrency=2)), emu


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, closed at the end (every browser test starts it so)."""
    assert sync_playwright is not None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def new_page(browser: Browser) -> Page:
    """A page in a browser context of its own (its own cookies: another person)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = new_page(browser)
    try:
        yield page
    finally:
        page.context.close()


def drop_file(page: Page, selector: str, path: Path) -> None:
    """Drag and drop a file onto an element, as a person dragging it from their desktop does."""
    data = page.evaluate_handle(
        """([name, text]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([text], name, {type: "text/csv"}));
            return dt;
        }""",
        [path.name, path.read_text(encoding="utf-8-sig")],
    )
    page.dispatch_event(selector, "dragenter", {"dataTransfer": data})
    page.dispatch_event(selector, "drop", {"dataTransfer": data})


def no_sideways_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.mark.slow
def test_upload_map_preview_apply_download(
    served: tuple[str, Emulator], page: Page, tmp_path: Path
) -> None:
    url, emu = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    # 1. upload, by drag and drop; the page starts at its heading, and the skip link is the
    # first thing a keyboard reaches from the top of the page
    page.goto(url)
    focused = "document.activeElement.tagName + ':' + document.activeElement.textContent"
    assert page.evaluate(focused) == "H1:Upload a contact sheet"
    first = "document.querySelector('a[href], button, input, select, textarea').textContent"
    assert page.evaluate(first) == "Skip to content"
    page.screenshot(path=str(shots / "1-upload.png"))
    drop_file(page, "#drop", SAMPLES / "contacts.csv")
    page.wait_for_url("**/mapping")

    # 2. mapping: pre-filled; set the country, make an empty Plan clear it, submit by keyboard
    assert page.locator("#target-1").input_value() == "phone"
    assert page.locator("#target-3").input_value() == "field:City"
    page.select_option("#default_country", "GB")
    page.check("input[name=clear-4]")
    page.screenshot(path=str(shots / "2-mapping.png"), full_page=True)
    page.focus("form button[type=submit] >> text=Preview the changes")
    page.keyboard.press("Enter")

    # 3. preview: the dry run's plan (the page polls the run, then moves on by itself)
    page.wait_for_url("**/preview")
    assert emu.stats()["writes"] == 0
    body = page.inner_text("main")
    assert "Apply: send 11 changes to BSG" in body
    assert "City: York → Leeds" in body
    assert "phone-precision-lost" in body
    assert no_sideways_scroll(page)
    page.screenshot(path=str(shots / "3-preview.png"))
    page.click("a:has-text('Invalid (2)')")
    assert page.locator("table.rows tbody tr").count() == 2
    page.set_viewport_size({"width": 1024, "height": 700})  # a small laptop
    assert no_sideways_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    # 4. apply: the progress page, then the result
    page.click("#apply")
    page.wait_for_url("**/jobs/*")
    page.screenshot(path=str(shots / "4-apply.png"))
    page.wait_for_url("**/result")
    body = page.inner_text("main")
    assert "11 updated" in body and "2 invalid" in body
    assert "absent" in body  # the HLR summary
    page.screenshot(path=str(shots / "5-result.png"), full_page=True)

    # 5. download the report, and check it
    with page.expect_download() as info:
        page.click("#download-report")
    report = tmp_path / "downloaded.report.xlsx"
    info.value.save_as(report)
    assert info.value.suggested_filename == "contacts.report.xlsx"
    from openpyxl import load_workbook

    rows: list[Any] = list(
        load_workbook(report, read_only=True).worksheets[0].iter_rows(values_only=True)
    )
    assert rows[0][:5] == ("Row", "Contact ID", "Phone", "Action", "Status")
    assert len(rows) == 43 and sum(1 for r in rows if r[4] == "ok") == 11

    # the emulator's final state
    assert emu.stats()["writes"] == 11
    contacts = {c["id"]: c for c in emu.contacts()}
    assert contacts[248400003]["fields"]["387716"] == "Leeds"
    cleared = [r for r in rows if r[4] == "ok" and "Plan: Pro → (empty)" in str(r[7])]
    assert len(cleared) == 1  # the clear box on the Plan column took effect
    assert contacts[cleared[0][1]]["fields"].get("387718", "") == ""

    # 6. history lists both runs
    page.click("nav >> text=History")
    assert page.locator("table.rows tbody tr").count() == 2
    page.screenshot(path=str(shots / "6-history.png"))
    assert not console_errors, console_errors  # no script errors, no CSP violations


def preview_as(page: Page, url: str, name: str) -> None:
    """Upload contacts.csv under another name, keep the pre-filled mapping, reach the preview."""
    page.goto(url)
    page.set_input_files(
        "#sheet",
        files=[
            FilePayload(
                name=name,
                mimeType="text/csv",
                buffer=(SAMPLES / "contacts.csv").read_bytes(),
            )
        ],
    )
    page.click("button:has-text('Upload and continue')")
    page.wait_for_url("**/mapping")
    page.select_option("#default_country", "GB")
    page.click("#preview-button")
    page.wait_for_url("**/preview")


@pytest.mark.slow
def test_two_people_one_run_at_a_time(
    served: tuple[str, Emulator], browser: Browser, tmp_path: Path
) -> None:
    """Alice sends while Bob waits on his preview: he sees whose run goes and how far, his
    Apply comes back by itself when it ends; Alice closes her tab and finds her run again."""
    url, emu = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    alice, bob = new_page(browser), new_page(browser)
    errors: list[str] = []
    for p in (alice, bob):
        p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    emu.config = dataclasses.replace(emu.config, latency_ms=0)
    preview_as(alice, url, "spring.csv")
    preview_as(bob, url, "autumn.csv")

    emu.config = dataclasses.replace(emu.config, latency_ms=50)
    alice.click("#apply")
    alice.wait_for_url("**/jobs/*")
    deadline = time.monotonic() + 20
    while emu.stats()["writes"] == 0:  # the first change reached BSG: it is sending
        assert time.monotonic() < deadline, "the apply never started sending"
        time.sleep(0.01)
    emu.config = dataclasses.replace(emu.config, latency_ms=1000)  # hold it while we look
    alice.wait_for_selector("#progress-text:has-text('of 10 rows')")
    bob.reload()
    assert bob.locator("#apply").is_disabled()
    note = bob.inner_text("#wait-note")
    assert "spring.csv is being sent to BSG" in note and "of 10 sent" in note
    assert "Run in progress" in bob.inner_text("#live-banner")
    assert "City: York → Leeds" in bob.inner_text("main")  # the preview is still there
    bob.screenshot(path=str(shots / "bob-waits.png"), full_page=True)
    watch = bob.context.new_page()  # Bob follows Alice's run in a second tab (read-only)
    watch.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    watch.goto(f"{url}/running")
    assert "spring.csv is being sent to BSG" in watch.inner_text("#live-sentence")
    assert watch.locator("button:has-text('Stop sending')").count() == 0

    alice.close()  # she closes the tab mid-run; her session (cookie) stays in the browser
    alice = alice.context.new_page()
    alice.goto(url)
    alice.click("#live-banner >> text=See the live progress")
    alice.wait_for_url("**/jobs/*")
    assert alice.locator("button:has-text('Stop sending')").is_visible()
    alice.goto(f"{url}/history")
    row = alice.locator("tr.live-run")
    assert "spring.csv" in row.inner_text() and "Running" in row.inner_text()
    alice.screenshot(path=str(shots / "alice-history.png"), full_page=True)

    emu.config = dataclasses.replace(emu.config, latency_ms=0)
    bob.wait_for_selector("#apply:not([disabled])")  # no reload: the page saw the run end
    watch.wait_for_selector("#live-history:not([hidden])")
    assert "has ended" in watch.inner_text("#live-sentence")
    watch.screenshot(path=str(shots / "bob-watched.png"))
    assert "That run has ended" in bob.inner_text("#wait-note")
    bob.click("#apply")
    bob.wait_for_url("**/result")
    # Alice's run already made these changes: the apply works them out again, sends none twice
    assert "39 unchanged" in bob.inner_text("main")
    bob.screenshot(path=str(shots / "bob-result.png"))
    assert emu.stats()["writes"] == 10
    assert not errors, errors
