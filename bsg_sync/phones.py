"""Phone normalisation and validation: cell text -> international digits or a typed error (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneMetadata

from bsg_sync.errors import ErrorCode

MIN_DIGITS = 9
MAX_DIGITS = 15

MISSING = ErrorCode.MISSING_PHONE
INVALID = ErrorCode.INVALID_PHONE
PRECISION_LOST = ErrorCode.PHONE_PRECISION_LOST

_SCIENTIFIC = re.compile(r"^\+?\d+(?:[.,]\d*)?[eE][+-]?\d+$")
_INTEGRAL_FLOAT = re.compile(r"^(\+?\d{6,})\.0+$")  # "447700900123.0" from a float export
_TRUNK_IN_BRACKETS = re.compile(r"^(\+|00)\s*(\d{1,3})[\s.\-]*\(0\)")  # "+44 (0)7700 …"
_SEPARATORS = str.maketrans("", "", " \t\u00a0\u202f.-–()[]/\\")
_TEL_PREFIX = re.compile(r"^tel:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class PhoneResult:
    """A normalised phone (digits, international, no `+`) or why there is none."""

    digits: str | None
    error_code: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.digits is not None


def _bad_phone(text: str, why: str, code: str = INVALID) -> PhoneResult:
    return PhoneResult(None, code, f"Phone {text!r} {why}.")


@lru_cache(maxsize=512)
def _possible_lengths(country_code: int) -> tuple[int, ...] | None:
    """National significant number lengths allowed for a calling code (None: unknown code)."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None
    meta = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
    if meta is None or meta.general_desc is None:
        return None
    return tuple(meta.general_desc.possible_length or ())


def _split_country_code(digits: str) -> tuple[int, str] | None:
    """The calling code at the start of international digits, and the rest."""
    for size in range(1, min(len(digits), 3) + 1):  # none in "" (a cell of just "00")
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[size:]
    return None


def _international_problem(digits: str) -> str | None:
    """Why international digits are not a possible number (None: they are)."""
    split = _split_country_code(digits)
    if split is None:
        return "does not start with a known country calling code"
    code, national = split
    lengths = _possible_lengths(code)
    if lengths is not None and len(national) not in lengths:
        allowed = "/".join(str(n) for n in lengths)
        return f"has {len(national)} digits after country code +{code}, which expects {allowed}"
    return _length_problem(digits)


def _length_problem(digits: str) -> str | None:
    if len(digits) < MIN_DIGITS:
        return f"has {len(digits)} digits; a phone needs at least {MIN_DIGITS}"
    if len(digits) > MAX_DIGITS:
        return f"has {len(digits)} digits; a phone has at most {MAX_DIGITS}"
    return None


def _checked(text: str, digits: str, problem: str | None) -> PhoneResult:
    return PhoneResult(digits) if problem is None else _bad_phone(text, problem)


def _parse_national(digits: str, region: str) -> str | None:
    """International digits of a national number for `region`, or None when not possible."""
    try:
        number = phonenumbers.parse(digits, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    national = phonenumbers.national_significant_number(number)
    meta = PhoneMetadata.metadata_for_region(region)
    trunk = meta.national_prefix if meta is not None else None
    if trunk and national.startswith(trunk):
        return None  # the trunk prefix was not a trunk prefix: "0123456" in GB
    return f"{number.country_code}{national}"


def _resolve_unprefixed(text: str, digits: str, region: str | None) -> PhoneResult:
    """Digits with no `+`/`00`: national (leading 0, or short) or international without `+`."""
    if region is None:
        if digits.startswith("0"):
            return _bad_phone(
                text,
                "is a national number (leading 0) with no country; "
                "add default_country to the mapping",
            )
        problem = _international_problem(digits)
        if problem is not None:
            problem = (
                f"is not a possible international number ({problem}); "
                "if it is a national number, add default_country to the mapping"
            )
        return _checked(text, digits, problem)
    if _plainly_international(digits, region):
        return PhoneResult(digits)
    national = _plainly_national(digits, region) or _parse_national(digits, region)
    if national is not None:
        return _checked(text, national, _length_problem(national))
    if digits.startswith("0"):
        return _bad_phone(text, f"is not a possible national number in {region}")
    if _international_problem(digits) is None:
        return PhoneResult(digits)
    return _bad_phone(text, f"is neither a possible number in {region} nor an international one")


@lru_cache(maxsize=64)
def _region_info(region: str) -> tuple[str, str | None]:
    """(calling code, trunk prefix when plain stripping is all phonenumbers would do)."""
    meta = PhoneMetadata.metadata_for_region(region)
    code = str(phonenumbers.country_code_for_region(region))
    if meta is None or not meta.national_prefix or meta.national_prefix_transform_rule:
        return code, None
    trunk: str = meta.national_prefix
    rule = meta.national_prefix_for_parsing
    simple = rule is None or rule == trunk or rule.startswith(trunk + "|")
    return code, trunk if simple else None


def _plainly_international(digits: str, region: str) -> bool:
    """Cheap path: starts with the region's own calling code and is too long to be national."""
    code, _ = _region_info(region)
    lengths = _possible_lengths(int(code)) or ()
    return (
        digits.startswith(code)
        and len(digits) not in lengths
        and _international_problem(digits) is None
    )


def _plainly_national(digits: str, region: str) -> str | None:
    """Cheap path: trunk prefix + a national number of a possible length (e.g. GB 07700…)."""
    code, trunk = _region_info(region)
    if trunk is None or not digits.startswith(trunk):
        return None
    national = digits[len(trunk) :]
    if national.startswith(trunk) or len(national) not in (_possible_lengths(int(code)) or ()):
        return None
    return code + national


def _strip(text: str) -> tuple[str, bool]:
    """(digits and any leftover letters, whether an international prefix was given)."""
    raw = _TEL_PREFIX.sub("", text) if ":" in text else text
    raw = _TRUNK_IN_BRACKETS.sub(r"\1\2", raw) if "(0)" in raw else raw
    compact = raw.translate(_SEPARATORS)
    if compact.startswith("+"):
        return compact[1:], True
    if compact.startswith("00"):
        return compact[2:], True
    return compact, False


@dataclass(frozen=True)
class _Shortcut:
    """What the common cells of one default country need, found once: its calling code (which
    no shorter known code prefixes), the national lengths that code allows, and its trunk
    prefix when plain stripping is all phonenumbers would do with it."""

    code: str
    lengths: frozenset[int]
    trunk: str | None

    def __call__(self, text: str) -> PhoneResult | None:
        """The result `normalise_phone` gives for "+44 7700 900123", "07700 900123" or
        "447700900123" in GB, without phonenumbers; None for anything else (the full path
        decides). Each return mirrors a branch of the full path: tests/test_phones.py checks
        the two agree on generated cells of many countries."""
        value = text.strip()
        compact = value.replace(" ", "") if " " in value else value
        international = compact[:1] == "+"
        digits = compact[1:] if international else compact
        size = len(digits)
        if not (MIN_DIGITS <= size <= MAX_DIGITS and digits.isdigit() and digits.isascii()):
            return None
        code, lengths = self.code, self.lengths
        if digits.startswith(code):  # international, with or without the `+`
            if size - len(code) in lengths and (international or size not in lengths):
                return PhoneResult(digits)
            return None
        trunk = self.trunk
        if international or trunk is None or not digits.startswith(trunk):
            return None  # an international "00…" stops here (trunk 1, 8) or below (trunk 0)
        national = digits[len(trunk) :]
        if national.startswith(trunk) or len(national) not in lengths:
            return None
        full = code + national
        return PhoneResult(full) if MIN_DIGITS <= len(full) <= MAX_DIGITS else None


@lru_cache(maxsize=64)
def _shortcut(default_country: str) -> _Shortcut | None:
    """The shortcut for a default country (None when its metadata leaves any doubt)."""
    region = default_country.upper()
    code, trunk = _region_info(region)
    lengths = _possible_lengths(int(code))
    if not lengths or _split_country_code(code) != (int(code), ""):
        return None
    return _Shortcut(code, frozenset(lengths), trunk)


def normalise_phone(text: str, default_country: str | None = None) -> PhoneResult:
    """Normalise one cell's text to international digits, or say why it is not a phone."""
    shortcut = _shortcut(default_country) if default_country else None
    found = shortcut(text) if shortcut is not None else None
    return found if found is not None else _normalise(text, default_country)


def _normalise(text: str, default_country: str | None) -> PhoneResult:
    """`normalise_phone` through phonenumbers' metadata, for every cell."""
    value = text.strip()
    if not value:
        return PhoneResult(None, MISSING, "The row has no phone number.")
    if value.isdigit() and value.isascii() and len(value) <= MAX_DIGITS:
        digits, international = value, False  # the common case skips the text clean-up
        if value.startswith("00"):
            digits, international = value[2:], True
    else:
        cleaned = _clean(value)
        if isinstance(cleaned, PhoneResult):
            return cleaned
        digits, international = cleaned
    if international:
        return _checked(value, digits, _international_problem(digits))
    region = default_country.upper() if default_country else None
    return _resolve_unprefixed(value, digits, region)


def _clean(value: str) -> tuple[str, bool] | PhoneResult:
    """(digits, international?) of a cell with separators or prefixes, or why it has none."""
    if ("e" in value or "E" in value) and _SCIENTIFIC.match(value):
        return _bad_phone(
            value,
            "is in scientific notation, so Excel has lost digits; "
            "format the column as text and re-enter the numbers",
            PRECISION_LOST,
        )
    integral = _INTEGRAL_FLOAT.match(value) if "." in value else None
    digits, international = _strip(integral.group(1) if integral else value)
    if not digits.isdigit() or not digits.isascii():
        return _bad_phone(value, "contains characters other than digits and separators")
    if len(digits) > MAX_DIGITS and value.lstrip("+").isdigit():
        return _bad_phone(
            value,
            f"has {len(digits)} digits; Excel keeps only 15, so digits were lost "
            "(format the column as text)",
            PRECISION_LOST,
        )
    if len(digits) > MAX_DIGITS:
        return _bad_phone(value, f"has {len(digits)} digits; a phone has at most {MAX_DIGITS}")
    return digits, international


class PhoneNormaliser:
    """`normalise_phone` for one default country. A cell the shortcut does not decide parses
    once (its result is kept by cell text); the shortcut's are not kept: 100k kept results
    cost more, in allocation and garbage collection, than deciding them again."""

    def __init__(self, default_country: str | None = None) -> None:
        self.default_country = default_country
        self._shortcut = _shortcut(default_country) if default_country else None
        self._cache: dict[str, PhoneResult] = {}

    def __call__(self, text: str) -> PhoneResult:
        if self._shortcut is not None:  # the common cells: cheaper to redo than to keep
            found = self._shortcut(text)
            if found is not None:
                return found
        cached = self._cache.get(text)
        if cached is None:
            cached = _normalise(text, self.default_country)
            self._cache[text] = cached
        return cached
