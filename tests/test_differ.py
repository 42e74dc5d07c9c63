"""Tests for the pure differ: a table of cases, then bodies, limits and the fast path."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from bsg_sync.differ import (
    _Names,
    _plan_fast,
    _plan_one,
    check_max_changes,
    count_changes,
    max_changes_exceeded,
    plan_changes,
)
from bsg_sync.errors import TooManyChanges
from bsg_sync.models import (
    Account,
    Action,
    Contact,
    Desired,
    Field,
    Group,
    GroupsMode,
    Known,
    PlannedRow,
    Status,
    Threshold,
)
from bsg_sync.wire import write_body

ACCOUNT = Account(
    (Field(1, "City"), Field(2, "First name"), Field(3, "Last name")),
    (Group(10, "VIP"), Group(11, "Newsletter"), Group(12, "Alpha")),
)
PHONE = "447700900123"
SEEN: dict[str, Any] = {"phone": PHONE, "fields": {1: "London", 2: "Ann"}, "groups": {10}}
ADD, EXACT = GroupsMode.ADD, GroupsMode.EXACT


def contact(phone: str = PHONE, fields: dict[int, str] | None = None,
            groups: set[int] | None = None, cid: int = 100) -> Contact:
    return Contact(cid, phone, dict(fields or {}), frozenset(groups or ()), "active",
                   "2025-01-01 10:00:00")


def desired(cid: int | None = 100, phone: str | None = None,
            fields: dict[int, str] | None = None, groups: set[int] | None = None,
            mode: GroupsMode = ADD, row: int = 2) -> Desired:
    return Desired(row, cid, phone, dict(fields or {}),
                   None if groups is None else frozenset(groups), mode)


def seen(**over: Any) -> Contact:
    return contact(**{**SEEN, **over})


U, N = (Action.UPDATE, Status.PLANNED), (Action.NONE, Status.UNCHANGED)
DRIFT = "changed in BSG since last sync"
KEEP = {"keep_drift": True}

# (case, seen in BSG, desired, written by us (None: never), options, (action, status), changes)
Case = tuple[str, Contact, Desired, "Contact | None", dict[str, bool], tuple[Action, Status], str]
CASES: list[Case] = [
    ("same field", seen(), desired(fields={1: "London"}), None, {}, N, ""),
    ("nothing mapped", seen(), desired(), None, {}, N, ""),
    ("field changed", seen(), desired(fields={1: "Leeds"}), None, {}, U, "City: London → Leeds"),
    ("field added", seen(), desired(fields={3: "Smith"}), None, {}, U,
     "Last name: (empty) → Smith"),
    ("field cleared", seen(), desired(fields={1: ""}), None, {}, U, "City: London → (empty)"),
    ("clear already empty", seen(), desired(fields={3: ""}), None, {}, N, ""),
    ("unknown field id", seen(), desired(fields={99: "x"}), None, {}, U, "field 99: (empty) → x"),
    ("phone changed", seen(), desired(phone="447700900124"), None, {}, U,
     f"phone: {PHONE} → 447700900124"),
    ("phone same", seen(), desired(phone=PHONE), None, {}, N, ""),
    ("phone kept (None)", seen(), desired(fields={2: "Ann"}), None, {}, N, ""),
    ("known phone formatted", seen(phone="+44 7700 900123"), desired(phone=PHONE), None, {}, N,
     ""),
    ("groups add subset", seen(groups={10, 12}), desired(groups={10}), None, {}, N, ""),
    ("groups add empty", seen(), desired(groups=set()), None, {}, N, ""),
    ("groups add new", seen(), desired(groups={10, 11}), None, {}, U, "+list Newsletter"),
    ("groups exact equal", seen(), desired(groups={10}, mode=EXACT), None, {}, N, ""),
    ("groups exact removes", seen(), desired(groups=set(), mode=EXACT), None, {}, U,
     "−list VIP"),
    ("groups exact swap", seen(), desired(groups={11, 12}, mode=EXACT), None, {}, U,
     "+list Alpha; +list Newsletter; −list VIP"),
    ("everything, stable order", seen(),
     desired(phone="447700900124", fields={2: "Bob", 1: "Leeds"}, groups={11}), None, {}, U,
     "First name: Ann → Bob; City: London → Leeds; phone: 447700900123 → 447700900124; "
     "+list Newsletter"),
    ("drift on field", seen(), desired(fields={1: "York"}), seen(fields={1: "Paris"}), {}, U,
     f"City: London → York ({DRIFT}: was Paris)"),
    ("drift on field, keep", seen(), desired(fields={1: "York"}), seen(fields={1: "Paris"}),
     KEEP, N, ""),
    ("drift kept, other change", seen(), desired(fields={1: "York", 2: "Bob"}),
     seen(fields={1: "Paris", 2: "Ann"}), KEEP, U, "First name: Ann → Bob"),
    ("written equals seen", seen(), desired(fields={1: "York"}), seen(), {}, U,
     "City: London → York"),
    ("drift, sheet agrees with BSG", seen(), desired(fields={1: "London"}),
     seen(fields={1: "Paris"}), {}, N, ""),
    ("drift from empty", seen(), desired(fields={1: "York"}), seen(fields={2: "Ann"}), {}, U,
     f"City: London → York ({DRIFT}: was (empty))"),
    ("drift on unmapped field only", seen(), desired(fields={2: "Ann"}),
     seen(fields={1: "Paris"}), {}, N, ""),
    ("drift on phone", seen(), desired(phone="447700900125"), seen(phone="447700900124"), {}, U,
     f"phone: {PHONE} → 447700900125 ({DRIFT}: was 447700900124)"),
    ("drift on phone, keep", seen(), desired(phone="447700900125"),
     seen(phone="447700900124"), KEEP, N, ""),
    ("drift list added in BSG", seen(groups={10, 12}), desired(groups={10}, mode=EXACT),
     seen(groups={10}), {}, U, "−list Alpha (added in BSG since last sync)"),
    ("drift list added in BSG, keep", seen(groups={10, 12}), desired(groups={10}, mode=EXACT),
     seen(groups={10}), KEEP, N, ""),
    ("drift list removed in BSG", seen(groups={10}), desired(groups={11}),
     seen(groups={10, 11}), {}, U, "+list Newsletter (removed in BSG since last sync)"),
    ("drift list removed in BSG, keep", seen(groups={10}), desired(groups={11}),
     seen(groups={10, 11}), KEEP, N, ""),
]


@pytest.mark.parametrize(("case", "base", "want", "written", "options", "outcome", "changes"),
                         CASES, ids=[c[0] for c in CASES])
def test_plan_table(case: str, base: Contact, want: Desired, written: Contact | None,
                    options: dict[str, bool], outcome: tuple[Action, Status],
                    changes: str) -> None:
    [planned] = plan_changes([want], {100: Known(base, written)}, account=ACCOUNT, **options)
    assert (planned.action, planned.status) == outcome
    assert planned.changes == changes
    assert planned.contact_id == 100
    assert planned.hlr_status == "active"
    assert (planned.target is None) == (outcome == N)
    assert (planned.desired is None) == (outcome == N)


NOT_FOUND_CASES = [
    ("unknown contact", desired(cid=999), False, "Contact 999 does not exist in BSG"),
    ("no contact for phone", desired(cid=None, phone="447700900999"), False,
     "No contact with phone 447700900999 in BSG; use --create-missing to create it"),
    ("nothing to find by", desired(cid=None), True,
     "The row gives neither a contact id nor a phone, so no contact can be found"),
]


@pytest.mark.parametrize(("case", "want", "create", "message"), NOT_FOUND_CASES,
                         ids=[c[0] for c in NOT_FOUND_CASES])
def test_not_found(case: str, want: Desired, create: bool, message: str) -> None:
    [p] = plan_changes([want], {100: Known(seen())}, account=ACCOUNT, create_missing=create)
    assert (p.action, p.status, p.error_code, p.error) == (
        Action.SKIP, Status.NOT_FOUND, "not-found", message)
    assert p.target is None


def test_create_missing_plans_the_new_contact() -> None:
    want = desired(cid=None, phone="447700900999", fields={1: "Leeds", 2: ""}, groups={11, 10})
    [p] = plan_changes([want], {}, account=ACCOUNT, create_missing=True)
    assert (p.action, p.status) == (Action.CREATE, Status.PLANNED)
    assert p.target == Contact(0, "447700900999", {1: "Leeds"}, frozenset({10, 11}))
    assert write_body(p.target) == {"phone": 447700900999,
                                      "fields": [{"id": 1, "value": "Leeds"}],
                                      "groups": [10, 11]}
    assert p.changes == "new contact; City: Leeds; +list Newsletter; +list VIP"
    assert p.desired == want


def test_update_target_is_the_full_record_and_the_body_clears_what_it_drops() -> None:
    known = Known(contact(fields={1: "London", 2: "Ann", 3: "Smith"}, groups={10, 12}))
    want = desired(fields={1: "Leeds", 3: ""}, groups={11})
    [p] = plan_changes([want], {100: known}, account=ACCOUNT)
    assert p.target == Contact(100, PHONE, {1: "Leeds", 2: "Ann"}, frozenset({10, 11, 12}),
                               "active", "2025-01-01 10:00:00")
    assert write_body(p.target, known.seen) == {
        "phone": 447700900123,
        "fields": [{"id": 1, "value": "Leeds"}, {"id": 2, "value": "Ann"},
                   {"id": 3, "value": ""}],
        "groups": [10, 11, 12],
    }
    assert p.detach == frozenset()


def test_exact_groups_target_and_detach() -> None:
    known = Known(contact(groups={10, 12}))
    [p] = plan_changes([desired(groups={11}, mode=EXACT)], {100: known}, account=ACCOUNT)
    assert p.target is not None and p.target.groups == frozenset({11})
    assert p.detach == frozenset({10, 12})


def test_phone_change_goes_into_target_and_phone_column() -> None:
    [p] = plan_changes([desired(phone="447700900124")], {100: Known(seen())}, account=ACCOUNT)
    assert p.target is not None and write_body(p.target)["phone"] == 447700900124
    assert p.phone == "447700900124"


def test_rows_keep_their_order_and_numbers() -> None:
    rows = [desired(row=r, cid=c, fields={1: v})
            for r, c, v in [(5, 100, "London"), (3, 101, "x"), (9, 100, "Leeds")]]
    plan = plan_changes(rows, {100: Known(seen())}, account=ACCOUNT)
    assert [(p.row, p.status) for p in plan] == [
        (5, Status.UNCHANGED), (3, Status.NOT_FOUND), (9, Status.PLANNED)]


@pytest.mark.parametrize("create", [False, True])
def test_fast_loop_equals_the_plain_one(create: bool) -> None:
    known = {100: Known(seen()), 101: Known(seen(cid=101, groups={10, 12}), seen(cid=101))}
    rows = [c[2] for c in CASES] + [c[1] for c in NOT_FOUND_CASES]
    rows += [desired(cid=101, groups={10, 12}, mode=EXACT), desired(cid=101, fields={9: ""})]
    names = _Names.of(ACCOUNT)
    fast = _plan_fast(rows, known, names, create, False)
    plain = [_plan_one(d, known.get(d.contact_id or 0), names, create, False) for d in rows]
    assert fast == plain
    assert sum(p.status is Status.UNCHANGED for p in fast) >= 10
    with pytest.raises(AttributeError):
        fast[0].row = 8  # type: ignore[misc]


def test_plan_restores_the_garbage_collector() -> None:
    assert gc.isenabled()
    plan_changes([desired()], {100: Known(seen())}, account=ACCOUNT)
    assert gc.isenabled()


def _plan(changed: int, total: int) -> list[PlannedRow]:
    return [PlannedRow(i, Action.UPDATE if i < changed else Action.NONE,
                       Status.PLANNED if i < changed else Status.UNCHANGED)
            for i in range(total)]


@pytest.mark.parametrize(("changed", "limit", "exceeded"), [
    (10, "10", False), (11, "10", True), (100, "10%", False), (101, "10%", True),
    (0, "0", False), (1, "0", True),
])
def test_max_changes(changed: int, limit: str, exceeded: bool) -> None:
    plan = _plan(changed, 1000)
    assert count_changes(plan) == changed
    assert max_changes_exceeded(plan, Threshold.parse(limit)) is exceeded


def test_check_max_changes_message() -> None:
    with pytest.raises(TooManyChanges) as info:
        check_max_changes(_plan(812, 1000), Threshold.parse("10%"))
    assert str(info.value) == ("the plan changes 812 of 1000 rows, more than --max-changes 10%; "
                               "check that this is the right sheet, or raise the limit")
    check_max_changes(_plan(812, 1000), None)
    check_max_changes(_plan(5, 1000), Threshold.parse("5"))
