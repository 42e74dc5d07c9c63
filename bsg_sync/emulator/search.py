"""`search[...]` / `search_fields[N][...]` criteria: parsing, BSG's validation and matching."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bsg_sync.emulator.apierror import BAD_CHOICE, ApiError, invalid, unknown_error
from bsg_sync.emulator.validate import Query, first

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
ORDERED = ("=", ">", ">=", "<", "<=")
KIND_OPERATORS = {
    "id": ORDERED, "int": ORDERED, "number": ORDERED, "date": ORDERED,
    "text": ("like", "="), "phone": ("like", "="), "member": ("=",), "phones": ("like", "="),
}
Getter = Callable[[Any], Any]
Resolver = Callable[[str], "tuple[str, Getter] | None"]


@dataclass(frozen=True)
class Criterion:
    field: str
    operator: str
    value: str
    kind: str
    getter: Getter

    def wire(self) -> dict[str, str]:
        return {"field": self.field, "operator": self.operator, "value": self.value}

    def matches(self, rec: Any) -> bool:
        return match_value(self.kind, self.operator, self.getter(rec), self.value)


def bad_choice() -> ApiError:
    return ApiError(422, {"message": "The given data was invalid.",
                          "errors": {"any_field": [BAD_CHOICE]}})


def parse_criteria(query: Query, resolve: Resolver) -> list[Criterion]:
    """Every criterion in the query (`search[...]` first, then `search_fields` by index)."""
    indexed = {m.group(1) for k in query if (m := re.match(r"(search_fields\[\d+\])", k))}
    prefixes = ["search", *sorted(indexed, key=lambda p: int(p[len("search_fields[") : -1]))]
    criteria = []
    for prefix in prefixes:
        parts = {name: first(query, f"{prefix}[{name}]") for name in ("field", "operator", "value")}
        if all(v is None for v in parts.values()):
            continue
        criteria.append(_criterion(parts, resolve))
    return criteria


def _criterion(parts: dict[str, str | None], resolve: Resolver) -> Criterion:
    field_name, op = parts["field"], parts["operator"] or "="
    if field_name is None:
        raise invalid("searchfield", "This field is missing.")
    resolved = resolve(field_name)
    if resolved is None or op not in KIND_OPERATORS[resolved[0]]:
        raise bad_choice()
    kind, getter = resolved
    value = parts["value"] or ""
    check_value(kind, op, value)
    return Criterion(field_name, op, value, kind, getter)


def check_value(kind: str, op: str, value: str) -> None:
    """BSG's per-kind value rules (messages from its merged spec)."""
    if kind in ("id", "int", "member") and not re.fullmatch(r"-?\d{1,18}", value):
        raise unknown_error("search.value", "The search.value must be an integer")
    if kind in ("id", "member") and int(value) <= 0:
        raise unknown_error("search.value", "The search.value must be greater than 0")
    if kind in ("phone", "phones") and not re.fullmatch(r"\d{9,15}", value):
        raise unknown_error("search.value", "The search.value must be between 9 and 15 digits")
    if kind == "number" and _number(value) is None:
        raise unknown_error("search.value", "The search.value must be a number")
    if kind == "date" and not _is_date(value):
        raise invalid("searchvalue", "This value is not a valid date.")


def _is_date(value: str) -> bool:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            datetime.strptime(value, fmt)
            return True
        except ValueError:
            continue
    return False


def _number(text: object) -> float | None:
    try:
        number = float(str(text))
    except ValueError:
        return None
    return number if number == number else None


def match_value(kind: str, op: str, actual: Any, value: str) -> bool:
    """Does a record's value satisfy `actual <op> value` for this kind of field?"""
    if actual is None:
        return False
    if kind in ("member", "phones"):
        return any(match_value("phone", op, a, value) for a in actual)
    if op == "like":
        return value.strip("%").lower() in str(actual).lower()
    if kind in ("id", "int", "phone", "member"):
        return OPERATORS[op](int(actual), int(value))
    if kind == "number":
        number = _number(actual)
        return number is not None and OPERATORS[op](number, float(value))
    if kind == "date" and op == "=" and len(value) == 10:
        return str(actual)[:10] == value
    return OPERATORS[op](str(actual), value)


def sort_key(query: Query, allowed: dict[str, Getter]) -> tuple[Getter, bool]:
    """(key function, descending) from `sort` and `way`."""
    sort, way = first(query, "sort"), first(query, "way")  # `sort=` is a bad choice, not the default
    sort, way = "id" if sort is None else sort, "asc" if way is None else way
    if sort not in allowed or way not in ("asc", "desc"):
        raise bad_choice()
    return allowed[sort], way == "desc"
