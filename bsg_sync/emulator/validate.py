"""Request parsing and Symfony-style validation shared by every endpoint."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from bsg_sync.emulator.apierror import (
    MISSING,
    NOT_ARRAY,
    NOT_EXPECTED,
    NOT_INTEGER,
    ApiError,
    bad_request,
    invalid,
)

Query = dict[str, list[str]]
ANY_FIELD = "any_field"
PAGE_KEYS = (r"page\[limit\]", r"page\[offset\]")
SEARCH_KEYS = (
    r"sort",
    r"way",
    r"search\[(field|operator|value)\]",
    r"search_fields\[\d{1,3}\]\[(field|operator|value)\]",
)


def parse_query(raw: str, allowed: Iterable[str]) -> Query:
    """Parse a query string; any key not matching an `allowed` regex is a 422 like BSG's."""
    patterns = [re.compile(p) for p in allowed]
    query: Query = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if not any(p.fullmatch(key) for p in patterns):
            raise invalid(_flat_unknown(key, patterns), NOT_EXPECTED)
        query.setdefault(key, []).append(value)
    return query


def _flat_unknown(key: str, patterns: list[re.Pattern[str]]) -> str:
    top = key.split("[", 1)[0]
    known_tops = {p.pattern.split("\\[", 1)[0] for p in patterns}
    return flatten(key) if top in known_tops else top


def flatten(key: str) -> str:
    """BSG's flattened property path: `page[limit]` -> `pagelimit`."""
    return key.replace("[", "").replace("]", "")


def first(query: Query, key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def page_params(query: Query, default_limit: int) -> tuple[int, int]:
    """(limit, offset) from `page[limit]` (15-500) and `page[offset]` (>= 0)."""
    limit = _page_int(query, "page[limit]", default_limit)
    if not 15 <= limit <= 500:
        raise invalid("pagelimit", "This value should be between 15 and 500.")
    offset = _page_int(query, "page[offset]", 0)
    if offset < 0:
        raise invalid("pageoffset", "This value should be greater than or equal to 0.")
    return limit, offset


def _page_int(query: Query, key: str, default: int) -> int:
    raw = first(query, key)
    if raw is None:
        return default
    if not re.fullmatch(r"-?\d+", raw.strip()):
        raise invalid(flatten(key), "This value should be a valid number.")
    return int(raw)  # any length: offsets past the end are an empty page, not an error


def id_list(query: Query, key: str, *, required: bool = False, most: int = 5000) -> list[int]:
    """A PHP-style `key[]` id array: positive, unique integers."""
    raw = query.get(f"{key}[]")
    if raw is None and not required:
        return []
    values = [v for v in (raw or []) if v != ""]
    if not values:
        raise invalid(key, "This collection should contain 1 element or more.")
    if len(values) > most:
        raise invalid(key, f"This collection should contain {most} elements or less.")
    ids: list[int] = []
    for i, value in enumerate(values):
        if not re.fullmatch(r"\d{1,18}", value):
            raise invalid(f"{key}{i}", "This value should be a valid number.")
        if int(value) <= 0:
            raise invalid(f"{key}{i}", "This value should be greater than 0.")
        ids.append(int(value))
    if len(set(ids)) != len(ids):
        raise invalid(key, "This collection should contain only unique elements.")
    return ids


def parse_body(raw: bytes, *, required: bool) -> dict[str, Any]:
    """The JSON object of a request body; 400 for empty or undecodable bodies like BSG."""
    if not raw.strip():
        if required:
            raise bad_request("Request body is empty.")
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad_request("Could not decode request body.") from exc
    if not isinstance(body, dict):
        raise invalid(ANY_FIELD, NOT_ARRAY)
    return body


def check_keys(body: dict[str, Any], allowed: Iterable[str], required: Iterable[str] = ()) -> None:
    """Reject an unexpected key, then a missing required one.

    BSG names neither key: both answer under `any_field` (reference §1.2, §3.4), unlike query
    keys, which keep their flattened name (`per`, §3.1).
    """
    allowed_set = set(allowed)
    if any(key not in allowed_set for key in body):
        raise invalid(ANY_FIELD, NOT_EXPECTED)
    if any(key not in body for key in required):
        raise invalid(ANY_FIELD, MISSING)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_array(body: dict[str, Any], key: str, most: int) -> list[int]:
    """A body array of positive integer ids with BSG's collection messages."""
    values = body.get(key)
    if not isinstance(values, list):
        raise invalid(key, NOT_ARRAY)
    if not values:
        raise invalid(key, "This collection should contain 1 element or more.")
    if len(values) > most:
        raise invalid(key, f"This collection should contain {most} elements or less.")
    for i, value in enumerate(values):
        if not is_int(value):
            raise invalid(f"{key}{i}", NOT_INTEGER)
        if value <= 0:
            raise invalid(f"{key}{i}", "This value should be greater than 0.")
    return list(values)


def check_text(body: dict[str, Any], key: str, low: int, high: int, *, nullable: bool) -> None:
    """Validate an optional string property's type and length."""
    if key not in body or (nullable and body[key] is None):
        return
    value = body[key]
    if not isinstance(value, str):
        raise invalid(key, "This value should be of type string.")
    if len(value) < low:
        unit = "character" if low == 1 else "characters"
        raise invalid(key, f"This value is too short. It should have {low} {unit} or more.")
    if len(value) > high:
        raise invalid(key, f"This value is too long. It should have {high} characters or less.")


def check_bool(body: dict[str, Any], key: str) -> None:
    if key in body and not isinstance(body[key], bool):
        raise invalid(key, "This value should be of type boolean.")


__all__ = ["ApiError"]
