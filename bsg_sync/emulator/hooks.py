"""Test hooks that act behind the client's back: a colleague's edit, an answer about another contact.

Queued with ``POST /_emulator/faults`` (or the ``Emulator`` methods of the same names)::

    {"edit_before_put": {"id": 248400001, "fields": {"387716": "X"}, "groups_add": [5],
                         "groups_remove": [6], "phone": 447700900999, "nth": 1},
     "edit_before_get": {"id": 248400003, "groups_add": [5]},
     "edit_after_get":  [{"id": 248400002, "fields": {"387714": ""}}],
     "wrong_id_answers": 2}

* ``edit_before_put`` (one edit or a list): applied to contact ``id`` right before the ``nth``
  next ``PUT /api/contacts/{id}`` of that contact is processed (default 1 = the next one), so
  the PUT lands on the edited contact. Only PUTs that reach the endpoint count (not those
  answered by an injected fault, a 401 or the duplicate 429).
* ``edit_before_get``: the same, right before the ``nth`` next ``GET /api/contacts/{id}`` of
  that contact is answered (that GET already shows the edit: a colleague's change between the
  tool's refresh and its fresh read). ``edit_after_get``: right after it was answered (the GET
  shows the old state: a change inside the window between the fresh read and the PUT). List and
  search reads never count.
* An edit sets each of ``fields`` (an empty string clears the value), adds ``groups_add``,
  removes ``groups_remove`` and, if given, sets ``phone`` (unless another contact has it).
  Keys, field ids and list ids are checked when queued (400 otherwise); an edit whose contact
  is gone when it fires is dropped.
* ``wrong_id_answers: N``: the next N successful answers of ``PUT /api/contacts/{id}`` or
  ``POST /api/contacts`` describe another contact (the lowest other id; a copy with id + 1 if
  there is none). The write itself is applied normally; only its answer is wrong.

``GET /_emulator/hooks`` reports ``{"pending_edits", "applied_edits", "wrong_id_answers"}``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bsg_sync.emulator.store import Store

log = logging.getLogger(__name__)
EDIT_KEYS = frozenset({"id", "phone", "fields", "groups_add", "groups_remove", "nth"})
TRIGGERS = {"edit_before_put": "before-put", "edit_before_get": "before-get",
            "edit_after_get": "after-get"}


class HookError(ValueError):
    """A hook request the emulator cannot queue (unknown key, contact, field or list)."""


@dataclass
class ContactEdit:
    """One queued edit: what to change on which contact, and on which request."""

    contact_id: int
    trigger: str
    nth: int = 1
    phone: int | None = None
    fields: dict[str, str] = field(default_factory=dict)
    groups_add: list[int] = field(default_factory=list)
    groups_remove: list[int] = field(default_factory=list)


def parse_edit(raw: object, trigger: str, store: Store) -> ContactEdit:
    """A JSON edit -> ContactEdit, checked against the store's fields and lists."""
    if not isinstance(raw, Mapping):
        raise HookError("an edit is an object with at least an `id`")
    unknown = set(raw) - EDIT_KEYS
    if unknown or "id" not in raw:
        raise HookError(f"an edit takes the keys {sorted(EDIT_KEYS)} and needs `id`")
    try:
        edit = ContactEdit(
            contact_id=_int(raw["id"]), trigger=trigger, nth=_int(raw.get("nth", 1)),
            phone=None if raw.get("phone") is None else _int(raw["phone"]),
            fields={str(_int(k)): str(v) for k, v in dict(raw.get("fields") or {}).items()},
            groups_add=[_int(g) for g in raw.get("groups_add") or []],
            groups_remove=[_int(g) for g in raw.get("groups_remove") or []],
        )
    except (TypeError, ValueError) as exc:
        raise HookError(f"bad edit {dict(raw)!r}: {exc}") from exc
    _check_refs(edit, store)
    return edit


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not an integer")
    return int(value)


def _check_refs(edit: ContactEdit, store: Store) -> None:
    if edit.nth < 1:
        raise HookError("`nth` counts from 1 (the next request)")
    missing_fields = [f for f in edit.fields if int(f) not in store.fields]
    missing_groups = [g for g in edit.groups_add + edit.groups_remove if g not in store.groups]
    if missing_fields or missing_groups:
        raise HookError(f"unknown field ids {missing_fields} or list ids {missing_groups}")


class Hooks:
    """Queued edits and wrong-id answers; every call is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._edits: list[ContactEdit] = []
        self._applied = 0
        self._wrong_ids = 0

    def add_edits(self, edits: list[ContactEdit]) -> None:
        with self._lock:
            self._edits.extend(edits)

    def add_wrong_id_answers(self, count: int) -> None:
        if count < 0:
            raise HookError("wrong_id_answers is a count >= 0")
        with self._lock:
            self._wrong_ids += count

    def fire(self, trigger: str, contact_id: int, store: Store) -> None:
        """Count this request against the matching edits; apply those whose turn it is."""
        with self._lock:
            due = []
            for edit in self._edits:
                if edit.trigger == trigger and edit.contact_id == contact_id:
                    edit.nth -= 1
                    if edit.nth == 0:
                        due.append(edit)
            self._edits = [e for e in self._edits if e.nth > 0]
        for edit in due:
            self._apply(edit, store)

    def _apply(self, edit: ContactEdit, store: Store) -> None:
        rec = store.contacts.get(edit.contact_id)
        if rec is None:
            log.warning("edit for contact %s dropped: the contact is gone", edit.contact_id)
            return
        store.apply_edit(rec, edit.phone, edit.fields, edit.groups_add, edit.groups_remove)
        with self._lock:
            self._applied += 1

    def take_wrong_id(self) -> bool:
        """True (and one fewer left) if the next write answer must describe another contact."""
        with self._lock:
            if self._wrong_ids <= 0:
                return False
            self._wrong_ids -= 1
            return True

    def status(self) -> dict[str, int]:
        with self._lock:
            return {"pending_edits": len(self._edits), "applied_edits": self._applied,
                    "wrong_id_answers": self._wrong_ids}

    def clear(self) -> None:
        with self._lock:
            self._edits.clear()
            self._applied = 0
            self._wrong_ids = 0


def other_contact_wire(store: Store, contact_id: int) -> dict[str, Any]:
    """The wire shape of a contact other than `contact_id` (a wrong-id answer)."""
    others = sorted(c for c in store.contacts if c != contact_id)
    if others:
        return store.contact_wire(store.contacts[others[0]])
    return {**store.contact_wire(store.contacts[contact_id]), "id": contact_id + 1}
