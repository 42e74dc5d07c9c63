"""Loading an emulator seed (JSON in the API's own shapes, or CSV) into a Store."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bsg_sync.emulator.store import (
    FIRST_CONTACT_ID,
    FIRST_FIELD_ID,
    FIRST_GROUP_ID,
    ContactRec,
    FieldRec,
    GroupRec,
    Store,
)

Seed = Mapping[str, Any] | str | Path | None
CSV_RESERVED = ("id", "phone", "groups", "hlr_status", "hlr_last_check", "created_at")


class SeedError(ValueError):
    """The seed file or dict is not a valid emulator seed."""


def load_seed(store: Store, seed: Seed) -> None:
    """Fill an empty store from a seed: a dict, a .json file or a .csv file."""
    if seed is None:
        return
    if isinstance(seed, Mapping):
        load_dict(store, seed)
        return
    path = Path(seed)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        load_dict(store, csv_to_dict(text))
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SeedError(f"{path}: not valid JSON ({exc})") from exc
        load_dict(store, data)


def load_dict(store: Store, seed: Mapping[str, Any]) -> None:
    """Add the seed's fields, groups and contacts, in that order."""
    try:
        for item in seed.get("fields", []):
            store.add_field(_field(store, item))
        for item in seed.get("groups", []):
            store.add_group(_group(store, item))
        for item in seed.get("contacts", []):
            store.add_contact(_contact(store, item))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SeedError(f"invalid seed: {exc!r}") from exc
    except Exception as exc:  # an ApiError from the store's rules (duplicate phone, …)
        raise SeedError(f"invalid seed: {exc}") from exc


def _field(store: Store, item: Mapping[str, Any]) -> FieldRec:
    fid = int(item.get("id") or store.next_id(store.fields, FIRST_FIELD_ID))
    return FieldRec(fid, str(item["name"]), str(item.get("type", "text")),
                    item.get("description"), bool(item.get("is_visible", True)))


def _group(store: Store, item: Mapping[str, Any]) -> GroupRec:
    gid = int(item.get("id") or store.next_id(store.groups, FIRST_GROUP_ID))
    rec = GroupRec(gid, str(item["name"]), item.get("description"), bool(item.get("default")))
    if item.get("created_at"):
        rec.created_at = str(item["created_at"])
    return rec


def _contact(store: Store, item: Mapping[str, Any]) -> ContactRec:
    cid = int(item.get("id") or store.next_id(store.contacts, FIRST_CONTACT_ID))
    groups = [int(g["id"] if isinstance(g, Mapping) else g) for g in item.get("groups") or []]
    store.check_group_refs(groups)
    values = _field_values(item.get("fields") or {})
    store.check_field_refs(values)
    rec = ContactRec(cid, int(item["phone"]), values, list(dict.fromkeys(groups)))
    rec.hlr_status = str(item.get("hlr_status") or "unknown")
    rec.hlr_last_check = item.get("hlr_last_check")
    if item.get("created_at"):
        rec.created_at = str(item["created_at"])
    return rec


def _field_values(raw: Any) -> dict[str, str]:
    """Seed fields as the response object `{"<id>": v}` or the request list `[{id, value}]`."""
    pairs = raw.items() if isinstance(raw, Mapping) else ((f["id"], f["value"]) for f in raw)
    return {str(int(k)): str(v) for k, v in pairs if str(v) != ""}


def csv_to_dict(text: str) -> dict[str, Any]:
    """A CSV seed (see the package docstring) -> the JSON seed shape."""
    rows = list(csv.DictReader(io.StringIO(text)))
    headers = [h for h in (rows[0].keys() if rows else []) if h]
    if "phone" not in headers:
        raise SeedError("CSV seed needs a 'phone' column")
    field_names = [h for h in headers if h not in CSV_RESERVED]
    fields = [{"id": FIRST_FIELD_ID + i, "name": n} for i, n in enumerate(field_names)]
    groups: dict[str, dict[str, Any]] = {}
    rows = [row for row in rows if (row.get("phone") or "").strip()]
    contacts = [_csv_contact(row, fields, groups) for row in rows]
    return {"fields": fields, "groups": list(groups.values()), "contacts": contacts}


def _csv_contact(
    row: Mapping[str, str | None], fields: list[dict[str, Any]], groups: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    refs = [g.strip() for g in (row.get("groups") or "").split(";") if g.strip()]
    contact: dict[str, Any] = {
        "phone": int((row["phone"] or "").strip()),
        "fields": {str(f["id"]): row.get(f["name"]) or "" for f in fields},
        "groups": [_csv_group(ref, groups) for ref in refs],
    }
    for key in ("id", "hlr_status", "hlr_last_check", "created_at"):
        if (row.get(key) or "").strip():
            contact[key] = (row[key] or "").strip()
    return contact


def _csv_group(ref: str, groups: dict[str, dict[str, Any]]) -> int:
    """A list id (digits) or a list name; names become lists with ids in seed order."""
    if ref not in groups:
        taken = [int(g["id"]) for g in groups.values()]
        gid = int(ref) if ref.isdigit() else max(taken, default=FIRST_GROUP_ID - 1) + 1
        groups[ref] = {"id": gid, "name": ref if not ref.isdigit() else f"List {ref}"}
    return int(groups[ref]["id"])
