"""Table tests for phone normalisation and validation."""

from __future__ import annotations

import pytest

from bsg_sync.phones import PhoneNormaliser, normalise_phone

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
    first = normalise("07700 900123")
    assert normalise("07700 900123") is first
    assert first == normalise_phone("07700 900123", "GB")
    assert normalise("4.47712E+11").error_code == "phone-precision-lost"
