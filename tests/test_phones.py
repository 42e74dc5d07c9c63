"""Table tests for phone normalisation and validation."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_sync.phones import PhoneNormaliser, PhoneResult, _normalise, _shortcut, normalise_phone

OK_CASES = [
    # (text, default_country, digits)
    ("+44 7700 900123", None, "447700900123"),
    ("447700900123", None, "447700900123"),
    ("447700900123", "GB", "447700900123"),
    ("00 44 7700 900123", None, "447700900123"),
    ("+44 (0)7700 900123", None, "447700900123"),
    ("+44 (0) 20 7946 0000", None, "442079460000"),
    ("07700 900123", "GB", "447700900123"),
    ("07700-900-123", "gb", "447700900123"),
    ("(020) 7946 0000", "GB", "442079460000"),
    ("7700900123", "GB", "447700900123"),
    ("tel:+44-7700-900123", None, "447700900123"),
    ("TEL: +447700900123", None, "447700900123"),
    ("447700900123.0", None, "447700900123"),
    ("  +44.7700.900.123  ", None, "447700900123"),
    ("+44/7700/900123", None, "447700900123"),
    ("+44\u00a07700\u00a0900123", None, "447700900123"),
    ("2025550123", "US", "12025550123"),
    ("(202) 555-0123", "US", "12025550123"),
    ("1 202 555 0123", "US", "12025550123"),
    ("+1 (202) 555-0123", None, "12025550123"),
    ("011 44 7700 900123", "US", "447700900123"),
    ("06 12 34 56 78", "FR", "33612345678"),
    ("+33 6 12 34 56 78", None, "33612345678"),
    ("0033612345678", "GB", "33612345678"),
    ("33612345678", "GB", "33612345678"),
    ("030 123456", "DE", "4930123456"),
    ("+49 30 123456", None, "4930123456"),
    ("+39 06 1234 5678", None, "390612345678"),
    ("3912345678", "IT", "393912345678"),
    ("393912345678", "IT", "393912345678"),
    ("8 912 345 67 89", "RU", "79123456789"),
    ("+7 912 345-67-89", None, "79123456789"),
    ("+91 98765 43210", None, "919876543210"),
    ("098765 43210", "IN", "919876543210"),
    ("+234 803 123 4567", None, "2348031234567"),
    ("+61 4 1234 5678", None, "61412345678"),
    ("0412 345 678", "AU", "61412345678"),
]

ERROR_CASES = [
    # (text, default_country, code, fragment of the sentence)
    ("", None, "missing-phone", "no phone"),
    ("   ", "GB", "missing-phone", "no phone"),
    ("4.47712E+11", None, "phone-precision-lost", "scientific notation"),
    ("4,47712E+11", "GB", "phone-precision-lost", "scientific notation"),
    ("4.47712e11", None, "phone-precision-lost", "'4.47712e11'"),
    ("+4.47712E+11", None, "phone-precision-lost", "Excel"),
    ("4477009001231234", None, "phone-precision-lost", "16 digits"),
    ("44770090012312340", "GB", "phone-precision-lost", "17 digits"),
    ("07700 900123", None, "invalid-phone", "add default_country"),
    ("7700900123", None, "invalid-phone", "add default_country"),
    ("+44 7700 9001", None, "invalid-phone", "+44"),
    ("+44 7700 9001 2312 3", None, "invalid-phone", "after country code +44"),
    ("+44 7700 9001 2312 34", None, "invalid-phone", "at most 15"),
    ("+999 123456789", None, "invalid-phone", "known country calling code"),
    ("00", "GB", "invalid-phone", "known country calling code"),
    ("+", None, "invalid-phone", "other than digits"),
    ("+1 800 FLOWERS", None, "invalid-phone", "other than digits"),
    ("call me", "GB", "invalid-phone", "'call me'"),
    ("+447700900123 ext 12", None, "invalid-phone", "other than digits"),
    ("12345", None, "invalid-phone", "'12345'"),
    ("0770", "GB", "invalid-phone", "national number in GB"),
    ("+44 20 79", None, "invalid-phone", "after country code +44"),
    ("12345", "GB", "invalid-phone", "'12345'"),
    ("0123456", "GB", "invalid-phone", "national number in GB"),
    ("\uff0b447700900123", None, "invalid-phone", "other than digits"),
    ("\u0664\u0664\u0667\u0667\u0660\u0660", None, "invalid-phone", "other than digits"),
    ("07700 900123 / 07700 900124", "GB", "invalid-phone", "22 digits"),
]


@pytest.mark.parametrize(("text", "country", "digits"), OK_CASES)
def test_valid_phones_normalise_to_international_digits(
    text: str, country: str | None, digits: str
) -> None:
    result = normalise_phone(text, country)
    assert (result.digits, result.error_code, result.error) == (digits, "", "")
    assert result.ok


@pytest.mark.parametrize(("text", "country", "code", "fragment"), ERROR_CASES)
def test_invalid_phones_have_code_and_one_sentence(
    text: str, country: str | None, code: str, fragment: str
) -> None:
    result = normalise_phone(text, country)
    assert result.digits is None
    assert result.error_code == code
    assert fragment in result.error
    assert result.error.endswith(".") and result.error.count(". ") == 0
    if text.strip():
        assert repr(text.strip()) in result.error


def test_normaliser_caches_by_text_and_matches_function() -> None:
    normalise = PhoneNormaliser("GB")
    first = normalise("7700 900123")  # no trunk prefix: phonenumbers decides, once
    assert normalise("7700 900123") is first
    assert first == normalise_phone("7700 900123", "GB") == PhoneResult("447700900123")
    assert normalise("07700 900123") == normalise_phone("07700 900123", "GB")
    assert normalise("4.47712E+11").error_code == "phone-precision-lost"


# --------------------------------------------------------------------------- the shortcut
# normalise_phone decides the common cells ("+44 7700 900123", "07700 900123", "447700900123"
# with a default country) without phonenumbers; it must give what the full path gives for
# every cell, whatever it decides or leaves to the full path.

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
ODD_COUNTRIES = ["gb", "Us", "XX", "ZZ", "001", "", " GB"]


def _same_as_full_path(text: str, country: str | None) -> None:
    full = _normalise(text, country)
    assert normalise_phone(text, country) == full, (text, country)
    assert PhoneNormaliser(country)(text) == full, (text, country)


def test_shortcut_decides_the_common_cells() -> None:
    decide = _shortcut("GB")
    assert decide is not None
    for text in ("+44 7700 900123", "07700 900123", "447700900123", " +447700900123 "):
        assert decide(text) == PhoneResult("447700900123"), text
    for text in ("7700 900123", "0044 7700 900123", "+1 202 555 0123", "07700-900123",
                 "00447700900123", "+44 7700 9001", "4.47712E+11", "44 7700 900123 ext 1"):
        assert decide(text) is None, text  # left to the full path


def _boundary_cells(region: str) -> list[str]:
    """Cells around every length the region's code, trunk and `+` allow (and one beyond)."""
    code = str(phonenumbers.country_code_for_region(region))
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    trunk = (meta.national_prefix if meta is not None else None) or "0"
    cells = []
    for size in range(3, 15):
        rest = "7123456789012345"[:size]
        for head in (code, "+" + code, "+ " + code + " ", trunk, "+" + trunk, "00" + code,
                     trunk + trunk, ""):
            cells += [head + rest, head + " " + rest, head + rest[:1] + "0" * (size - 1),
                      head + rest[:-1] + "\u0664"]  # an Arabic-Indic 4: a digit, not ASCII
    return cells


@pytest.mark.parametrize("region", REGIONS)
def test_shortcut_agrees_with_the_full_path_for_every_region(region: str) -> None:
    for text in _boundary_cells(region):
        _same_as_full_path(text, region)


_DIGITS = st.text("0123456789", max_size=16)
_CODES = st.sampled_from(["44", "1", "7", "33", "49", "39", "91", "999", "800", "880", "0"])
_NOISE = st.sampled_from(["", " ", "  ", "\t", "-", ".", "(0)", "e5", "E+11", ".0", "x", "ext 12",
                          "\u00a0", "\u0664", "\uff0b", "+", "tel:", "/", ":", "A"])


@st.composite
def _cells(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["", "+", "00", "0", "8", "1", "+0", "011", " +", "+ "]))
    code = draw(st.sampled_from(["", ""]) | _CODES)
    parts = [head, code]
    for _ in range(draw(st.integers(1, 4))):
        parts += [draw(_DIGITS), draw(_NOISE | st.just(" "))]
    return "".join(parts) + draw(_NOISE)


@settings(max_examples=1000, deadline=None)
@given(_cells(), st.sampled_from(REGIONS + ODD_COUNTRIES) | st.none())
def test_shortcut_agrees_with_the_full_path_on_generated_cells(
    text: str, country: str | None
) -> None:
    _same_as_full_path(text, country)


@settings(max_examples=500, deadline=None)
@given(st.text("0123456789 +-().eE\u00a0\u0664x", max_size=20),
       st.sampled_from(["GB", "US", "RU", "DE", "IT", "JP"]))
def test_shortcut_agrees_with_the_full_path_on_any_text(text: str, country: str) -> None:
    _same_as_full_path(text, country)
