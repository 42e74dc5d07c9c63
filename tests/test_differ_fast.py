"""The differ's fast path: equal to the `_plan_one` oracle on any input (property test), and a
plan that holds PlannedRow objects only for the rows that are not plainly unchanged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_sync.differ import PlannedRows, _Names, _plan_one, count_changes, plan_changes
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
    PlanResults,
    Status,
    result_from_plan,
)

ACCOUNT = Account((Field(1, "City"), Field(2, "Name")), (Group(10, "VIP"), Group(11, "News")))
IDS = st.sampled_from([1, 2, 3, 4])
VALUES = st.sampled_from(["", "a", "b"])
PHONES = st.sampled_from(["447700900001", "447700900002", "+44 7700 900001"])
FIELDS = st.dictionaries(st.sampled_from([1, 2, 9]), VALUES, max_size=3)
GROUPS = st.frozensets(st.sampled_from([10, 11, 12]), max_size=3)


@st.composite
def contacts(draw: st.DrawFn, cid: int) -> Contact:
    fields = {k: v for k, v in draw(FIELDS).items() if v}  # BSG holds no empty values
    return Contact(cid, draw(PHONES), fields, draw(GROUPS), draw(st.sampled_from(
        [None, "active", "absent"])), draw(st.sampled_from([None, "2025-01-01 10:00:00"])))


@st.composite
def books(draw: st.DrawFn) -> dict[int, Known]:
    book = {}
    for cid in draw(st.sets(IDS, max_size=4)):
        written = draw(st.none() | contacts(cid))
        book[cid] = Known(draw(contacts(cid)), written)
    return book


DESIRED = st.builds(
    Desired, st.integers(2, 99), st.none() | IDS, st.none() | PHONES, FIELDS,
    st.none() | GROUPS, st.sampled_from(list(GroupsMode)),
)


def oracle(rows: list[Desired], known: dict[int, Known], create: bool,
           keep: bool) -> list[PlannedRow]:
    names = _Names.of(ACCOUNT)
    return [_plan_one(d, known.get(d.contact_id) if d.contact_id is not None else None,
                      names, create, keep) for d in rows]


@settings(max_examples=300, deadline=None)
@given(st.lists(DESIRED, max_size=8), books(), st.booleans(), st.booleans())
def test_fast_path_equals_the_oracle(rows: list[Desired], known: dict[int, Known],
                                     create: bool, keep: bool) -> None:
    plan = plan_changes(rows, known, account=ACCOUNT, create_missing=create, keep_drift=keep)
    want = oracle(rows, known, create, keep)
    assert list(plan) == want
    assert len(plan) == len(want)
    assert [plan[i] for i in range(-len(want), len(want))] == want + want
    assert plan[1:-1] == want[1:-1]
    assert count_changes(plan) == count_changes(want)
    # a dry run's results, made from the plan's columns without its PlannedRows
    assert list(PlanResults(plan)) == [result_from_plan(p) for p in want]


def unchanged_book(n: int) -> tuple[list[Desired], dict[int, Known]]:
    known = {i: Known(Contact(i, f"4477009{i:05d}", {1: "a"}, frozenset({10}))) for i in
             range(1, n + 1)}
    rows = [Desired(i + 1, i, f"4477009{i:05d}", {1: "b" if i % 10 == 0 else "a"},
                    frozenset({10})) for i in range(1, n + 1)]
    return rows, known


def test_plan_holds_objects_only_for_rows_that_change() -> None:
    rows, known = unchanged_book(1000)
    plan = plan_changes(rows, known, account=ACCOUNT)
    assert isinstance(plan, PlannedRows)
    detailed = plan.detailed_rows()
    assert len(detailed) == 100 and all(p.status is Status.PLANNED for p in detailed)
    assert [p.row for p in detailed] == [d.row for d in rows if (d.contact_id or 0) % 10 == 0]
    assert count_changes(plan) == 100
    assert sum(p.action is Action.NONE for p in plan) == 900


def test_the_plan_does_not_follow_later_changes_to_its_inputs() -> None:
    rows, known = unchanged_book(3)
    plan = plan_changes(rows, known, account=ACCOUNT)
    before = list(plan)
    rows.clear()
    known[1] = Known(Contact(1, "447700999999", {}, frozenset()))
    assert list(plan) == before and len(plan) == 3


def test_a_plan_equals_the_list_of_its_rows() -> None:
    rows, known = unchanged_book(3)
    plan = plan_changes(rows, known, account=ACCOUNT)
    assert plan == list(plan) and list(plan) == plan
    assert plan != list(plan)[:2]
