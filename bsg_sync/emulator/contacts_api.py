"""Contact endpoints: list, search, get, create, update, delete, bulk delete."""

from __future__ import annotations

from typing import Any

from bsg_sync.emulator import search
from bsg_sync.emulator.apierror import (
    NOT_ARRAY,
    NOT_INTEGER,
    NOT_STRING,
    business,
    forbidden_mode,
    invalid,
)
from bsg_sync.emulator.call import Call, Reply
from bsg_sync.emulator.store import Store
from bsg_sync.emulator.validate import (
    PAGE_KEYS,
    SEARCH_KEYS,
    check_keys,
    id_list,
    is_int,
    page_params,
    parse_body,
    parse_query,
)

MAX_BODY_GROUPS = 100


def list_contacts(call: Call) -> Reply:
    query = parse_query(call.query, (*PAGE_KEYS, r"groups\[\]"))
    limit, offset = page_params(query, 20)
    group_ids = id_list(query, "groups")
    call.store.check_group_refs(group_ids)
    wanted = set(group_ids)
    contacts = call.store.contacts
    if wanted:
        ids = sorted(c.id for c in contacts.values() if wanted & set(c.groups))
    else:  # the whole book: the ids sorted in C, a page's records looked up (an index's cost)
        ids = sorted(contacts)
    data = [call.store.contact_wire(contacts[i]) for i in ids[offset : offset + limit]]
    return 200, {"data": data, "total": len(ids)}


def search_contacts(call: Call) -> Reply:
    query = parse_query(call.query, (*PAGE_KEYS, *SEARCH_KEYS))
    limit, offset = page_params(query, 50)
    criteria = search.parse_criteria(query, lambda name: _resolve(call.store, name))
    key, descending = search.sort_key(query, {"id": lambda c: c.id, "phone": lambda c: c.phone})
    recs = [c for c in call.store.contacts.values() if all(k.matches(c) for k in criteria)]
    recs.sort(key=key, reverse=descending)
    meta = {"page": {"total": len(recs), "limit": limit, "offset": offset},
            "search": criteria[0].wire() if criteria else {}}
    data = [call.store.contact_wire(c) for c in recs[offset : offset + limit]]
    return 200, {"data": data, "meta": meta}


def _resolve(store: Store, name: str) -> tuple[str, search.Getter] | None:
    fixed: dict[str, tuple[str, search.Getter]] = {
        "id": ("id", lambda c: c.id),
        "phone": ("phone", lambda c: c.phone),
        "group_id": ("member", lambda c: c.groups),
        "created_at": ("date", lambda c: c.created_at),
    }
    if name in fixed:
        return fixed[name]
    if not name.isdigit() or len(name) > 18:
        return None
    rec = store.field_rec(int(name))
    kind = {"number": "number", "date": "date"}.get(rec.type, "text")
    return kind, lambda c: c.fields.get(str(rec.id))


def get_contact(call: Call) -> Reply:
    parse_query(call.query, ())
    return 200, {"data": call.store.contact_wire(call.store.contact(call.ids[0]))}


def create_contact(call: Call) -> Reply:
    parse_query(call.query, ())
    phone, values, groups = contact_body(parse_body(call.body, required=True))
    if call.test_mode and phone not in call.config.verified_phones:
        raise forbidden_mode()
    rec = call.store.create_contact(phone, values or {}, groups or [])
    return 201, {"data": call.store.contact_wire(rec)}


def update_contact(call: Call) -> Reply:
    parse_query(call.query, ())
    phone, values, groups = contact_body(parse_body(call.body, required=True))
    rec = call.store.contact(call.ids[0])
    changes_phone = phone != rec.phone
    if call.test_mode and changes_phone and phone not in call.config.verified_phones:
        raise forbidden_mode()
    replace = call.config.put_semantics == "replace"
    call.store.update_contact(rec, phone, values, groups, replace)
    return 200, {"data": call.store.contact_wire(rec)}


def delete_contact(call: Call) -> Reply:
    parse_query(call.query, ())
    check_keys(parse_body(call.body, required=False), ())
    call.store.delete_contact(call.store.contact(call.ids[0]))
    return 204, None


def bulk_delete(call: Call) -> Reply:
    query = parse_query(call.query, (r"contact_ids\[\]", r"group_ids\[\]"))
    check_keys(parse_body(call.body, required=False), ())
    contact_ids = id_list(query, "contact_ids", required="group_ids[]" not in query)
    group_ids = id_list(query, "group_ids")
    call.store.delete_contacts(contact_ids, group_ids)
    return 204, None


# ---------------------------------------------------------------- request body
def contact_body(body: dict[str, Any]) -> tuple[int, dict[str, str] | None, list[int] | None]:
    """(phone, field values or None, group ids or None) from a create/update body."""
    check_keys(body, ("phone", "groups", "fields"), ("phone",))
    phone = check_phone(body["phone"])
    groups = group_refs(body["groups"]) if "groups" in body else None
    values = field_values(body["fields"]) if "fields" in body else None
    return phone, values, groups


def check_phone(value: object) -> int:
    """A JSON integer of 9-15 digits, with BSG's two different complaints."""
    if is_int(value) and isinstance(value, int):
        if value > 999_999_999_999_999:
            raise invalid("phone", "This value is too long. It should have 15 characters or less.")
        if value >= 100_000_000:
            return value
    elif isinstance(value, str) and len(value) > 15:
        raise invalid("phone", "This value is too long. It should have 15 characters or less.")
    raise business("Invalid phone number format")


def group_refs(value: object) -> list[int]:
    """List ids sent as plain ids (the docs) or objects with an `id` (BSG's own SDK)."""
    if not isinstance(value, list):
        raise invalid("groups", NOT_ARRAY)
    if len(value) > MAX_BODY_GROUPS:
        most = MAX_BODY_GROUPS
        raise invalid("groups", f"This collection should contain {most} elements or less.")
    ids: list[int] = []
    for i, item in enumerate(value):
        ref = item.get("id") if isinstance(item, dict) else item
        if not is_int(ref) or not isinstance(ref, int):
            raise invalid(f"groups{i}", NOT_INTEGER)
        if ref <= 0:
            raise invalid(f"groups{i}", "This value should be greater than 0.")
        ids.append(ref)
    return ids


def field_values(value: object) -> dict[str, str]:
    """`[{"id": int, "value": str}, ...]` -> {"<id>": value}."""
    if not isinstance(value, list):
        raise invalid("fields", NOT_ARRAY)
    values: dict[str, str] = {}
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid(f"fields{i}", NOT_ARRAY)
        check_keys(item, ("id", "value"), ("id", "value"))
        values[str(_field_id(item["id"], i))] = _field_text(item["value"], i)
    return values


def _field_id(value: object, index: int) -> int:
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        value = int(value)
    if not is_int(value) or not isinstance(value, int):
        raise invalid(f"fields{index}id", NOT_INTEGER)
    if value <= 0:
        raise business("Contact field input is invalid")
    return value


def _field_text(value: object, index: int) -> str:
    if not isinstance(value, str):
        raise invalid(f"fields{index}value", NOT_STRING)
    return value

