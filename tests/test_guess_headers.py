"""`init` recognises phone and id headers in any casing, spacing, punctuation or camelCase."""

from __future__ import annotations

import pytest

from bsg_sync.mapping import guess_targets
from bsg_sync.models import Account, Field


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("Contact Phone Number", "phone"),
        ("homePhone", "phone"),
        ("HomePhone", "phone"),
        ("Mobile number", "phone"),
        ("MOBILE_NUMBER", "phone"),
        ("mobileNumber", "phone"),
        ("Tel.", "phone"),
        ("Tel:", "phone"),
        ("Telefon", "phone"),
        ("Téléphone", "phone"),
        ("TELEPHONE", "phone"),
        ("Móvil", "phone"),
        ("movil", "phone"),
        ("Handy", "phone"),
        ("Handynummer", "phone"),
        ("Cell", "phone"),
        ("cell-phone", "phone"),
        ("Work Phone #", "phone"),
        ("Phone 2", "phone"),
        ("  mobile  phone  ", "phone"),
        ("Numéro de téléphone", "phone"),
        ("Contact ID", "id"),
        ("contactId", "id"),
        ("CONTACT_ID", "id"),
        ("BSG id", "id"),
        ("BSG-ID", "id"),
        ("bsgContactId", "id"),
        ("id", "id"),
        ("ID", "id"),
        ("Lists", "groups"),
        ("Phone type", None),
        ("Customer ID", None),
        ("Number", None),
        ("Contact", None),
        ("Name", None),
        ("Idea", None),
    ],
)
def test_guessed_target(header: str, target: str | None) -> None:
    assert guess_targets([header], Account()).get(header) == target


def test_an_exact_name_wins_over_a_guessed_one() -> None:
    assert guess_targets(["Home phone", "Mobile"], Account()) == {"Mobile": "phone"}
    assert guess_targets(["Home phone", "Work phone"], Account()) == {"Home phone": "phone"}


def test_a_custom_field_named_like_a_phone_word_is_still_a_field_when_exact() -> None:
    account = Account(fields=(Field(1, "Office Phone"),))
    assert guess_targets(["Mobile", "Office Phone"], account) == {
        "Mobile": "phone", "Office Phone": "field:Office Phone"}


def test_a_header_found_below_row_1_is_written_into_the_mapping() -> None:
    from bsg_sync.mapping import generate_mapping, parse_mapping

    text, _ = generate_mapping(["Mobile"], Account(), default_country=None, header_row=4)
    assert parse_mapping(text).options["header_row"] == 4
    text, _ = generate_mapping(["Mobile"], Account(), default_country=None, header_row=1)
    assert "header_row" not in parse_mapping(text).options
