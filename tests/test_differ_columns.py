"""The differ's column path: a sheet's rows as mapping builds them (DesiredRows reading the
sheet's cells, held as CompactRows or as a list) planned against a KnownBook (as load_known
builds it, or made from a dict of Known) equal the `_plan_one` oracle on every row; and the
pieces it stands on (KnownBook, BookColumn, the text comparison) equal their plain forms."""

from __future__ import annotations

import json
from array import array
from itertools import accumulate, pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_sync.differ import (
    _changes,
    _Names,
    _plan_one,
    _spans,
    _spans_differ,
    plan_changes,
)
from bsg_sync.mapping import map_rows, parse_mapping, resolve_mapping
from bsg_sync.models import (
    MISSING,
    Account,
    Action,
    BookColumn,
    CompactBuilder,
    Contact,
    Desired,
    DesiredRows,
    Field,
    Group,
    Known,
    KnownBook,
    KnownBuilder,
    PlannedRow,
    PlanResults,
    Sheet,
    SheetRow,
    result_from_plan,
)
from bsg_sync.phones import PhoneResult
from bsg_sync.state import _known_by_id, _seen_row, _written_json

ACCOUNT = Account((Field(1, "City"), Field(2, "Name"), Field(3, "Plan")),
                  (Group(10, "VIP"), Group(11, "News")))
HEADERS = ("Contact ID", "Mobile", "City", "Name", "Plan", "Lists")
IDS = [1, 2, 3, 4, 5]
PHONES = ["447700900001", "447700900002"]
# values of equal and of different lengths, non-ASCII ones, and the empty cell
VALUES = st.sampled_from(["", "a", "b", "ab", "ba", "é", "Ωx", "abc"])
ID_CELLS = st.sampled_from(["", "1", "2", "3", "4", "5", "9", "x"])  # "x": an invalid row



def _text_differs(text: str, ends: array[int], held: str, held_ends: array[int]) -> list[int]:
    """The rows where two whole columns of as many values differ: one span of them all."""
    return _spans_differ(text, ends, held, held_ends, [(0, 0, 0, len(ends))])


def digits(text: str) -> PhoneResult:
    return PhoneResult(text)


def mapping_text(blank: dict[str, str], groups: str, phone: bool) -> str:
    lines = ['"Contact ID" = "id"', '"Lists" = "groups"']
    if phone:
        lines.append('"Mobile" = "phone"')
    fields = {"City": 1, "Name": 2, "Plan": 3}
    for header, fid in fields.items():
        lines.append(f'"{header}" = {{ target = {fid}, blank = "{blank[header]}" }}')
    if blank["Lists"] == "clear":
        lines[1] = '"Lists" = { target = "groups", blank = "clear" }'
    return "[columns]\n" + "\n".join(lines) + f'\n[options]\ngroups = "{groups}"\n'


ROW = st.tuples(ID_CELLS, st.sampled_from(["", *PHONES]), VALUES, VALUES, VALUES,
                st.sampled_from(["", "VIP", "News", "VIP; News"]))
BLANK = st.fixed_dictionaries({h: st.sampled_from(["keep", "clear"])
                               for h in ("City", "Name", "Plan", "Lists")})


@st.composite
def contacts(draw: st.DrawFn, cid: int) -> Contact:
    fields = draw(st.dictionaries(st.sampled_from([1, 2, 3, 9]), VALUES, max_size=4))
    return Contact(cid, draw(st.sampled_from(PHONES)), fields,
                   draw(st.frozensets(st.sampled_from([10, 11, 12]), max_size=3)),
                   draw(st.sampled_from([None, "active"])),
                   draw(st.sampled_from([None, "2025-01-01 10:00:00"])))


def sheet_of(rows: list[tuple[str, ...]], compact: bool) -> Sheet:
    if not compact:
        return Sheet(Path("s.csv"), HEADERS, [SheetRow(i + 2, r) for i, r in enumerate(rows)],
                     "x")
    builder = CompactBuilder()
    builder.FLUSH = 3
    for i, r in enumerate(rows):
        builder.add(i + 2, r)
    builder.widen(len(HEADERS))
    return Sheet(Path("s.xlsx"), HEADERS, builder.build(), "x")


def loaded(book: dict[int, Known]) -> KnownBook:
    """The book as StateStore.load_known builds it from the store's rows."""
    rows = [(*_seen_row(k.seen, "now")[:6],
             None if k.written is None else _written_json(k.written)) for k in book.values()]
    return _known_by_id(rows)


@st.composite
def mirror(draw: st.DrawFn, d: Desired) -> Contact:
    """A contact that holds what row `d` asks, or nearly: its phone may be another, a list may
    be added or taken away, a field (mapped or not) added, so that few columns differ."""
    cid = d.contact_id or 0
    phone = draw(st.sampled_from(PHONES if d.phone is None else [d.phone, *PHONES]))
    fields = {fid: v for fid, v in d.fields.items() if v}
    fields.update(draw(st.dictionaries(st.sampled_from([1, 9]), VALUES, max_size=1)))
    lists = st.frozensets(st.sampled_from([10, 11, 12]), max_size=1)
    groups = ((d.groups or frozenset()) | draw(lists)) - draw(lists)
    return Contact(cid, phone, fields, groups, draw(st.sampled_from([None, "active"])))


@st.composite
def books(draw: st.DrawFn, desired: DesiredRows) -> dict[int, Known]:
    """Contacts for some of the rows' ids, each random or holding (nearly) what its first
    row asks; either for exactly the rows' ids in their order (aligned), or for some ids, or
    with forty more contacts that hold no field (each field then held by few: sparse)."""
    first: dict[int, Desired] = {}
    for d in desired:
        if d.contact_id is not None:
            first.setdefault(d.contact_id, d)
    ids = [cid for cid in desired.contact_ids() if cid is not None]
    shape = draw(st.sampled_from(["some", "aligned", "padded"]))
    if shape == "aligned" and len(set(ids)) == len(ids):
        chosen = ids
    else:
        chosen = sorted(draw(st.sets(st.sampled_from(IDS), max_size=5)))
    book = {}
    for cid in chosen:
        near = cid in first and draw(st.booleans())
        seen = draw(mirror(first[cid])) if near else draw(contacts(cid))
        book[cid] = Known(seen, draw(st.none() | st.just(seen) | contacts(cid)))
    if shape == "padded":
        book.update({cid: Known(Contact(cid, PHONES[0], {}, frozenset()))
                     for cid in range(100, 140)})
    return book


@settings(max_examples=400, deadline=None)
@given(st.data(), st.lists(ROW, max_size=8), BLANK, st.sampled_from(["add", "exact"]),
       st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_the_column_path_equals_the_oracle(data: st.DataObject, cells: list[tuple[str, ...]],
                                           blank: dict[str, str], groups: str, phone: bool,
                                           compact: bool, from_store: bool, create: bool,
                                           keep: bool) -> None:
    sheet = sheet_of(cells, compact)
    mapping = resolve_mapping(parse_mapping(mapping_text(blank, groups, phone)), HEADERS,
                              ACCOUNT)
    desired = map_rows(sheet, mapping, ACCOUNT, phone_func=digits).desired
    assert isinstance(desired, DesiredRows)
    known = data.draw(books(desired))
    book = loaded(known) if from_store else KnownBook.of(known)
    if from_store:  # the store keeps the phone, fields and lists of a write, not its HLR
        assert book.keys() == known.keys()
        known = dict(book)
    assert book == known
    plan = plan_changes(desired, book, account=ACCOUNT, create_missing=create, keep_drift=keep)
    names = _Names.of(ACCOUNT)
    want = [_plan_one(d, None if d.contact_id is None else known.get(d.contact_id), names,
                      create, keep) for d in desired]
    assert list(plan) == want
    assert [plan[i] for i in range(len(want))] == want
    assert list(PlanResults(plan)) == [result_from_plan(p) for p in want]


def plain_differs(a: list[str], b: list[str]) -> list[int]:
    return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


def column(values: list[str], typecode: str) -> tuple[str, array[int]]:
    return "".join(values), array(typecode, accumulate(map(len, values)))


PAIRS = st.integers(0, 40).flatmap(lambda n: st.tuples(
    st.lists(VALUES, min_size=n, max_size=n), st.lists(VALUES, min_size=n, max_size=n)))


@settings(max_examples=400, deadline=None)
@given(PAIRS, st.sampled_from(["I", "q"]), st.sampled_from(["I", "q"]))
def test_the_text_comparison_equals_comparing_each_value(
        pair: tuple[list[str], list[str]], code_a: str, code_b: str) -> None:
    a, b = pair
    (text, ends), (held, held_ends) = column(a, code_a), column(b, code_b)
    assert _text_differs(text, ends, held, held_ends) == plain_differs(a, b)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([(1, 1)] * 40 + [(2, 1), (1, 0), (1, -2), (3, 2), (1, 2)]),
                max_size=80),
       st.integers(0, 5), st.integers(0, 5), st.data())
def test_spans_are_the_runs_where_both_positions_go_up_by_one(
        steps: list[tuple[int, int]], first: int, book_first: int, data: st.DataObject) -> None:
    index, at = [first], [book_first]
    for step, book_step in steps:
        index.append(index[-1] + step)
        at.append(max(at[-1] + book_step, 0))
    spans = _spans(array("q", index), at)
    if spans is None:  # left to the per-row path when runs are short
        return
    rows = [i for r, _, _, n in spans for i in range(r, r + n)]
    assert rows == list(range(len(index)))
    for r, s, p, n in spans:
        assert index[r:r + n] == list(range(s, s + n)) and at[r:r + n] == list(range(p, p + n))
    for (r, _, _, n), (r2, _, _, _) in pairwise(spans):
        assert index[r2] != index[r + n - 1] + 1 or at[r2] != at[r + n - 1] + 1  # maximal
    values = array("q", data.draw(st.lists(st.integers(-3, 3), min_size=1, max_size=20)))
    assert _changes(values) == [i for i in range(1, len(values)) if values[i] != values[i - 1]]


@settings(max_examples=300, deadline=None)
@given(st.lists(VALUES, max_size=30), st.data())
def test_spans_of_a_column_against_the_book_equal_comparing_each_value(
        sheet: list[str], data: st.DataObject) -> None:
    """Some of the sheet's cells (in order) against as many book values, placed in runs."""
    rows = sorted(data.draw(st.sets(st.integers(0, max(len(sheet) - 1, 0)), max_size=len(sheet))))
    rows = [r for r in rows if r < len(sheet)]
    held = data.draw(st.lists(VALUES, min_size=len(rows), max_size=len(rows)))
    first = data.draw(st.integers(0, 3))  # the book's values start here
    held = [*data.draw(st.lists(VALUES, min_size=first, max_size=first)), *held]
    text, ends = column(sheet, "I")
    held_text, held_ends = column(held, "q")
    want = plain_differs([sheet[r] for r in rows], held[first:])
    runs = _spans(array("q", rows), range(first, first + len(rows)))  # None: runs short
    for spans in ([] if runs is None else [runs]) + [
            [(i, r, first + i, 1) for i, r in enumerate(rows)]]:  # one row a span
        for few in (0, 8):  # 0: never each value on its own
            assert _spans_differ(text, ends, held_text, held_ends, spans, few) == want


def test_many_resized_rows_and_long_runs_are_found() -> None:
    a = ["London"] * 5000
    b = ["Leeds" if i % 3 == 0 else "Londen" if i % 7 == 0 else "London" for i in range(5000)]
    assert _text_differs(*column(a, "I"), *column(b, "I")) == plain_differs(a, b)
    b = ["London"] * 5000
    b[4321] = "Londen"
    assert _text_differs(*column(a, "I"), *column(b, "q")) == [4321]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30).flatmap(lambda n: st.tuples(
    st.just(n), st.dictionaries(st.integers(0, max(n - 1, 0)), VALUES, max_size=n))))
def test_a_book_column_reads_as_its_values(case: tuple[int, dict[int, str]]) -> None:
    size, held = case
    col = BookColumn.of(size, sorted(held), [held[p] for p in sorted(held)])
    assert (col.sparse is None) == (len(held) * 8 >= size)
    assert [col.at(p) for p in range(size)] == [held.get(p, "") for p in range(size)]
    positions = list(range(size))[::-1]
    assert col.values_at(positions) == [held.get(p, "") for p in positions]


def test_a_book_reads_as_the_mapping_it_was_made_from() -> None:
    seen = Contact(7, "447700900001", {2: "b", 1: "", 9: "x"}, frozenset({10}), "active")
    known = {7: Known(seen, Contact(7, "447700900002", {}, frozenset())),
             3: Known(Contact(3, "447700900002", {}, frozenset()))}
    for book in (KnownBook.of(known), loaded(known)):
        assert book == known and dict(book) == known and len(book) == 2
        assert list(book) == [7, 3] and 3 in book and 4 not in book
        assert book.positions(array("q", [3, 4, 7])) == [1, MISSING, 0]
        assert book.positions(array("q", [7, 3])) == range(2)  # the book's own order
        assert book.written_by_id() == {7: known[7].written}
        assert book.phones_by_id() == {7: "447700900001", 3: "447700900002"}
    assert KnownBook.of(known)[7] is known[7]
    builder = KnownBuilder()
    builder.build()
    with pytest.raises(ValueError, match="builds one KnownBook"):
        builder.build()  # it would add the empty last entries twice
    assert list(loaded(known)[7].seen.fields) == [2, 1, 9]  # each contact's own order
    assert json.loads(_written_json(seen))["fields"] == {"2": "b", "1": "", "9": "x"}


KEEP = {"City": "keep", "Name": "keep", "Plan": "keep", "Lists": "keep"}


def plan_and_oracle(cells: list[tuple[str, ...]], groups: str, known: dict[int, Known]
                    ) -> tuple[list[PlannedRow], list[PlannedRow]]:
    mapping = resolve_mapping(parse_mapping(mapping_text(KEEP, groups, False)), HEADERS,
                              ACCOUNT)
    desired = map_rows(sheet_of(cells, True), mapping, ACCOUNT, phone_func=digits).desired
    names = _Names.of(ACCOUNT)
    want = [_plan_one(d, known.get(d.contact_id or 0), names, False, False) for d in desired]
    return list(plan_changes(desired, KnownBook.of(known), account=ACCOUNT)), want


def lists_only(cid: int, lists: str) -> tuple[str, ...]:
    return (str(cid), "", "", "", "", lists)


def holding(cid: int, *groups: int) -> Known:
    return Known(Contact(cid, PHONES[0], {}, frozenset(groups)))


@pytest.mark.parametrize(("groups", "cells", "held", "updates"), [
    # one set of lists asked of every row: settled once per distinct pair of sets
    ("add", [lists_only(1, "VIP"), lists_only(2, "VIP")], [(10,), (10, 11)], []),
    ("add", [lists_only(1, "VIP; News"), lists_only(2, "VIP; News")], [(10,), (10, 11)], [1]),
    ("exact", [lists_only(1, "VIP"), lists_only(2, "VIP")], [(10,), (10,)], []),
    ("exact", [lists_only(1, "VIP"), lists_only(2, "VIP")], [(10,), (10, 11)], [2]),
    # several sets, or a row that leaves its lists blank: row by row
    ("add", [lists_only(1, "VIP"), lists_only(2, "News")], [(10,), (10,)], [2]),
    ("exact", [lists_only(1, ""), lists_only(2, "News")], [(10,), (10,)], [2]),
])
def test_lists_are_compared_once_per_set_or_row_by_row(
        groups: str, cells: list[tuple[str, ...]], held: list[tuple[int, ...]],
        updates: list[int]) -> None:
    known = {cid: holding(cid, *g) for cid, g in enumerate(held, start=1)}
    plan, want = plan_and_oracle(cells, groups, known)
    assert plan == want
    assert [p.contact_id for p in plan if p.action is Action.UPDATE] == updates
