"""The country of national-format numbers: the dropdown's choices, and what people type for it."""

from __future__ import annotations

import functools
import importlib
import re
import unicodedata
from typing import Any

import phonenumbers


def _locale_data() -> dict[str, Any]:
    """The country names phonenumbers ships (its geocoder's own table; {} if it moves)."""
    try:
        data = importlib.import_module("phonenumbers.geodata.locale").LOCALE_DATA
    except (ImportError, AttributeError):  # pragma: no cover - another phonenumbers layout
        return {}
    return data if isinstance(data, dict) else {}


_NAMES = _locale_data()

# what people write for a country that is not its ISO code
_ALIASES = {
    "UK": "GB",
    "ENGLAND": "GB",
    "SCOTLAND": "GB",
    "WALES": "GB",
    "NORTHERN IRELAND": "GB",
    "GREAT BRITAIN": "GB",
    "BRITAIN": "GB",
    "USA": "US",
    "AMERICA": "US",
    "UNITED STATES OF AMERICA": "US",
    "HOLLAND": "NL",
    "DEUTSCHLAND": "DE",
    "EL": "GR",
}
_MISSING_NAMES = {"AC": "Ascension Island", "TA": "Tristan da Cunha", "XK": "Kosovo"}
# the calling codes several countries share go to the one most people mean
_MAIN_REGION = {1: "US", 7: "RU", 44: "GB", 47: "NO", 61: "AU", 212: "MA", 262: "RE", 590: "GP"}


def country_name(region: str) -> str:
    """"United Kingdom" for "GB" (the code itself when no name is known)."""
    names = _NAMES.get(region, {})
    name = str(names.get("en", "")) if isinstance(names, dict) else ""
    if name.startswith("*"):
        name = str(names.get(name[1:], ""))
    return name or _MISSING_NAMES.get(region, region)


@functools.lru_cache(maxsize=1)
def country_choices() -> tuple[tuple[str, str], ...]:
    """(region code, "United Kingdom (+44)") for every region phonenumbers knows, by name."""
    choices = [
        (r, f"{country_name(r)} (+{phonenumbers.country_code_for_region(r)})")
        for r in phonenumbers.SUPPORTED_REGIONS
    ]
    return tuple(sorted(choices, key=lambda c: _plain(c[1])))


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("\u2019", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.lru_cache(maxsize=1)
def _by_name() -> dict[str, str]:
    return {_plain(country_name(r)): r for r in phonenumbers.SUPPORTED_REGIONS}


def read_country(text: str) -> str | None:
    """The region code for what was chosen or typed: "GB", "gb", "UK", "44", "+44", "0044",
    "United Kingdom"; "" for nothing; None when it names no country."""
    word = " ".join(text.split())
    if not word:
        return ""
    upper = word.upper()
    if upper in phonenumbers.SUPPORTED_REGIONS:
        return upper
    if upper in _ALIASES:
        return _ALIASES[upper]
    digits = re.fullmatch(r"(?:\+|00)?\s*(\d{1,3})", word)
    if digits:
        return _region_of_code(int(digits.group(1)))
    return _by_name().get(_plain(re.sub(r"\s*\(\+?\d+\)$", "", word)))


def _region_of_code(code: int) -> str | None:
    if code in _MAIN_REGION:
        return _MAIN_REGION[code]
    region = phonenumbers.region_code_for_country_code(code)
    return None if region == phonenumbers.UNKNOWN_REGION else region
