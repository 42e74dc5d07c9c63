"""Desired rows vs known contacts -> the plan of changes, field by field (pure: no I/O)."""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain, compress, count, repeat
from operator import eq, le, ne, not_, sub
from typing import TypeVar, cast

from bsg_sync.errors import ErrorCode, TooManyChanges
from bsg_sync.models import (
    MISSING,
    Account,
    Action,
    BookColumn,
    Contact,
    Desired,
    DesiredRows,
    GroupsMode,
    Known,
    KnownBook,
    MadeWhenRead,
    PlannedRow,
    RowResult,
    Status,
    Threshold,
    cell_run,
    paused_gc,
    result_from_plan,
)

_T = TypeVar("_T")
_DRIFT = "changed in BSG since last sync"
_WRITES = frozenset({Action.UPDATE, Action.CREATE, Action.DELETE})
_EMPTY = "(empty)"


@dataclass(slots=True)
class _Names:
    """Account names by id, built once per plan (Account's lookups are linear)."""

    fields: dict[int, str]
    groups: dict[int, str]

    @classmethod
    def of(cls, account: Account) -> _Names:
        return cls({f.id: f.name for f in account.fields}, {g.id: g.name for g in account.groups})

    def field(self, fid: int) -> str:
        return self.fields.get(fid) or f"field {fid}"

    def group(self, gid: int) -> str:
        return self.groups.get(gid) or f"list {gid}"


# --------------------------------------------------------------------------- plan


def plan_changes(desired: Sequence[Desired], known: Mapping[int, Known], *, account: Account,
                 create_missing: bool = False, keep_drift: bool = False) -> PlannedRows:
    """One PlannedRow per desired row, in order; only changed rows get text and a body."""
    with paused_gc():
        return _plan_fast(desired, known, _Names.of(account), create_missing, keep_drift)


@dataclass(frozen=True, slots=True)
class Replanner:
    """Plans one row again against the contact as BSG holds it right before the write.

    The executor calls it with the fresh read: the row may now be unchanged (someone made the
    same edit), or its changes and drift notes differ from the plan made at refresh time."""

    names: _Names
    written: Mapping[int, Contact]  # what this tool last wrote, by contact id
    keep_drift: bool = False

    @classmethod
    def of(cls, account: Account, known: Mapping[int, Known], *,
           keep_drift: bool = False) -> Replanner:
        return cls(_Names.of(account), KnownBook.of(known).written_by_id(), keep_drift)

    @classmethod
    def bare(cls) -> Replanner:
        """No account names and no memory of earlier writes (fields and lists shown by id)."""
        return cls(_Names({}, {}), {})

    def __call__(self, p: PlannedRow, fresh: Contact) -> PlannedRow:
        d = p.desired
        if d is None:
            raise ValueError(f"row {p.row}: a planned write without the row's wish")
        d = replace(d, contact_id=fresh.id)
        k = Known(fresh, self.written.get(fresh.id))
        return _plan_one(d, k, self.names, False, self.keep_drift)


def _unchanged(row: int, cid: int, c: Contact) -> PlannedRow:
    return PlannedRow(row, Action.NONE, Status.UNCHANGED, cid, c.phone,
                      hlr_status=c.hlr_status, hlr_last_check=c.hlr_last_check)


def _plan_one(d: Desired, k: Known | None, names: _Names, create_missing: bool,
              keep_drift: bool) -> PlannedRow:
    """One row planned the plain way: the re-planner's per-row plan at send time, and the test
    oracle that `_plan_fast` must equal on every input (tests/test_differ*.py compare them)."""
    if k is not None and _same(d, k.seen):
        return _unchanged(d.row, k.seen.id, k.seen)
    return _plan_row(d, k, names, create_missing, keep_drift)


def _same(d: Desired, seen: Contact) -> bool:
    """The cheap exact test; anything it rejects gets the careful, normalising comparison."""
    if d.phone is not None and d.phone != seen.phone:
        return False
    if any(seen.fields.get(fid, "") != value for fid, value in d.fields.items()):
        return False
    g = d.groups
    if g is None:
        return True
    return g <= seen.groups if d.groups_mode is GroupsMode.ADD else g == seen.groups


def _plan_fast(desired: Sequence[Desired], known: Mapping[int, Known], names: _Names,
               create_missing: bool, keep_drift: bool) -> PlannedRows:
    """_plan_one for a million rows: the sheet's columns (phones, lists, each mapped field)
    are compared with the book's in C, column by column, and only the rows where some column
    differs, and the rows whose contact is not in the book but that may be created, are planned
    by `_plan_row`; every other row is unchanged (its wish BSG already holds exactly) or not
    found, and only recorded (made again from the columns when read). Of the rows planned,
    only the writes are kept. Equivalence with the `_plan_one` oracle is property-tested."""
    rows = DesiredRows.of(desired)
    book = KnownBook.of(known)
    at = book.positions(rows.id_column())
    detailed: dict[int, PlannedRow] = {}
    for i in _rows_to_plan(rows, book, at, create_missing):
        p = at[i]
        k = None if p == MISSING else book.known_at(p)
        planned = _plan_row(rows[i], k, names, create_missing, keep_drift)
        if planned.action in _WRITES:
            detailed[i] = planned
    return PlannedRows(rows, book, at, detailed)


def _rows_to_plan(rows: DesiredRows, book: KnownBook, at: Sequence[int],
                  create_missing: bool) -> list[int]:
    """The rows that need `_plan_row`, in order: a known contact where a column differs from
    the sheet's wish, or no known contact where the row may be created. Only the rows with
    a known contact are compared (a sheet of new numbers compares nothing)."""
    if isinstance(at, range) or MISSING not in at:
        return sorted(_rows_that_differ(rows, book, at))
    present = list(compress(count(), map(ne, at, repeat(MISSING))))
    differ = _rows_that_differ(rows.select(present), book, [at[i] for i in present])
    plan = [present[k] for k in differ]
    if create_missing:
        phones = rows.phones()
        plan += [i for i in compress(count(), map(eq, at, repeat(MISSING)))
                 if phones[i] and rows.contact_id_at(i) is None]
    return sorted(plan)


def _rows_that_differ(rows: DesiredRows, book: KnownBook, at: Sequence[int]) -> set[int]:
    """The rows (each with a contact: no MISSING in `at`) where a column differs."""
    return _phones_differ(rows, book, at) | _groups_differ(rows, book, at) | _fields_differ(
        rows, book, at)


def _gathered(column: list[_T], at: Sequence[int]) -> Iterable[_T]:
    """The column's entry at each position (in order already when `at` is a range)."""
    return column if isinstance(at, range) else map(column.__getitem__, at)


def _phones_differ(rows: DesiredRows, book: KnownBook, at: Sequence[int]) -> set[int]:
    """Rows whose phone is given and is not the contact's."""
    phones = rows.phones()
    if not any(phones):
        return set()
    differ = compress(count(), map(ne, phones, _gathered(book.phones(), at)))
    return {i for i in differ if phones[i] is not None}


def _groups_differ(rows: DesiredRows, book: KnownBook, at: Sequence[int]) -> set[int]:
    """Rows whose lists are given and the contact is not in them (add), or not in exactly
    them (exact). Settled once per pair of distinct sets when that settles every row."""
    wanted, modes = rows.groups_column(), rows.modes()
    if wanted is None:
        return set()
    kinds = set(wanted)
    blank = None in kinds
    distinct = {w for w in kinds if w is not None}
    held = book.groups()
    if isinstance(modes, GroupsMode):
        if modes is GroupsMode.ADD:
            if all(w <= h for w in distinct for h in book.distinct_groups()):
                return set()  # every row's lists are already held by every contact
        elif not distinct or (len(distinct) == 1 and book.distinct_groups() <= distinct):
            return set()  # one set of lists, and every contact is in exactly those
        if not blank:  # every row gives its lists: compared in C
            test = cast(Callable[[frozenset[int] | None, frozenset[int]], bool],
                        le if modes is GroupsMode.ADD else eq)
            return set(compress(count(), map(not_, map(test, wanted, _gathered(held, at)))))
    differ = set()
    for i, (w, p) in enumerate(zip(wanted, at, strict=True)):
        if w is not None and not (
                w <= held[p] if rows.mode_at(i) is GroupsMode.ADD else w == held[p]):
            differ.add(i)
    return differ


def _fields_differ(rows: DesiredRows, book: KnownBook, at: Sequence[int]) -> set[int]:
    """Rows where a mapped field's cell is not the contact's value (an empty cell counts only
    where it clears the field; a field the contact lacks is ""). Column by column, in C:
    where runs of rows are runs of the sheet's rows and of the book's contacts, in the same
    order (load_known returns the book in the sheet's order), the column's text is compared
    with the book's run by run (_spans_differ), without a string per row; else each row's
    cell with its contact's value, gathered."""
    source = rows.sheet_fields()
    if source is None:
        return _fields_differ_by_row(rows, book, at)
    spans = _spans(source.index, at)
    differ: set[int] = set()
    for column, fid, clears in source.columns:
        held, texts = book.field(fid), source.sheet_column(column)
        if texts is not None and held.sparse is None and spans is not None:
            text, ends = texts
            found = _spans_differ(text, ends, held.text, held.ends, spans)
            if not clears:
                index = source.index
                found = [i for i in found if ends[index[i]] != (ends[index[i] - 1]
                                                                 if index[i] else 0)]
        else:
            cells = source.cells(column)
            found = _cells_differ(cells, held.values_at(at))
            if not clears:
                found = [i for i in found if cells[i]]
        differ.update(found)
    return differ


Span = tuple[int, int, int, int]  # rows i.., the sheet's rows s.., the book's p.., how many


def _spans(index: array[int], at: Sequence[int]) -> list[Span] | None:
    """The runs of rows whose sheet rows (`index`) and book positions (`at`) both go up one
    by one, found in C: a run is where index[i] - i and at[i] - i stay the same, and where
    each changes shows as a lane that is not zero in the xor of its array with itself one
    lane on. None when runs are too short to be worth it (a sheet in another order)."""
    n = len(index)
    if not n:
        return []
    if isinstance(at, range) and at.step == 1 and index[-1] == n - 1:
        return [(0, 0, at.start, n)]  # every sheet row (the index grows strictly)
    breaks = set(_changes(array("q", map(sub, index, count()))))
    breaks.update(_changes(array("q", map(sub, at, count()))))
    if len(breaks) * 8 > n:
        return None
    starts = [0, *sorted(breaks)]
    return [(a, index[a], at[a], b - a) for a, b in zip(starts, [*starts[1:], n], strict=True)]


def _changes(values: array[int]) -> list[int]:
    """The positions i > 0 where values[i] != values[i - 1]."""
    data, width = values.tobytes(), values.itemsize
    xor = int.from_bytes(data[width:], "little") ^ int.from_bytes(data[:-width], "little")
    return [i + 1 for i in _nonzero_lanes(xor, len(values) - 1, width)]


def _nonzero_lanes(value: int, lanes: int, width: int) -> list[int]:
    """The lanes (`width` bytes each, little-endian) of `value` that are not zero."""
    out: list[int] = []
    for run in _NONZERO.finditer(value.to_bytes(lanes * width, "little")):
        out.extend(range(run.start() // width, (run.end() - 1) // width + 1))
    return out


_NONZERO = re.compile(rb"[^\x00]+")


def _fields_differ_by_row(rows: DesiredRows, book: KnownBook, at: Sequence[int]) -> set[int]:
    """_fields_differ for rows whose fields are not the sheet's cells (Desired objects)."""
    differ: set[int] = set()
    held: dict[int, BookColumn] = {}
    for i, p in enumerate(at):
        if p == MISSING:
            continue
        for fid, value in rows.fields_at(i).items():
            column = held.get(fid)
            if column is None:
                column = held[fid] = book.field(fid)
            if column.at(p) != value:
                differ.add(i)
                break
    return differ


def _cells_differ(cells: list[str], held: list[str]) -> list[int]:
    return list(compress(count(), map(ne, cells, held)))


def _spans_differ(text: str, ends: array[int], held: str, held_ends: array[int],
                  spans: list[Span], few: int = 8) -> list[int]:
    """The rows where two columns differ, each given as its values end to end (`text`) and
    where each ends, compared span by span without cutting them into values: when every
    value has the same length in both and the texts are equal, none; else the rows whose
    lengths differ (the lanes of the xor of the spans' lengths, _lengths, laid end to end:
    a lane per row), and between them each run of rows compared as one slice, halved where
    it differs; when more than 1 row in `few` is resized, each value is cut out and compared
    instead (quicker then). `spans` cover the rows 0..n-1 in order."""
    whole = spans == [(0, 0, 0, len(ends))] and len(held_ends) == len(ends)
    if not spans or (whole and held_ends == ends and held == text):
        return []  # nothing, or the whole of both and equal
    if ends.itemsize != held_ends.itemsize:
        ends, held_ends = array("q", ends), array("q", held_ends)
    width = ends.itemsize
    mine = _lengths(ends).to_bytes(len(ends) * width, "little")
    theirs = _lengths(held_ends).to_bytes(len(held_ends) * width, "little")
    if not whole:
        mine = b"".join([mine[s * width:(s + n) * width] for _, s, _, n in spans])
        theirs = b"".join([theirs[p * width:(p + n) * width] for _, _, p, n in spans])
    rows = len(mine) // width
    resized = [] if mine == theirs else _nonzero_lanes(
        int.from_bytes(mine, "little") ^ int.from_bytes(theirs, "little"), rows, width)
    if len(resized) * few > rows:
        mine_cells = chain.from_iterable(cell_run(text, ends, s, n) for _, s, _, n in spans)
        held_cells = chain.from_iterable(cell_run(held, held_ends, p, n)
                                         for _, _, p, n in spans)
        return list(compress(count(), map(ne, mine_cells, held_cells)))
    out: list[int] = []
    cut = iter(resized)
    next_cut = next(cut, rows)
    for row, s, p, n in spans:
        start = 0
        while start < n:
            stop = min(next_cut - row, n)
            if start < stop:
                _halve(text, ends, s + start, held, held_ends, p + start, stop - start,
                       out, row - s)
            if stop < n:  # a resized row
                out.append(row + stop)
                next_cut = next(cut, rows)
            start = stop + 1
    return out


def _lengths(ends: array[int]) -> int:
    """The lengths of the values that end at `ends`, as one int with a lane per value: the
    array read as one little-endian int less itself shifted one lane (ends never fall, so
    no lane borrows)."""
    if sys.byteorder != "little":
        ends = array(ends.typecode, ends)
        ends.byteswap()
    whole = int.from_bytes(ends.tobytes(), "little")
    bits = ends.itemsize * 8
    return whole - ((whole << bits) & ((1 << (bits * len(ends))) - 1))


def _cut(text: str, ends: array[int], a: int, n: int) -> str:
    """Values a..a+n-1 (n > 0) end to end."""
    return text[(ends[a - 1] if a else 0):ends[a + n - 1]]


def _halve(text: str, ends: array[int], a: int, held: str, held_ends: array[int], p: int,
           n: int, out: list[int], shift: int) -> None:
    """Of values a..a+n-1 and held values p..p+n-1, of equal lengths one by one, the
    positions where they differ, plus `shift` (the row of value 0), appended in order."""
    if _cut(text, ends, a, n) == _cut(held, held_ends, p, n):
        return
    if n == 1:
        out.append(a + shift)
        return
    half = n // 2
    _halve(text, ends, a, held, held_ends, p, half, out, shift)
    _halve(text, ends, a + half, held, held_ends, p + half, n - half, out, shift)


_NO_DETACH: frozenset[int] = PlannedRow._field_defaults["detach"]
_new_tuple: Callable[[type[PlannedRow], tuple[object, ...]], PlannedRow] = tuple.__new__


class PlannedRows(MadeWhenRead[PlannedRow]):
    """One PlannedRow per desired row, in order. Only the writes are held as PlannedRow
    objects; an unchanged row is kept as its contact's position in the book it was planned
    against and a not-found row as its desired columns, each made into a PlannedRow only when
    read, so a million-row plan where 1% changes holds ten thousand objects, not a million.
    Its inputs are copied or immutable (DesiredRows, a KnownBook), so later edits do not show."""

    __slots__ = ("_book", "_detailed", "_rows", "_where")
    _item = "plan"

    def __init__(self, rows: DesiredRows, book: KnownBook, where: Sequence[int],
                 detailed: dict[int, PlannedRow]) -> None:
        self._rows, self._book, self._where, self._detailed = rows, book, where, detailed

    def detailed_rows(self) -> list[PlannedRow]:
        """The rows planned in full, in order: every write, and only writes."""
        return list(self._detailed.values())  # filled in row order

    def row_numbers(self) -> Sequence[int]:
        """Each row's spreadsheet row number, without making the rows."""
        return self._rows.row_numbers()

    def __len__(self) -> int:
        return len(self._rows)

    def _at(self, i: int) -> PlannedRow:
        p = self._detailed.get(i)
        if p is not None:
            return p
        rows = self._rows
        return self._recorded(rows.row_numbers()[i], rows.contact_id_at(i), rows.phones()[i],
                              self._where[i])

    def _recorded(self, row: int, cid: int | None, phone: str | None, p: int) -> PlannedRow:
        """The plan of a row that writes nothing: unchanged when its contact is known (the
        columns or `_plan_update` found nothing to change), else not found."""
        if p == MISSING:
            return _not_found(row, cid, phone)
        book = self._book
        hlr, checked = book.hlr()
        return PlannedRow(row, Action.NONE, Status.UNCHANGED, book.seen_ids()[p],
                          book.phones()[p], hlr_status=hlr[p], hlr_last_check=checked[p])

    def __iter__(self) -> Iterator[PlannedRow]:
        get = self._detailed.get
        rows, book = self._rows, self._book
        ids, phones = book.seen_ids(), book.phones()
        hlr, checked = book.hlr()
        none, unchanged, no_detach = Action.NONE, Status.UNCHANGED, _NO_DETACH
        for i, (row, cid, phone, p) in enumerate(zip(
                rows.row_numbers(), rows.contact_ids(), rows.phones(), self._where,
                strict=True)):
            planned = get(i)
            if planned is not None:
                yield planned
            elif p != MISSING:  # _recorded's unchanged row, made as a tuple (3x quicker)
                yield _new_tuple(PlannedRow, (row, none, unchanged, ids[p], phones[p], "", "",
                                              "", None, no_detach, hlr[p], checked[p], None))
            else:
                yield _not_found(row, cid, phone)

    def results(self) -> Iterator[RowResult]:
        """`map(result_from_plan, self)`, an unchanged row's result made without its
        PlannedRow (a dry run reads its results several times: journal, summary, report)."""
        get = self._detailed.get
        rows, book = self._rows, self._book
        ids, phones = book.seen_ids(), book.phones()
        hlr, checked = book.hlr()
        none, unchanged = Action.NONE, Status.UNCHANGED
        for i, (row, cid, phone, p) in enumerate(zip(
                rows.row_numbers(), rows.contact_ids(), rows.phones(), self._where,
                strict=True)):
            planned = get(i)
            if planned is not None:
                yield result_from_plan(planned)
            elif p != MISSING:
                yield RowResult(row, ids[p], phones[p], none, unchanged, "", "", "", 0, None,
                                hlr[p], checked[p])
            else:
                yield result_from_plan(_not_found(row, cid, phone))

    def __repr__(self) -> str:
        return f"PlannedRows({len(self._rows)} rows, {len(self._detailed)} planned in full)"


def _plan_row(d: Desired, k: Known | None, names: _Names, create_missing: bool,
              keep_drift: bool) -> PlannedRow:
    if d.contact_id is None:
        if create_missing and d.phone:
            return _plan_create(d, names)
        return _not_found(d.row, None, d.phone)
    if k is None:
        return _not_found(d.row, d.contact_id, d.phone)
    return _plan_update(d, k, names, keep_drift)


def _not_found(row: int, cid: int | None, phone: str | None) -> PlannedRow:
    if cid is not None:
        message = f"Contact {cid} does not exist in BSG"
    elif phone:
        message = f"No contact with phone {phone} in BSG; use --create-missing to create it"
    else:
        message = "The row gives neither a contact id nor a phone, so no contact can be found"
    return PlannedRow(row, Action.SKIP, Status.NOT_FOUND, cid, phone,
                      error_code=ErrorCode.NOT_FOUND, error=message)


def _plan_create(d: Desired, names: _Names) -> PlannedRow:
    phone = _digits(d.phone or "")
    fields = {fid: v for fid, v in d.fields.items() if v}
    groups = frozenset(d.groups or ())
    parts = [f"{names.field(fid)}: {v}" for fid, v in fields.items()]
    parts += [f"+list {names.group(g)}" for g in _by_name(groups, names)]
    target = Contact(0, phone, fields, groups)  # id 0: BSG assigns it
    return PlannedRow(d.row, Action.CREATE, Status.PLANNED, None, phone,
                      changes="; ".join(["new contact", *parts]), target=target, desired=d)


# --------------------------------------------------------------------------- update


@dataclass(slots=True)
class _Outcome:
    """Where the contact ends up, and the text of each change on the way."""

    phone: str
    fields: dict[int, str]
    added: set[int]
    removed: set[int]
    texts: list[str]


def _plan_update(d: Desired, k: Known, names: _Names, keep_drift: bool) -> PlannedRow:
    seen = k.seen
    o = _Outcome(_digits(seen.phone), {fid: v or "" for fid, v in seen.fields.items()},
                 set(), set(), [])
    _diff_fields(d, k, names, keep_drift, o)
    _diff_phone(d, k, keep_drift, o)
    _diff_groups(d, k, names, keep_drift, o)
    if not o.texts:
        return _unchanged(d.row, seen.id, seen)
    groups = (frozenset(seen.groups) - o.removed) | o.added
    target = Contact(seen.id, o.phone, {f: v for f, v in o.fields.items() if v}, groups,
                     seen.hlr_status, seen.hlr_last_check)
    return PlannedRow(d.row, Action.UPDATE, Status.PLANNED, seen.id, o.phone,
                      changes="; ".join(o.texts), target=target, detach=frozenset(o.removed),
                      hlr_status=seen.hlr_status, hlr_last_check=seen.hlr_last_check, desired=d)


def _diff_fields(d: Desired, k: Known, names: _Names, keep_drift: bool, o: _Outcome) -> None:
    w = k.written
    for fid, want in d.fields.items():
        want = want or ""
        have = o.fields.get(fid, "")
        if want == have:
            continue
        was = (w.fields.get(fid) or "") if w is not None else have
        if was != have and keep_drift:
            continue
        o.fields[fid] = want
        text = f"{names.field(fid)}: {have or _EMPTY} → {want or _EMPTY}"
        o.texts.append(text + (f" ({_DRIFT}: was {was or _EMPTY})" if was != have else ""))


def _diff_phone(d: Desired, k: Known, keep_drift: bool, o: _Outcome) -> None:
    if d.phone is None:
        return
    want, have = _digits(d.phone), o.phone
    if not want or want == have:
        return
    was = _digits(k.written.phone) if k.written is not None else have
    if was != have and keep_drift:
        return
    o.phone = want
    o.texts.append(f"phone: {have} → {want}" + (f" ({_DRIFT}: was {was})" if was != have else ""))


def _diff_groups(d: Desired, k: Known, names: _Names, keep_drift: bool, o: _Outcome) -> None:
    if d.groups is None:
        return
    seen, written = k.seen.groups, (k.written.groups if k.written is not None else None)
    for g in _by_name(d.groups - seen, names):
        drift = written is not None and g in written  # we had put it there; BSG took it out
        if not (drift and keep_drift):
            o.added.add(g)
            note = " (removed in BSG since last sync)" if drift else ""
            o.texts.append(f"+list {names.group(g)}{note}")
    if d.groups_mode is not GroupsMode.EXACT:
        return
    for g in _by_name(seen - d.groups, names):
        drift = written is not None and g not in written  # added in BSG after our write
        if not (drift and keep_drift):
            o.removed.add(g)
            note = " (added in BSG since last sync)" if drift else ""
            o.texts.append(f"−list {names.group(g)}{note}")


# --------------------------------------------------------------------------- helpers


def _digits(phone: str) -> str:
    if phone.isascii() and phone.isdigit():  # the usual case, without a loop in Python
        return phone
    return "".join(ch for ch in phone if "0" <= ch <= "9")


def _by_name(groups: frozenset[int] | set[int], names: _Names) -> list[int]:
    return sorted(groups, key=lambda g: (names.group(g).casefold(), g))


# --------------------------------------------------------------------------- limits


def count_changes(plan: Sequence[PlannedRow]) -> int:
    """Rows the plan writes (updates, creates and deletes)."""
    rows = plan.detailed_rows() if isinstance(plan, PlannedRows) else plan
    return sum(1 for p in rows if p.action in _WRITES)


def max_changes_exceeded(plan: Sequence[PlannedRow], threshold: Threshold,
                         total: int | None = None) -> bool:
    """More rows change than `threshold` allows, a percentage being of `total` rows."""
    return threshold.exceeded(count_changes(plan), len(plan) if total is None else total)


def check_max_changes(plan: Sequence[PlannedRow], threshold: Threshold | None,
                      total: int | None = None) -> None:
    """Raise TooManyChanges when the plan writes more rows than --max-changes allows;
    a percentage is of `total` rows (the whole sheet; default: the plan's rows)."""
    rows = len(plan) if total is None else total
    if threshold is None or not max_changes_exceeded(plan, threshold, rows):
        return
    raise TooManyChanges(
        f"the plan changes {count_changes(plan)} of {rows} rows, more than "
        f"--max-changes {threshold}; check that this is the right sheet, or raise the limit")
