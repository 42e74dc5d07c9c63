"""Flows in a real browser (Playwright driving Debian's Chromium, as test_web_browser does):
a workbook whose contacts sit on tab 2 under a title, and undoing that send from History.
Screenshots of each step go to the test's tmp_path."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest
from test_web_browser import browser, page, pytestmark, served  # noqa: F401 - fixtures
from test_web_layout import CONTACT_ROWS, READ_ME, TITLE

from bsg_sync.emulator import Emulator

__all__ = ["pytestmark"]


def book(emu: Emulator) -> dict[int, tuple[str, object, object]]:
    return {int(c["id"]): (c["phone"], c["fields"], c["groups"]) for c in emu.contacts()}


def titled_workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    readme = wb.active
    assert readme is not None
    readme.title = "Read me"
    for row in READ_ME:
        readme.append(row)
    contacts = wb.create_sheet("Contacts")
    for row in [TITLE, [], *CONTACT_ROWS]:
        contacts.append(row)
    out = io.BytesIO()
    wb.save(out)
    path.write_bytes(out.getvalue())
    return path


@pytest.mark.slow
def test_tab_and_header_choice_then_undo_from_history(
    served: tuple[str, Emulator],  # noqa: F811
    page: object,  # noqa: F811
    tmp_path: Path,
) -> None:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    url, emu = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    before = book(emu)

    # upload: the Contacts tab (behind "Read me") and its header on row 3 are found
    page.goto(url)
    page.set_input_files("#sheet", str(titled_workbook(tmp_path / "customers.xlsx")))
    page.click("button:has-text('Upload and continue')")
    page.wait_for_url("**/mapping")
    assert page.locator("input[name=tab][value=Contacts]").is_checked()
    assert page.locator("#hr-3").is_checked()
    assert "Read me: 1 row" in page.inner_text("#tab-form")
    assert page.locator("#target-1").input_value() == "phone"
    page.screenshot(path=str(shots / "1-tab-and-header.png"), full_page=True)

    # the person clicks the title row, sees the columns change, and clicks row 3 again
    page.click("label[for=hr-1]")
    page.click("#use-row")
    page.wait_for_url("**/mapping")
    assert page.locator("#hr-1").is_checked()
    assert TITLE[0] in page.inner_text("table.mapping")
    page.click("label[for=hr-3]")
    page.click("#use-row")
    page.wait_for_url("**/mapping")
    assert page.locator("#target-1").input_value() == "phone"

    # preview and apply
    page.select_option("#default_country", "GB")
    page.click("#preview-button")
    page.wait_for_url("**/preview")
    page.click("#apply")
    page.wait_for_url("**/result")
    synced = book(emu)
    assert synced != before

    # History: undo the send -> its preview -> apply -> every contact as before
    page.click("nav >> text=History")
    page.screenshot(path=str(shots / "2-history.png"), full_page=True)
    page.click("#undo-2")
    page.wait_for_url("**/preview")
    body = page.inner_text("main")
    assert "Undo of run 2: what would be restored" in body
    assert "Nothing has been restored yet." in body
    page.screenshot(path=str(shots / "3-undo-preview.png"), full_page=True)
    assert book(emu) == synced  # the preview restored nothing
    page.click("#apply")
    page.wait_for_url("**/result")
    assert "Undone: run 2" in page.inner_text("main")
    page.screenshot(path=str(shots / "4-undo-result.png"), full_page=True)
    assert book(emu) == before
    page.click("nav >> text=History")
    assert "Undo of run 2" in page.inner_text("table.rows")
    page.go_back()  # back to the result, then reload: nothing is undone twice
    page.reload()
    assert book(emu) == before
    assert not errors, errors
