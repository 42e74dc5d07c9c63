"""Contact-list ("group") endpoints: list, search, get, create, update, delete, attach, detach."""

from __future__ import annotations

from typing import Any

from bsg_sync.emulator import search
from bsg_sync.emulator.call import Call, Reply
from bsg_sync.emulator.store import GroupRec, Store
from bsg_sync.emulator.validate import (
    PAGE_KEYS,
    SEARCH_KEYS,
    check_bool,
    check_keys,
    check_text,
    int_array,
    page_params,
    parse_body,
    parse_query,
)

GROUP_KEYS = ("name", "description", "default")
ATTACH_MAX_CONTACTS = 200  # reference §4.7


def list_groups(call: Call) -> Reply:
    query = parse_query(call.query, PAGE_KEYS)
    limit, offset = page_params(query, 50)
    recs = sorted(call.store.groups.values(), key=lambda g: g.id)
    data = [call.store.group_wire(g) for g in recs[offset : offset + limit]]
    return 200, {"data": data, "total": len(recs)}


def search_groups(call: Call) -> Reply:
    query = parse_query(call.query, (*PAGE_KEYS, *SEARCH_KEYS))
    limit, offset = page_params(query, 50)
    store = call.store
    fields = _search_fields(store)
    criteria = search.parse_criteria(query, fields.get)
    sortable = {k: fields[k][1] for k in ("id", "items", "name", "description", "created_at")}
    key, descending = search.sort_key(query, sortable)
    recs = [g for g in store.groups.values() if all(k.matches(g) for k in criteria)]
    recs.sort(key=lambda g: _none_last(key(g)), reverse=descending)
    meta = {"page": {"total": len(recs), "limit": limit, "offset": offset},
            "search": criteria[0].wire() if criteria else {}}
    return 200, {"data": [_search_wire(store, g) for g in recs[offset : offset + limit]],
                 "meta": meta}


def _none_last(value: Any) -> tuple[bool, Any]:
    return value is None, value if value is not None else 0


def _search_fields(store: Store) -> dict[str, tuple[str, search.Getter]]:
    return {
        "id": ("id", lambda g: g.id),
        "name": ("text", lambda g: g.name),
        "description": ("text", lambda g: g.description),
        "items": ("int", lambda g: len(store.members.get(g.id, ()))),
        "created_at": ("date", lambda g: g.created_at),
        "phone": ("phones", lambda g: {store.contacts[c].phone for c in store.members[g.id]}),
    }


def _search_wire(store: Store, rec: GroupRec) -> dict[str, Any]:
    """Search answers say `is_default` and omit `stop_list_count` (BSG's own inconsistency)."""
    wire = store.group_wire(rec)
    wire["is_default"] = wire.pop("default")
    wire.pop("stop_list_count")
    return wire


def get_group(call: Call) -> Reply:
    parse_query(call.query, ())
    return 200, {"data": call.store.group_wire(call.store.group(call.ids[0]))}


def create_group(call: Call) -> Reply:
    parse_query(call.query, ())
    body = _group_body(parse_body(call.body, required=True))
    rec = call.store.create_group(body["name"], body.get("description"), body.get("default", False))
    return 201, {"data": call.store.group_wire(rec)}


def update_group(call: Call) -> Reply:
    parse_query(call.query, ())
    body = _group_body(parse_body(call.body, required=True))
    rec = call.store.group(call.ids[0])
    updated = GroupRec(rec.id, body["name"], body.get("description", rec.description),
                       body.get("default", rec.default), rec.created_at)
    call.store.add_group(updated)
    return 200, {"data": call.store.group_wire(updated)}


def _group_body(body: dict[str, Any]) -> dict[str, Any]:
    check_keys(body, GROUP_KEYS, ("name",))
    check_text(body, "name", 3, 50, nullable=False)
    check_text(body, "description", 1, 255, nullable=True)
    check_bool(body, "default")
    return body


def delete_group(call: Call) -> Reply:
    parse_query(call.query, ())
    check_keys(parse_body(call.body, required=False), ())
    call.store.delete_group(call.store.group(call.ids[0]))
    return 204, None


def attach(call: Call) -> Reply:
    return _membership(call, attach=True)


def detach(call: Call) -> Reply:
    return _membership(call, attach=False)


def _membership(call: Call, *, attach: bool) -> Reply:
    parse_query(call.query, ())
    body = parse_body(call.body, required=True)
    check_keys(body, ("contacts", "groups"), ("contacts", "groups"))
    contacts = int_array(body, "contacts", ATTACH_MAX_CONTACTS)
    groups = int_array(body, "groups", call.config.attach_max_groups)
    call.store.attach(list(dict.fromkeys(contacts)), list(dict.fromkeys(groups)), attach)
    return 200, {"message": "Successful attached" if attach else "Successful detached"}
