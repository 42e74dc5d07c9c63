"""The emulated account's data (contacts, lists, fields) and its business rules."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bsg_sync.emulator.apierror import business, unknown_error

FIRST_CONTACT_ID = 248400001
FIRST_GROUP_ID = 1864600
FIRST_FIELD_ID = 387700
MAX_FIELDS = 30


def now_text() -> str:
    """BSG's timestamp format, `Y-m-d H:i:s`, no timezone."""
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class ContactRec:
    id: int
    phone: int
    fields: dict[str, str] = field(default_factory=dict)
    groups: list[int] = field(default_factory=list)
    created_at: str = field(default_factory=now_text)
    hlr_status: str = "unknown"
    hlr_last_check: str | None = None


@dataclass
class GroupRec:
    id: int
    name: str
    description: str | None = None
    default: bool = False
    created_at: str = field(default_factory=now_text)


@dataclass
class FieldRec:
    id: int
    name: str
    type: str = "text"
    description: str | None = None
    is_visible: bool = True


class Store:
    """Contacts, lists and fields of one account. Callers hold `lock` around every call."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.contacts: dict[int, ContactRec] = {}
        self.groups: dict[int, GroupRec] = {}
        self.fields: dict[int, FieldRec] = {}
        self.members: dict[int, set[int]] = {}
        self.by_phone: dict[int, int] = {}

    # ------------------------------------------------------------ wire shapes
    def contact_wire(self, rec: ContactRec) -> dict[str, Any]:
        return {
            "id": rec.id,
            "phone": rec.phone,
            "fields": dict(rec.fields) if rec.fields else [],
            "groups": [self.group_wire(self.groups[g]) for g in rec.groups],
            "hlr_status": rec.hlr_status,
            "hlr_last_check": rec.hlr_last_check,
            "created_at": rec.created_at,
        }

    def group_wire(self, rec: GroupRec) -> dict[str, Any]:
        return {
            "id": rec.id,
            "name": rec.name,
            "description": rec.description,
            "default": rec.default,
            "created_at": rec.created_at,
            "items": len(self.members.get(rec.id, ())),
            "stop_list_count": 0,
        }

    @staticmethod
    def field_wire(rec: FieldRec) -> dict[str, Any]:
        wire: dict[str, Any] = {"id": rec.id, "name": rec.name, "type": rec.type}
        if rec.description is not None:  # the spec's field description is not nullable
            wire["description"] = rec.description
        wire["is_visible"] = rec.is_visible
        return wire

    # ------------------------------------------------------------ lookups
    def contact(self, contact_id: int) -> ContactRec:
        rec = self.contacts.get(contact_id)
        if rec is None:
            raise business("Invalid contact id")
        return rec

    def group(self, group_id: int) -> GroupRec:
        rec = self.groups.get(group_id)
        if rec is None:
            raise business("Contact group is not found")
        return rec

    def field_rec(self, field_id: int) -> FieldRec:
        rec = self.fields.get(field_id)
        if rec is None:
            raise business("Field is not found")
        return rec

    def check_group_refs(self, group_ids: list[int]) -> None:
        if any(g not in self.groups for g in group_ids):
            raise business("Invalid contact list exception")

    def check_field_refs(self, values: dict[str, str]) -> None:
        if any(int(f) not in self.fields for f in values):
            raise business("Contact field input is invalid")

    def next_id(self, table: dict[int, Any], first_id: int) -> int:
        return max(table, default=first_id - 1) + 1

    # ------------------------------------------------------------ contacts
    def add_contact(self, rec: ContactRec) -> ContactRec:
        """Insert a validated contact record (create and seeding)."""
        if rec.phone in self.by_phone:
            raise business("Phone number is already exist in contact book")
        self.contacts[rec.id] = rec
        self.by_phone[rec.phone] = rec.id
        for gid in rec.groups:
            self.members.setdefault(gid, set()).add(rec.id)
        return rec

    def create_contact(self, phone: int, values: dict[str, str], groups: list[int]) -> ContactRec:
        self.check_group_refs(groups)
        self.check_field_refs(values)
        kept = {k: v for k, v in values.items() if v != ""}
        cid = self.next_id(self.contacts, FIRST_CONTACT_ID)
        return self.add_contact(ContactRec(cid, phone, kept, list(dict.fromkeys(groups))))

    def update_contact(
        self,
        rec: ContactRec,
        phone: int,
        values: dict[str, str] | None,
        groups: list[int] | None,
        replace: bool,
    ) -> ContactRec:
        """Apply a PUT: merge (set given fields, add given lists) or replace them exactly."""
        self.check_group_refs(groups or [])
        self.check_field_refs(values or {})
        owner = self.by_phone.get(phone)
        if owner is not None and owner != rec.id:
            raise business("Phone number is already exist in contact book")
        self._set_phone(rec, phone)
        self._set_fields(rec, values, replace)
        if groups is not None or replace:
            wanted = list(dict.fromkeys(groups or []))
            self._set_groups(rec, wanted if replace else rec.groups + wanted)
        return rec

    def apply_edit(
        self, rec: ContactRec, phone: int | None, values: dict[str, str],
        groups_add: list[int], groups_remove: list[int],
    ) -> None:
        """A change made elsewhere (a test hook's colleague): known fields and lists only."""
        if phone is not None and self.by_phone.get(phone, rec.id) == rec.id:
            self._set_phone(rec, phone)
        self._set_fields(rec, {k: v for k, v in values.items() if int(k) in self.fields}, False)
        kept = [g for g in rec.groups + groups_add if g not in groups_remove and g in self.groups]
        self._set_groups(rec, kept)

    def _set_phone(self, rec: ContactRec, phone: int) -> None:
        del self.by_phone[rec.phone]
        rec.phone = phone
        self.by_phone[phone] = rec.id

    @staticmethod
    def _set_fields(rec: ContactRec, values: dict[str, str] | None, replace: bool) -> None:
        merged = {} if replace else dict(rec.fields)
        merged.update(values or {})
        rec.fields = {k: v for k, v in sorted(merged.items(), key=lambda kv: int(kv[0])) if v}

    def _set_groups(self, rec: ContactRec, group_ids: list[int]) -> None:
        for gid in rec.groups:
            self.members.get(gid, set()).discard(rec.id)
        rec.groups = list(dict.fromkeys(group_ids))
        for gid in rec.groups:
            self.members.setdefault(gid, set()).add(rec.id)

    def delete_contact(self, rec: ContactRec) -> None:
        self._set_groups(rec, [])
        del self.by_phone[rec.phone]
        del self.contacts[rec.id]

    def delete_contacts(self, contact_ids: list[int], group_ids: list[int]) -> None:
        doomed = set(contact_ids)
        for gid in group_ids:
            doomed |= self.members.get(gid, set())
        for cid in sorted(doomed):
            if cid in self.contacts:
                self.delete_contact(self.contacts[cid])

    # ------------------------------------------------------------ lists
    def add_group(self, rec: GroupRec) -> GroupRec:
        if any(g.name == rec.name for g in self.groups.values() if g.id != rec.id):
            raise business("Contact group is already exists")
        self.groups[rec.id] = rec
        self.members.setdefault(rec.id, set())
        return rec

    def create_group(self, name: str, description: str | None, default: bool) -> GroupRec:
        gid = self.next_id(self.groups, FIRST_GROUP_ID)
        return self.add_group(GroupRec(gid, name, description, default))

    def delete_group(self, rec: GroupRec) -> None:
        for cid in self.members.pop(rec.id, set()):
            self.contacts[cid].groups.remove(rec.id)
        del self.groups[rec.id]

    def attach(self, contact_ids: list[int], group_ids: list[int], attach: bool) -> None:
        contacts = [self.contact(c) for c in contact_ids]
        for gid in group_ids:
            self.group(gid)
        for rec in contacts:
            if attach:
                self._set_groups(rec, rec.groups + group_ids)
            else:
                self._set_groups(rec, [g for g in rec.groups if g not in group_ids])

    # ------------------------------------------------------------ fields
    def add_field(self, rec: FieldRec) -> FieldRec:
        if any(f.name == rec.name for f in self.fields.values() if f.id != rec.id):
            raise unknown_error("name", f'The field with name "{rec.name}" already exists')
        if rec.id not in self.fields and len(self.fields) >= MAX_FIELDS:
            raise business("Contact fields number is overlimited")
        self.fields[rec.id] = rec
        return rec

    def create_field(
        self, name: str, ftype: str, description: str | None, visible: bool
    ) -> FieldRec:
        fid = self.next_id(self.fields, FIRST_FIELD_ID)
        return self.add_field(FieldRec(fid, name, ftype, description, visible))

    def delete_fields(self, field_ids: list[int]) -> None:
        recs = [self.field_rec(f) for f in field_ids]
        if len(set(field_ids)) != len(field_ids):
            return  # BSG's documented quirk: a repeated id "succeeds" but deletes nothing
        for rec in recs:
            del self.fields[rec.id]
            for contact in self.contacts.values():
                contact.fields.pop(str(rec.id), None)

    def clear(self) -> None:
        """Forget everything (before re-seeding)."""
        for table in (self.contacts, self.groups, self.fields, self.members, self.by_phone):
            table.clear()
