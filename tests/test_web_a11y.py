"""Narrow screens and accessibility in a real browser (Playwright driving Debian's Chromium,
as test_web_browser does): axe-core (vendored in tests/axe) over every page at 390 px and
1280 px fails on any serious or critical violation; at 390 px nothing makes a page wider
than the screen; focus starts at each page's heading and shows as a ring of at least 3:1;
the move from progress to preview is announced; a failed preview says so and stops its bar.
Screenshots of every page at both widths go to the test's tmp_path; with
BSG_SYNC_UPDATE_SCREENSHOT=1 the steps are also saved to docs/screenshots/ for the README."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_web_browser import TIMEOUT_MS, chromium, pytestmark, served
from test_web_browser_flows import titled_workbook

from bsg_sync.emulator import Emulator
from bsg_sync.state import StateStore

__all__ = ["pytestmark", "served"]

AXE = Path(__file__).parent / "axe" / "axe.min.js"
CONTACTS = Path(__file__).resolve().parent.parent / "sample_sheets" / "contacts.csv"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
WIDTHS = (390, 1280)
BLOCKING = ("serious", "critical")
ALSO_BLOCKING = ("region",)  # moderate, but issue 14 found it on 16 pages: kept fixed
CODES = (
    "Contact ID,Mobile,Customer no\n"
    "248400001,07501 383981,000121\n"
    "248400002,+44 7763 526014,000122\n"
)

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One browser for the module (each test has its own context: its own cookies)."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp: the page's CSP (script-src 'self') would refuse the injected axe script
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.console_errors = errors
    try:
        yield page
    finally:
        context.close()


def axe_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now (axe loaded)."""
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in BLOCKING or v["id"] in ALSO_BLOCKING
    ]


def page_width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def check_page(page: Any, url: str, name: str, shots: Path) -> list[str]:
    """Open the page once and look at it at each width: its axe problems, and any sideways
    overflow (a screenshot of each width for the artefacts)."""
    found = []
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    page.goto(url)
    page.wait_for_load_state("load")
    page.add_script_tag(path=str(AXE))
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(shots / f"{name}-{width}.png"))
        found += [f"{name} at {width} px: {p}" for p in axe_problems(page)]
        if page_width(page) > width:
            found.append(f"{name} at {width} px: the page is {page_width(page)} px wide")
    return found


def hold(emu: Emulator, latency_ms: float) -> None:
    emu.config = dataclasses.replace(emu.config, latency_ms=latency_ms)


@pytest.mark.timeout(300)  # one flow, then 11 pages x 2 widths through axe
def test_every_page_passes_axe_and_fits_a_phone(
    served: tuple[str, Emulator], page: Any, tmp_path: Path
) -> None:
    url, emu = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    hold(emu, 0)
    pages: dict[str, str] = {"upload": url, "history-empty": f"{url}/history"}
    steps: list[tuple[str, Path]] = []

    def shot(name: str) -> None:
        path = shots / f"step-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        steps.append((name, path))

    page.goto(url)
    shot("1-upload")
    page.set_input_files("#sheet", str(titled_workbook(tmp_path / "customers.xlsx")))
    page.click("button:has-text('Upload and continue')")
    page.wait_for_url("**/mapping")
    pages["mapping"] = page.url
    page.locator("#where-h").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "step-2-tab-and-header.png"))
    steps.append(("2-tab-and-header", shots / "step-2-tab-and-header.png"))
    page.select_option("#default_country", "GB")
    page.locator("table.mapping").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "step-3-mapping.png"))
    steps.append(("3-mapping", shots / "step-3-mapping.png"))
    page.click("#preview-button")
    page.wait_for_url("**/preview")
    pages["preview"] = page.url
    pages["preview-invalid"] = page.url + "?status=invalid"
    shot("4-preview")

    hold(emu, 400)  # slow enough to see the progress page while it sends
    page.click("#apply")
    page.wait_for_url("**/jobs/*")
    page.wait_for_function(  # a few sent, so the bar shows how far it is
        "/sending: [3-9] of 10 rows/.test(document.getElementById('progress-text').textContent)"
    )
    shot("5-progress")
    hold(emu, 1500)  # held while the progress page and the live view are checked
    progress = page.url
    problems = check_page(page, progress, "progress", shots)
    other = page.context.browser.new_context(bypass_csp=True)  # another person watching
    try:
        watcher = other.new_page()
        watcher.goto(url)
        problems += check_page(watcher, f"{url}/running", "live-other", shots)
    finally:
        other.close()
    hold(emu, 0)
    page.goto(progress)
    page.wait_for_url("**/result")
    pages["result"] = page.url
    shot("6-result")
    pages["history"] = f"{url}/history"
    pages["history-run"] = f"{url}/history/2"
    pages["not-found"] = f"{url}/u/nope/mapping"
    for name, address in pages.items():
        problems += check_page(page, address, name, shots)
    assert not problems, "\n".join(problems)
    errors = [e for e in page.console_errors if "status of 404" not in e]  # the 404 page's own
    assert not errors, errors
    if os.environ.get("BSG_SYNC_UPDATE_SCREENSHOT") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for name, path in steps:
            shutil.copy(path, DOCS / f"{name}.png")


def test_the_mapping_table_fits_390_px_and_warns_as_the_target_changes(
    served: tuple[str, Emulator], page: Any, tmp_path: Path
) -> None:
    url, _emu = served
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(url)
    sheet = tmp_path / "codes.csv"
    sheet.write_text(CODES, encoding="utf-8")
    page.set_input_files("#sheet", str(sheet))
    page.click("button:has-text('Upload and continue')")
    page.wait_for_url("**/mapping")
    assert page_width(page) <= 390
    # focus starts at the heading, not the body
    assert page.evaluate("document.activeElement.tagName") == "H1"
    # every "clears the value" box has a name of its own
    names = [
        page.get_by_role("checkbox", name=f"clears the value of “{h}”").count()
        for h in ("Contact ID", "Mobile", "Customer no")
    ]
    assert names == [1, 1, 1]
    # the warning follows the dropdown, before anything is posted
    warn = page.locator("#warn-2")
    assert warn.is_hidden()
    page.select_option("#target-2", "field:Customer since")
    assert "2 of 2 values are not dates" in warn.inner_text()
    assert "Type: date field" in page.inner_text("#type-2")
    page.select_option("#target-2", "field:Customer no")
    assert warn.is_hidden()
    page.screenshot(path=str(tmp_path / "mapping-390.png"), full_page=True)
    assert not page.console_errors, page.console_errors


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    def lum(rgb: tuple[float, ...]) -> float:
        c = [x / 255 for x in rgb[:3]]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_focus_ring_has_3_to_1_against_white(served: tuple[str, Emulator], page: Any) -> None:
    url, _emu = served
    page.goto(url)
    page.focus("button:has-text('Upload and continue')")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # a keyboard focus: :focus-visible applies
    color = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; })()"
    )
    assert color[0] == "solid" and float(color[1].rstrip("px")) >= 2
    rgb = tuple(float(x) for x in color[2][color[2].index("(") + 1 : -1].split(",")[:3])
    assert contrast(rgb, (255, 255, 255)) >= 3


def test_progress_to_preview_is_announced(served: tuple[str, Emulator], page: Any) -> None:
    url, _emu = served
    page.goto(url)
    page.set_input_files("#sheet", str(CONTACTS))
    page.click("button:has-text('Upload and continue')")
    page.wait_for_url("**/mapping")
    page.select_option("#default_country", "GB")
    page.click("#preview-button")
    page.wait_for_url("**/jobs/*")
    assert page.get_attribute("#progress-text", "aria-live") == "polite"
    page.wait_for_selector("#progress-text:has-text('The preview is ready; opening it.')")
    page.wait_for_url("**/preview")
    assert page.evaluate("document.activeElement.textContent") == "Preview: what would change"


def test_a_failed_preview_says_so_and_stops_its_bar(
    served: tuple[str, Emulator], page: Any, tmp_path: Path
) -> None:
    url, _emu = served
    page.goto(url)
    page.set_input_files("#sheet", str(CONTACTS))
    page.click("button:has-text('Upload and continue')")
    page.wait_for_url("**/mapping")
    page.select_option("#default_country", "GB")
    with StateStore(tmp_path / "state" / "state.sqlite3") as store:  # as a sync from the command line
        store.acquire_lock()
        try:
            page.click("#preview-button")
            page.wait_for_url("**/jobs/*")
            page.wait_for_selector("#job-error:not([hidden])")
        finally:
            store.release_lock()
    heading = page.inner_text("h1")
    assert heading == "The preview could not be worked out"
    assert page.locator("#bar").is_hidden()
    assert "Working out the changes" not in page.inner_text("main")
    page.screenshot(path=str(tmp_path / "failed-preview.png"), full_page=True)
    page.reload()  # the page as the server renders it says the same
    assert page.inner_text("h1") == "The preview could not be worked out"
    assert page.locator("#bar").is_hidden()
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:  # it does not move on to a preview that is not there
        assert "/jobs/" in page.url
        time.sleep(0.1)
    assert json.dumps(page.console_errors) == "[]"


def test_codes_to_a_date_field_warn_and_the_preview_repeats_it(
    served: tuple[str, Emulator], page: Any, tmp_path: Path
) -> None:
    url, emu = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page.goto(url)
    sheet = tmp_path / "codes.csv"
    sheet.write_text(CODES, encoding="utf-8")
    page.set_input_files("#sheet", str(sheet))
    page.click("button:has-text('Upload and continue')")
    page.wait_for_url("**/mapping")
    page.select_option("#target-2", "field:Customer since")
    page.select_option("#default_country", label="United Kingdom (+44)")
    page.click("#preview-button")
    page.wait_for_url("**/mapping")  # back, with the warning, before any preview
    warning = page.inner_text("#type-warnings")
    assert "2 of 2 values are not dates" in warning
    assert page.locator("#default_country").input_value() == "GB"
    page.screenshot(path=str(shots / "1-warned.png"), full_page=True)
    page.check("#accept-types")
    page.click("#preview-button")
    page.wait_for_url("**/preview")
    assert "2 of 2 values are not dates" in page.inner_text("#type-warnings")
    page.screenshot(path=str(shots / "2-preview-warns.png"), full_page=True)
    assert emu.stats()["writes"] == 0
    assert not page.console_errors, page.console_errors
