"""Tabs and header rows on the page: a workbook's tabs are listed with their row counts, the
one that looks like contacts (else the one Excel opens on) is preselected and can be
switched; the first rows are shown as a grid with the detected header row chosen, and the
person can choose another (Flask's test client against the real emulator)."""

from __future__ import annotations

import csv
import html
import io
import re

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import CONTACTS_CSV, csrf, mapping_form, open_mapping, wait_job

CONTACT_ROWS = [r for r in csv.reader(io.StringIO(CONTACTS_CSV.read_text(encoding="utf-8-sig"))) if any(r)]
TITLE = ["Spring customers — export of 3 May"]


def workbook(tabs: list[tuple[str, list[list[str]]]], active: int = 0) -> bytes:
    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    for name, rows in tabs:
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.active = active
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


READ_ME = [["How to use this file"], ["Fill in the Contacts tab, then upload it."]]


def mapping_of(client: FlaskClient, data: bytes, name: str) -> tuple[str, str]:
    return open_mapping(client, data, name)


def headers_of(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'name="header-\d+" value="([^"]*)"', page)]


def checked(page: str, name: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(
        rf'<input type="radio" name="{name}" value="([^"]*)"[^>]*? checked', page)]


def grid_rows(page: str) -> list[str]:
    return re.findall(r'<label for="hr-\d+">(Row \d+)</label>', page)


def previewed_changes(client: FlaskClient, mapping_url: str, page: str) -> int:
    form = mapping_form(page)
    form["default_country"] = "GB"
    r = client.post(mapping_url, data=form)
    assert r.status_code == 303 and r.headers["Location"].startswith("/jobs/"), r.text
    status = wait_job(client, r.headers["Location"])
    assert status["state"] == "done", status
    return int(status["counts"].get("planned", 0))


def layout_post(client: FlaskClient, mapping_url: str, **fields: str) -> str:
    """Post the layout form; the mapping page it redirects to."""
    token = mapping_url.split("/")[2]
    r = client.post(f"/u/{token}/layout", data={"csrf_token": csrf(client), **fields})
    assert r.status_code == 303 and r.headers["Location"] == mapping_url, r.text
    return client.get(mapping_url).text


def test_contacts_behind_a_read_me_tab_are_found_and_listed_with_row_counts(app: Flask) -> None:
    client = app.test_client()
    data = workbook([("Read me", READ_ME), ("Contacts", CONTACT_ROWS)])
    url, page = mapping_of(client, data, "book.xlsx")
    assert checked(page, "tab") == ["Contacts"]
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert "Read me : 1 row" in words  # its first row is the header: one data row
    assert f"Contacts : {len(CONTACT_ROWS) - 1} rows, looks like contacts" in words
    assert headers_of(page) == CONTACT_ROWS[0]
    assert previewed_changes(client, url, page) > 0  # the run reads the same tab


def test_the_tab_excel_opens_on_is_preselected_when_it_looks_like_contacts(app: Flask) -> None:
    client = app.test_client()
    other = [CONTACT_ROWS[0], *CONTACT_ROWS[1:3]]
    data = workbook([("Old", other), ("Current", CONTACT_ROWS)], active=1)
    _, page = mapping_of(client, data, "book.xlsx")
    assert checked(page, "tab") == ["Current"]
    data = workbook([("Old", other), ("Current", CONTACT_ROWS)], active=0)
    _, page = mapping_of(client, data, "book.xlsx")
    assert checked(page, "tab") == ["Old"]


@pytest.mark.slow
def test_the_person_can_switch_the_tab(app: Flask) -> None:
    client = app.test_client()
    data = workbook([("Read me", READ_ME), ("Contacts", CONTACT_ROWS)])
    url, page = mapping_of(client, data, "book.xlsx")
    page = layout_post(client, url, tab="Read me")
    assert checked(page, "tab") == ["Read me"]
    assert headers_of(page) == ["How to use this file"]
    page = layout_post(client, url, tab="Contacts")
    assert headers_of(page) == CONTACT_ROWS[0]
    assert previewed_changes(client, url, page) > 0


def titled(rows: list[list[str]]) -> list[list[str]]:
    return [TITLE, [], *rows]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_title_above_the_headers_is_shown_and_the_header_row_detected(
    app: Flask, kind: str
) -> None:
    client = app.test_client()
    rows = titled(CONTACT_ROWS)
    if kind == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        data = buf.getvalue().encode()
    else:
        data = workbook([("Sheet1", rows)])
    url, page = mapping_of(client, data, f"titled.{kind}")
    assert headers_of(page) == CONTACT_ROWS[0]  # not "Column 2"...
    assert checked(page, "header_row") == ["3"]
    assert grid_rows(page)[:3] == ["Row 1", "Row 3", "Row 4"]  # the blank row 2 is not shown
    assert html.escape(TITLE[0]) in page
    assert previewed_changes(client, url, page) > 0  # the run reads from row 3 too


def test_the_person_can_choose_another_header_row(app: Flask) -> None:
    client = app.test_client()
    data = workbook([("Sheet1", titled(CONTACT_ROWS))])
    url, page = mapping_of(client, data, "titled.xlsx")
    page = layout_post(client, url, header_row="1")
    assert checked(page, "header_row") == ["1"]
    assert headers_of(page)[0] == TITLE[0]
    page = layout_post(client, url, header_row="3")
    assert headers_of(page) == CONTACT_ROWS[0]
    assert grid_rows(page)[0] == "Row 1"  # the grid still shows the title


def test_a_choice_not_offered_is_refused_with_a_sentence(app: Flask) -> None:
    client = app.test_client()
    data = workbook([("Read me", READ_ME), ("Contacts", CONTACT_ROWS)])
    url, _ = mapping_of(client, data, "book.xlsx")
    token = url.split("/")[2]
    for fields, sentence in (
        ({"tab": "Nope"}, "That tab is not in this workbook; choose one listed."),
        ({"header_row": "999"}, "Choose one of the rows shown as the header row."),
    ):
        r = client.post(f"/u/{token}/layout", data={"csrf_token": csrf(client), **fields})
        assert r.status_code == 303 and r.headers["Location"] == url
        assert sentence in client.get(url).text


@pytest.mark.slow
def test_a_new_layout_drops_the_old_preview(app: Flask) -> None:
    client = app.test_client()
    data = workbook([("Sheet1", titled(CONTACT_ROWS))])
    url, page = mapping_of(client, data, "titled.xlsx")
    assert previewed_changes(client, url, page) > 0
    token = url.split("/")[2]
    layout_post(client, url, header_row="1")
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["Location"] == url  # preview first, again


def test_an_empty_first_tab_does_not_refuse_the_workbook(app: Flask) -> None:
    client = app.test_client()
    data = workbook([("Sheet1", []), ("Contacts", CONTACT_ROWS)])
    url, page = mapping_of(client, data, "book.xlsx")
    assert checked(page, "tab") == ["Contacts"]
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert "Sheet1 : empty" in words
    assert headers_of(page) == CONTACT_ROWS[0]
    assert "--sheet" not in page
    assert previewed_changes(client, url, page) > 0  # the run reads Contacts, not Sheet1
