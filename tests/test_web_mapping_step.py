"""The mapping step tells what each column holds and where it goes: sample values, each
target's type, a warning before the preview when values do not fit a date or number field
(repeated on the preview), a country dropdown that also takes what people type, fields by
name, the columns left out and why, and the lists BSG has when the sheet names another
(Flask's test client against the real emulator)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import CONTACTS_CSV, SAMPLES, make_app, mapping_form, upload, wait_job

from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.web.app import services
from bsg_sync.web.columns import fits
from bsg_sync.web.countries import country_choices, read_country

CODES = (
    b"Contact ID,Mobile,Customer no\n"
    b"248400001,07501 383981,000121\n"
    b"248400002,+44 7763 526014,000122\n"
    b"248400003,+447724814241,000123\n"
)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(), seed=SAMPLES / "seed.json") as emu:
        yield emu


@pytest.fixture
def app(emu: Emulator, tmp_path: Path) -> Iterator[Flask]:
    app = make_app(emu, tmp_path, concurrency=1)
    yield app
    services(app).close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split()).replace(" ,", ",")


def mapping_of(client: FlaskClient, data: bytes, name: str = "sheet.csv") -> tuple[str, str]:
    r = upload(client, data, name)
    assert r.status_code == 303, r.text
    url = r.headers["Location"]
    return url, client.get(url).text


def mapping_toml(app: Flask, url: str) -> str:
    upload = services(app).uploads.get(url.split("/")[2])
    assert upload is not None and upload.mapping_path is not None
    return upload.mapping_path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("date", "2022-04-28", True),
        ("date", "2022-04-28 10:30:00", True),
        ("date", "28/04/2022", True),
        ("date", "04/28/2022", True),  # month first, as a US sheet writes it
        ("date", "2022/04/28", True),
        ("date", "000121", False),
        ("date", "2022-02-30", False),
        ("date", "31/31/2022", False),
        ("date", "soon", False),
        ("number", "1 234,50", True),
        ("number", "-12.5", True),
        ("number", "12abc", False),
        ("id", "248400001", True),
        ("id", "0", False),
        ("id", "24840000１", False),  # a full-width digit is not an id
        ("phone", "+44 (0)7700 900-123", True),
        ("phone", "n/a", False),
        ("phone", "12", False),
    ],
)
def test_what_fits_a_target(kind: str, value: str, ok: bool) -> None:
    assert fits(kind, value) is ok


@pytest.mark.parametrize(
    ("typed", "region"),
    [
        ("GB", "GB"),
        ("gb", "GB"),
        ("UK", "GB"),
        ("44", "GB"),
        ("+44", "GB"),
        ("0044", "GB"),
        (" united   kingdom ", "GB"),
        ("United Kingdom (+44)", "GB"),
        ("Deutschland", "DE"),
        ("germany", "DE"),
        ("1", "US"),
        ("+49", "DE"),
        ("Côte d’Ivoire", "CI"),
        ("", ""),
        ("Narnia", None),
        ("999", None),
        ("XX", None),
    ],
)
def test_the_country_people_type_is_understood(typed: str, region: str | None) -> None:
    assert read_country(typed) == region


def test_every_country_is_named_with_its_calling_code() -> None:
    labels = dict(country_choices())
    assert labels["GB"] == "United Kingdom (+44)" and labels["DE"] == "Germany (+49)"
    assert all(re.fullmatch(r"\D.* \(\+\d+\)", label) for label in labels.values())


def test_samples_and_types_are_shown_per_column(client: FlaskClient) -> None:
    _url, page = mapping_of(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    text = words(page)
    # the first five distinct values of each column, and how many cells are filled
    assert "First name e.g. Tom, Isla, Mohammed, Harry, Grace · 42 filled" in text
    # every target names its type; the one chosen says it next to the dropdown
    assert "Custom field: Customer since (date)" in text
    assert "Custom field: City (text)" in text
    assert "Type: text field" in text and "Type: phone number" in text
    assert "field 3877" not in text
    # a phone column with one value that is not a phone says so next to it (the preview lists
    # the row; only date and number fields stop before the preview)
    assert "Check this: 1 of 42 values is not a phone number (e.g. “4.47712E+11”)." in text
    assert "Check these columns" not in text


def test_codes_mapped_to_a_date_field_warn_before_the_preview_and_on_it(
    client: FlaskClient, emu: Emulator
) -> None:
    url, page = mapping_of(client, CODES)
    form = mapping_form(page)
    assert form["target-2"] == "field:Customer no"
    form["target-2"] = "field:Customer since"  # the wrong field: a date
    r = client.post(url, data=form)
    assert r.status_code == 303 and r.headers["Location"] == url  # no preview started
    page = client.get(url).text
    warning = (
        "Column “Customer no” goes to the field “Customer since”, but 3 of 3 values are not "
        "dates (e.g. “000121”, “000122”, “000123”)."
    )
    assert warning in words(page)
    assert 'selected data-kind="date"' in page  # the choice is kept
    key = re.search(r'name="accept_types" value="([0-9a-f]+)"', page)
    assert key is not None

    # a box ticked for other warnings does not count for these
    r = client.post(url, data={**form, "accept_types": "0" * 16})
    assert r.headers["Location"] == url
    # going on anyway: the preview runs and says it again
    r = client.post(url, data={**form, "accept_types": key.group(1)})
    assert r.headers["Location"].startswith("/jobs/")
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    preview = words(client.get(url.replace("/mapping", "/preview")).text)
    assert warning in preview
    assert emu.stats()["writes"] == 0


def test_a_text_field_takes_the_codes_without_a_warning(client: FlaskClient) -> None:
    url, page = mapping_of(client, CODES)
    r = client.post(url, data=mapping_form(page))  # Customer no -> the text field
    assert r.headers["Location"].startswith("/jobs/")
    assert "Check these columns" not in client.get(url).text


@pytest.mark.parametrize("typed", ["UK", "44", "+44", "United Kingdom", "gb"])
def test_the_country_is_taken_as_people_write_it(
    client: FlaskClient, app: Flask, typed: str
) -> None:
    url, page = mapping_of(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    r = client.post(url, data={**mapping_form(page), "default_country": typed})
    assert r.headers["Location"].startswith("/jobs/"), client.get(url).text
    assert 'default_country = "GB"' in mapping_toml(app, url)
    again = client.get(url).text
    assert re.search(r'<option value="GB" selected>United Kingdom \(\+44\)</option>', again)


def test_a_country_that_does_not_exist_is_refused_with_what_to_do(client: FlaskClient) -> None:
    url, page = mapping_of(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    r = client.post(url, data={**mapping_form(page), "default_country": "Narnia"})
    assert r.headers["Location"] == url
    text = words(client.get(url).text)
    assert "“Narnia” is not a country this page knows; choose the country from the list" in text


def test_fields_are_named_by_their_names_in_mapping_problems(client: FlaskClient) -> None:
    url, page = mapping_of(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    form = mapping_form(page)
    form["target-2"] = "field:City"  # First name and City both to City
    r = client.post(url, data=form)
    assert r.headers["Location"] == url
    text = words(client.get(url).text)
    assert "two columns are mapped to the field “City”: 'First name' and 'City'" in text
    assert "field 387716" not in text


def test_the_columns_left_out_are_listed_with_why(client: FlaskClient) -> None:
    data = (
        b"Contact ID,Mobile,Notes,Empty,,City\n"
        b"248400001,07501 383981,call back,,,Leeds\n"
        b"248400002,+44 7763 526014,,,x,York\n"
    )
    url, page = mapping_of(client, data)
    text = words(page)
    assert (
        "Not sent to BSG: “Notes” (“Ignore this column” is chosen for it; choose a field to "
        "send it); “Empty” (it is empty); “Column 5” (it has no name in the sheet; choose a "
        "field to send it)." in text
    )
    r = client.post(url, data={**mapping_form(page), "default_country": "GB"})
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    preview = words(client.get(url.replace("/mapping", "/preview")).text)
    assert "Not sent to BSG: “Notes” (“Ignore this column” is chosen" in preview
    assert "“Column 5” (it has no name in the sheet" in preview


def test_an_unknown_list_name_lists_the_existing_lists(client: FlaskClient, app: Flask) -> None:
    data = (
        b"Contact ID,Mobile,Lists\n"
        b"248400001,07501 383981,Newsletter; Gold\n"
        b"248400002,+44 7763 526014,vip\n"  # another case of an existing list is fine
    )
    url, page = mapping_of(client, data)
    assert "The lists in BSG are:" in words(page)  # said next to the lists option already
    r = client.post(url, data={**mapping_form(page), "default_country": "GB"})
    assert r.headers["Location"] == url  # no preview: the run would refuse the sheet
    assert services(app).jobs.running() is None
    text = words(client.get(url).text)
    assert (
        "Column “Lists” names list that BSG does not have: “Gold”. The lists in BSG are: "
        "“Leeds store”, “Newsletter”, “Spring promo”, “VIP”. Correct the sheet, or create the "
        "lists in BSG, then upload it again." in text
    )
