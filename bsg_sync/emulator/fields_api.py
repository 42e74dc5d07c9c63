"""Custom contact-field endpoints: list, create, update (PATCH), bulk delete."""

from __future__ import annotations

from typing import Any

from bsg_sync.emulator.apierror import BAD_CHOICE, INVALID, MISSING, ApiError, invalid
from bsg_sync.emulator.call import Call, Reply
from bsg_sync.emulator.store import FieldRec
from bsg_sync.emulator.validate import (
    ANY_FIELD,
    check_bool,
    check_keys,
    check_text,
    int_array,
    parse_body,
    parse_query,
)

FIELD_TYPES = ("text", "number", "date")


def list_fields(call: Call) -> Reply:
    parse_query(call.query, ())
    recs = sorted(call.store.fields.values(), key=lambda f: f.id)
    return 200, {"data": [call.store.field_wire(f) for f in recs]}


def create_field(call: Call) -> Reply:
    parse_query(call.query, ())
    body = parse_body(call.body, required=True)
    check_keys(body, ("name", "type", "description", "is_visible"), ("name", "type"))
    _check_field_props(body)
    if body["type"] not in FIELD_TYPES:
        # BSG puts this one complaint at the top level, not under `errors` (reference §8.1)
        raise ApiError(422, {"message": INVALID, "any_field": [BAD_CHOICE]})
    rec = call.store.create_field(body["name"], body["type"], body.get("description"),
                                  body.get("is_visible", True))
    return 201, {"data": call.store.field_wire(rec)}


def update_field(call: Call) -> Reply:
    parse_query(call.query, ())
    body = parse_body(call.body, required=True)
    check_keys(body, ("name", "description", "is_visible"))
    if not body:  # at least one of the three (reference §5.3)
        raise invalid(ANY_FIELD, MISSING)
    _check_field_props(body)
    rec = call.store.field_rec(call.ids[0])
    updated = FieldRec(rec.id, body.get("name", rec.name), rec.type,
                       body.get("description", rec.description),
                       body.get("is_visible", rec.is_visible))
    call.store.add_field(updated)
    return 200, {"data": call.store.field_wire(updated)}


def _check_field_props(body: dict[str, Any]) -> None:
    check_text(body, "name", 1, 20, nullable=False)
    if "type" in body and not isinstance(body["type"], str):
        raise invalid("type", "This value should be of type string.")
    check_text(body, "description", 1, 255, nullable=True)
    check_bool(body, "is_visible")


def delete_fields(call: Call) -> Reply:
    parse_query(call.query, ())
    body = parse_body(call.body, required=True)
    check_keys(body, ("ids",), ("ids",))
    call.store.delete_fields(int_array(body, "ids", 30))
    return 204, None
