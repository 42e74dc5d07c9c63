"""The pipeline after the reader held compactly: DesiredRows, the lazy plan and RowResults equal
the plain lists they replace (property tests), and a mapped, planned sheet holds a few bytes a
row, not objects (tracemalloc)."""

from __future__ import annotations

import dataclasses
import gc
import itertools
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_sync import mapping as mapping_mod
from bsg_sync.differ import PlannedRows, plan_changes
from bsg_sync.mapping import _PhoneCache, dedupe, map_rows, parse_mapping, resolve_mapping
from bsg_sync.models import (
    EMPTY_FIELDS,
    Account,
    Action,
    ColumnMapping,
    CompactBuilder,
    Contact,
    Desired,
    DesiredRows,
    Field,
    Group,
    GroupsMode,
    Known,
    PlanResults,
    RowResult,
    RowResults,
    Sheet,
    SheetRow,
    Status,
    result_from_plan,
)
from bsg_sync.phones import PhoneResult, normalise_phone

ACCOUNT = Account(fields=(Field(11, "First name"), Field(12, "City"), Field(13, "Plan")),
                  groups=(Group(1, "Newsletter"), Group(2, "VIP")))
HEADERS = ("Contact ID", "Mobile", "First name", "City", "Plan", "Lists", "Notes")
MAPPING = """
[columns]
"Contact ID" = "id"
"Mobile" = "phone"
"First name" = 11
"City" = { target = "field:City", blank = "clear" }
"Plan" = "field:Plan"
"Lists" = "groups"
[options]
default_country = "gb"
groups = "exact"
"""
PHONE_ONLY = """
[columns]
"Mobile" = "phone"
"First name" = 11
"City" = "field:City"
"Plan" = "field:Plan"
[options]
default_country = "gb"
"""


def resolved(text: str = MAPPING) -> ColumnMapping:
    return resolve_mapping(parse_mapping(text), HEADERS, ACCOUNT)


def list_sheet(rows: Sequence[tuple[str, ...]]) -> Sheet:
    return Sheet(Path("s.csv"), HEADERS, [SheetRow(i + 2, r) for i, r in enumerate(rows)], "x")


def compact_sheet(rows: Sequence[tuple[str, ...]]) -> Sheet:
    builder = CompactBuilder()
    builder.FLUSH = 3  # several chunks even for a few rows
    for i, r in enumerate(rows):
        builder.add(i + 2, r)
    builder.widen(len(HEADERS))
    return Sheet(Path("s.xlsx"), HEADERS, builder.build(), "x")


CELL = {
    0: st.sampled_from(["", "7", "8", "9", "x"]),
    1: st.sampled_from(["", "07700 900123", "+447700900124", "447700900125", "12345"]),
    5: st.sampled_from(["", "VIP", "Newsletter; 2"]),
}
ROW = st.tuples(*[CELL.get(i, st.sampled_from(["", "a", "b"])) for i in range(len(HEADERS))])


def plain_desired(sheet: Sheet, d: Desired) -> Desired:
    """What the mapping made before it held rows compactly: a dict of the mapped fields."""
    columns = mapping_mod._sheet_columns(sheet, resolved())
    values = next(r.values for r in sheet.rows if r.row == d.row)
    fields = {fid: values[col] for col, fid, clears in columns.fields if values[col] or clears}
    return dataclasses.replace(d, fields=fields)


@settings(max_examples=150, deadline=None)
@given(st.lists(ROW, max_size=12))
def test_mapping_a_compact_sheet_equals_mapping_the_list(rows: list[tuple[str, ...]]) -> None:
    plain = map_rows(list_sheet(rows), resolved(), ACCOUNT)
    compact = map_rows(compact_sheet(rows), resolved(), ACCOUNT)
    assert isinstance(compact.desired, DesiredRows)
    assert list(compact.desired) == list(plain.desired) and compact.results == plain.results
    sheet = list_sheet(rows)
    assert list(plain.desired) == [plain_desired(sheet, d) for d in plain.desired]
    covered = sorted([d.row for d in plain.desired] + [r.row for r in plain.results])
    assert covered == [i + 2 for i in range(len(rows))]


def test_rows_that_set_no_field_share_one_empty_mapping() -> None:
    mapped = map_rows(list_sheet([("7", "", "", "", "", "", ""), ("8", "", "", "", "", "", "")]),
                      resolve_mapping(parse_mapping('[columns]\n"Contact ID" = "id"\n'
                                                    '"First name" = 11\n'), HEADERS, ACCOUNT),
                      ACCOUNT)
    first, second = mapped.desired
    assert first.fields is EMPTY_FIELDS and second.fields is EMPTY_FIELDS
    assert first.fields == {}


def test_the_phone_cache_is_bounded_and_still_parses_a_repeat_once() -> None:
    calls: list[str] = []

    def counting(text: str) -> PhoneResult:
        calls.append(text)
        return normalise_phone(text, "GB")

    cache = _PhoneCache(counting, limit=4)
    for i in range(10):
        assert cache(f"07700 90012{i}").digits == f"44770090012{i}"
        assert len(cache) <= 4
    cache("07700 900129")
    assert calls.count("07700 900129") == 1


# --------------------------------------------------------------------------- DesiredRows

DESIRED = st.builds(
    Desired, st.integers(2, 40), st.none() | st.sampled_from([1, 2, 3]),
    st.none() | st.sampled_from(["447700900001", "447700900002"]),
    st.dictionaries(st.sampled_from([11, 12]), st.sampled_from(["", "a"]), max_size=2),
    st.none() | st.frozensets(st.sampled_from([1, 2]), max_size=2),
    st.sampled_from(list(GroupsMode)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(DESIRED, max_size=8), st.dictionaries(
    st.sampled_from(["447700900001", "447700900002"]), st.sampled_from([4, 5])),
    st.lists(st.booleans(), min_size=8, max_size=8))
def test_desired_rows_equal_the_objects(items: list[Desired], by_phone: dict[str, int],
                                        keep: list[bool]) -> None:
    rows = DesiredRows.of(items)
    assert rows == items and list(rows) == items and len(rows) == len(items)
    assert [rows[i] for i in range(-len(items), len(items))] == items + items
    assert rows[1:] == items[1:] and DesiredRows.of(rows) is rows
    assert list(rows.contact_ids()) == [d.contact_id for d in items]
    assert list(rows.row_numbers()) == [d.row for d in items]
    resolved_ids = [d if d.contact_id is not None or not d.phone or d.phone not in by_phone
                    else dataclasses.replace(d, contact_id=by_phone[d.phone]) for d in items]
    assert rows.with_ids(by_phone) == resolved_ids
    chosen = [i for i in range(len(items)) if keep[i]]
    assert rows.select(chosen) == [items[i] for i in chosen]
    assert rows == items  # unchanged by what was made from it


def plain_dedupe(desired: list[Desired], results: list[RowResult],
                 phones: Mapping[int, str]) -> tuple[list[Desired], list[RowResult]]:
    """dedupe as it was on a list of Desired objects (the oracle)."""
    first: dict[int | str | None, Desired] = {}
    dupes: dict[int | str | None, list[Desired]] = {}
    for d in desired:
        key = d.contact_id if d.contact_id is not None else d.phone
        seen = first.setdefault(key, d)
        if seen is not d:
            dupes.setdefault(key, [seen]).append(d)
    if not dupes:
        return desired, results
    dropped: set[int] = set()
    for group in dupes.values():
        head = group[0]
        if all(mapping_mod._same_wish(head, d, phones) for d in group[1:]):
            results.extend(mapping_mod._duplicate_row(d, head.row) for d in group[1:])
            dropped.update(d.row for d in group[1:])
        else:
            results.extend(mapping_mod._conflict(d, group) for d in group)
            dropped.update(d.row for d in group)
    results.sort(key=lambda r: r.row)
    return [d for d in desired if d.row not in dropped], results


@settings(max_examples=200, deadline=None)
@given(st.lists(DESIRED, max_size=8), st.dictionaries(
    st.sampled_from([1, 2, 3]), st.sampled_from(["447700900001", "447700900002"])))
def test_dedupe_equals_the_plain_one(items: list[Desired], phones: dict[int, str]) -> None:
    items = [dataclasses.replace(d, row=i + 2) for i, d in enumerate(items)]  # rows unique
    once = dedupe(DesiredRows.of(items), [], phones)
    want_rows, want_results = plain_dedupe(list(items), [], phones)
    assert list(once.desired) == want_rows and once.results == want_results


# --------------------------------------------------------------------------- plan, results


def test_not_found_rows_are_made_when_read_not_held() -> None:
    items = [Desired(i + 2, None, f"4477009{i:05d}", {11: "a"}, None) for i in range(500)]
    items.append(Desired(600, 99, None, {}, None))
    plan = plan_changes(items, {}, account=ACCOUNT)
    assert isinstance(plan, PlannedRows) and plan.detailed_rows() == []
    assert [p.status for p in plan] == [Status.NOT_FOUND] * 501
    assert plan[0].error == ("No contact with phone 447700900000 in BSG; use --create-missing "
                             "to create it")
    assert plan[-1].error == "Contact 99 does not exist in BSG"
    created = plan_changes(items, {}, account=ACCOUNT, create_missing=True)
    assert len(created.detailed_rows()) == 500 and created[0].action is Action.CREATE


def result(row: int, status: Status = Status.UNCHANGED, tag: str = "") -> RowResult:
    return RowResult(row=row, status=status, error=tag)


PART = st.lists(st.integers(1, 12), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(PART, max_size=4), st.booleans())
def test_row_results_equal_the_sorted_concatenation(parts: list[list[int]], sort: bool) -> None:
    made = [[result(r, tag=f"{n}.{j}") for j, r in enumerate(sorted(p) if sort else p)]
            for n, p in enumerate(parts)]
    want = sorted(itertools.chain(*made), key=lambda r: r.row)
    got = RowResults(made)
    assert list(got) == want and got == want and len(got) == len(want)
    assert [got[i] for i in range(-len(want), len(want))] == want + want
    assert got[1:-1] == want[1:-1]
    tagged = got.mapped(lambda r: dataclasses.replace(r, changes="x"))
    assert list(tagged) == [dataclasses.replace(r, changes="x") for r in want]
    assert tagged[0:1] == [dataclasses.replace(r, changes="x") for r in want[:1]]
    with pytest.raises(IndexError):
        got[len(want)]


def test_plan_results_are_the_plan_rows_results() -> None:
    known = {1: Known(Contact(1, "447700900001", {11: "a"}, frozenset()))}
    items = [Desired(2, 1, None, {11: "a"}, None), Desired(3, 1, None, {11: "b"}, None),
             Desired(4, None, "447700900009", {}, None)]
    plan = plan_changes(items, known, account=ACCOUNT)
    results = PlanResults(plan)
    want = [result_from_plan(p) for p in plan]
    assert list(results) == want and results == want and results[1] == want[1]
    assert list(results.row_numbers()) == [2, 3, 4] and results[0:2] == want[0:2]
    merged = RowResults([[result(1, Status.INVALID)], results])
    assert [r.row for r in merged] == [1, 2, 3, 4]


# --------------------------------------------------------------------------- memory

N = 20_000


def big_sheet() -> Sheet:
    builder = CompactBuilder()
    for i in range(N):
        builder.add(i + 2, ("", f"07700 9{i:05d}", f"First{i}", f"City {i % 50}", f"plan{i}",
                            "", "note"))
    return Sheet(Path("s.xlsx"), HEADERS, builder.build(), "x")


def retained(make: Callable[[], object]) -> tuple[object, int]:
    """What `make` returns, and the bytes it still holds once made."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = make()
        gc.collect()
        return out, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_mapped_planned_dry_run_holds_bytes_a_row_not_objects() -> None:
    sheet = big_sheet()
    mapped, mapping_bytes = retained(lambda: map_rows(sheet, resolved(PHONE_ONLY), ACCOUNT))
    assert isinstance(mapped, mapping_mod.MappedRows) and len(mapped.desired) == N
    # the digits of each phone (a str, ~61 bytes) and a few array entries; a Desired with
    # its dict of three fields was ~700 bytes
    assert mapping_bytes / N < 120
    plan, plan_bytes = retained(lambda: plan_changes(mapped.desired, {}, account=ACCOUNT))
    assert isinstance(plan, PlannedRows) and plan_bytes / N < 16  # a list of None
    results, result_bytes = retained(lambda: RowResults([mapped.results, PlanResults(plan)]))
    assert isinstance(results, RowResults) and result_bytes < 10_000
    first = results[0]
    assert (first.row, first.status, first.phone) == (2, Status.NOT_FOUND, "447700900000")
    assert mapped.desired[5].fields == {11: "First5", 12: "City 5", 13: "plan5"}


TEXT = st.text(alphabet=st.sampled_from(['a', '"', "\\", "\n", "\x00", "\x85", "\u2028",
                                         "\u2029", "é", "☃", "𝄞", "=", " "]), max_size=6)
RESULTS = st.builds(
    RowResult, st.integers(0, 10**7), st.none() | st.integers(1, 10**9), st.none() | TEXT,
    st.sampled_from(list(Action)), st.sampled_from(list(Status)), TEXT, TEXT, TEXT,
    st.integers(0, 5), st.none() | st.integers(100, 599), st.none() | TEXT, st.none() | TEXT,
    st.none() | TEXT, st.none() | TEXT, st.none() | TEXT, st.none() | st.sampled_from([0, 1]),
    st.none() | st.sampled_from([0, 1]), st.none() | TEXT, st.none() | TEXT)


@settings(max_examples=300, deadline=None)
@given(RESULTS)
def test_the_fast_json_line_is_the_json_of_the_record(r: RowResult) -> None:
    from bsg_sync import report

    assert report.report_json_line(r) == report._json_line(report.report_record(r))
    odd = dataclasses.replace(r, error_code=Status.OK, attempts=True)  # type: ignore[arg-type]
    assert report.report_json_line(odd) == report._json_line(report.report_record(odd))


@settings(max_examples=200, deadline=None)
@given(st.lists(RESULTS, max_size=8))
def test_the_one_pass_summary_counts_as_the_separate_counts(results: list[RowResult]) -> None:
    from collections import Counter

    from bsg_sync import report

    s = report.summarise(results, run_id=1, sheet=Path("s.csv"), sheet_sha256="x",
                         report_path=None, errors_path=None, dry_run=True, started_at="a",
                         finished_at="b", duration_s=0.0, options={}, requests=0, retries=0)
    codes = Counter(r.error_code for r in results if r.error_code)
    hlr = Counter(r.hlr_status for r in results if r.hlr_status)
    assert s.counts == report.count_statuses(results) and s.rows == len(results)
    assert s.error_codes == dict(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0])))
    assert s.hlr == dict(sorted(hlr.items(), key=lambda kv: (-kv[1], kv[0])))
    assert list(s.ok_actions.items()) == list(report.ok_actions(results).items())


def test_every_sequence_made_when_read_equals_exactly_the_same_items() -> None:
    """One equality for CompactRows, DesiredRows, PlannedRows and RowResults (MadeWhenRead):
    equal to a list of the same items, unequal to one item changed, to one item fewer and to
    text; unhashable, as a list."""
    builder = CompactBuilder()
    for i in range(3):
        builder.add(i + 2, (f"a{i}", f"b{i}"))
    desired = [Desired(i + 2, None, f"44770090000{i}", {11: f"x{i}"}, None) for i in range(3)]
    plan = plan_changes(desired, {}, account=ACCOUNT)
    results = RowResults([[result(2), result(4)], [result(3)]])
    made: list[Sequence[object]] = [builder.build(), DesiredRows.of(desired), plan, results]
    for seq in made:
        items = list(seq)
        changed = [*items[:-1], "something else"]
        assert seq == items and items == seq
        assert seq != changed and changed != seq
        assert seq != items[:-1] and seq != [*items, items[0]]
        texts: list[object] = ["abc", b"abc"]
        assert all(seq != text for text in texts)
        with pytest.raises(TypeError):
            hash(seq)
