"""Plain, frozen data shared by the stages: sheet rows, mapping, contacts, plan, results."""

from __future__ import annotations

import collections
import gc
import heapq
import itertools
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from operator import attrgetter, itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple, Protocol, TypeVar, overload

# Sending defaults: BSG publishes no rate limit, so start gently (README: "Speed and the API's limits").
DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_RPS = 10.0


class Action(str, Enum):
    """What the plan does with a row (report column `action`)."""

    UPDATE = "update"
    CREATE = "create"
    DELETE = "delete"  # undo --delete-created: a contact the undone run created
    NONE = "none"
    SKIP = "skip"


class Status(str, Enum):
    """A row's outcome (report column `status`)."""

    OK = "ok"
    UNCHANGED = "unchanged"
    PLANNED = "planned"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    NOT_SENT = "not_sent"
    SKIPPED = "skipped"  # undo: left alone, BSG no longer holds what the run wrote


class Blank(str, Enum):
    """What an empty cell means for a mapped column."""

    KEEP = "keep"
    CLEAR = "clear"


class GroupsMode(str, Enum):
    """`add` only adds lists; `exact` also removes the contact from lists not named."""

    ADD = "add"
    EXACT = "exact"


class TargetKind(str, Enum):
    ID = "id"
    PHONE = "phone"
    GROUPS = "groups"
    FIELD = "field"


# --------------------------------------------------------------------------- sheet


class CellProblem(NamedTuple):
    """A cell whose text must not be sent: an error cell (`#N/A`), a control character, ...

    The reader notes it; the row is `invalid` only when the cell's column is mapped."""

    column: int  # index into Sheet.headers
    code: str  # the row's error_code: `cell-error`, `control-character`
    detail: str  # what the cell holds, for the sentence ("#N/A", "U+202E")


class SheetRow(NamedTuple):
    """One non-blank data row: its spreadsheet row number and the text of each cell.

    A NamedTuple, not a dataclass: a read makes one per row (a million for Excel's full
    size), and a tuple is made in a third of the time and holds no per-instance dict."""

    row: int
    values: tuple[str, ...]  # aligned with Sheet.headers; "" for an empty cell
    problems: tuple[CellProblem, ...] = ()


_T = TypeVar("_T")


class MadeWhenRead(Sequence[_T]):
    """A sequence whose items are made when read: a subclass gives `__len__` and `_at(i)` (for
    0 <= i < len); indexing, negative indexes, slices and equality with any sequence of the
    same items are done here once for all of them (unhashable, as a list)."""

    __slots__ = ()
    _item = "row"  # what an item is, for the IndexError

    def _at(self, i: int) -> _T:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> _T: ...
    @overload
    def __getitem__(self, index: slice) -> list[_T]: ...

    def __getitem__(self, index: int | slice) -> _T | list[_T]:
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(len(self)))]
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"{self._item} index out of range")
        return self._at(i)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return _same_items(self, other)

    __hash__ = None  # type: ignore[assignment]


class CompactRows(MadeWhenRead[SheetRow]):
    """Many rows held as one string per column (its cells end to end) and their end offsets.

    A million-row x 12-column sheet as SheetRows is 12 M str objects (~60 bytes each) and a
    million tuples, about 1 GB; held so it is the text itself plus 4-8 bytes a cell. A row
    is made when it is read (iterating makes each row once). Built by `CompactBuilder`."""

    __slots__ = ("_columns", "_ends", "_numbers", "_problems")

    def __init__(self, numbers: array[int], columns: list[str], ends: list[array[int]],
                 problems: dict[int, tuple[CellProblem, ...]]) -> None:
        self._numbers, self._columns, self._ends, self._problems = numbers, columns, ends, problems

    def __len__(self) -> int:
        return len(self._numbers)

    def _at(self, i: int) -> SheetRow:
        values = tuple(col[(ends[i - 1] if i else 0) : ends[i]]
                       for col, ends in zip(self._columns, self._ends, strict=True))
        return SheetRow(self._numbers[i], values, self._problems.get(i, ()))

    def __iter__(self) -> Iterator[SheetRow]:
        columns = [_cells(col, ends) for col, ends in zip(self._columns, self._ends, strict=True)]
        problems = self._problems
        rows = zip(*columns, strict=True) if columns else itertools.repeat((), len(self))
        for i, (number, values) in enumerate(zip(self._numbers, rows, strict=True)):
            yield SheetRow(number, values, problems[i]) if i in problems else SheetRow(number, values)

    def cell(self, index: int, column: int) -> str:
        """One cell's text (row `index`, 0-based, of this sequence) without making the row."""
        ends = self._ends[column]
        return self._columns[column][(ends[index - 1] if index else 0) : ends[index]]

    def parts(self) -> tuple[array[int], list[str], list[array[int]], dict[int, tuple[CellProblem, ...]]]:
        """What it is made of (isolate sends these across the pipe as they are)."""
        return self._numbers, self._columns, self._ends, self._problems


def _cells(col: str, ends: array[int]) -> Iterator[str]:
    """A column's cells, one slice each."""
    start = 0
    for end in ends:
        yield col[start:end]
        start = end


def cell_run(text: str, ends: array[int], a: int = 0, n: int | None = None) -> list[str]:
    """Cells a..a+n-1 (to the last, without `n`) of a column held as its cells end to end
    (`text`) and where each ends, cut out in C."""
    stops = ends[a:] if n is None else ends[a:a + n]
    return list(map(text.__getitem__, map(slice, itertools.chain(
        (ends[a - 1] if a else 0,), stops), stops)))


def cells_at(text: str, ends: array[int], positions: Sequence[int]) -> list[str]:
    """The cells at these positions of such a column, cut out in C (position -1 reads "")."""
    starts = array(ends.typecode, bytes(ends.itemsize)) + ends  # starts[j]: cell j's start
    return list(map(text.__getitem__, map(slice, map(starts.__getitem__, positions),
                                          map(ends.__getitem__, positions))))


class CompactBuilder:
    """Collects rows (padded to the widest) into CompactRows, FLUSH rows at a time."""

    FLUSH = 8192

    def __init__(self) -> None:
        self._numbers = array("q")
        self._done: list[list[str]] = []  # per column: joined chunks
        self._ends: list[array[int]] = []
        self._length: list[int] = []
        self._pending: list[list[str]] = []
        self._problems: dict[int, tuple[CellProblem, ...]] = {}

    def add(self, number: int, cells: Sequence[str], problems: tuple[CellProblem, ...] = ()) -> None:
        while len(self._pending) < len(cells):
            self._new_column()
        if problems:
            self._problems[len(self._numbers)] = problems
        self._numbers.append(number)
        pending = self._pending
        for i, cell in enumerate(cells):
            pending[i].append(cell)
        for i in range(len(cells), len(pending)):
            pending[i].append("")
        if pending and len(pending[0]) >= self.FLUSH:
            self._flush()

    @property
    def width(self) -> int:
        return len(self._pending)

    def widen(self, width: int) -> None:
        """At least this many columns (a header wider than every row)."""
        while len(self._pending) < width:
            self._new_column()

    def _new_column(self) -> None:
        """A column first filled by a wider row: the rows before it hold an empty cell there."""
        waiting = len(self._pending[0]) if self._pending else 0
        self._done.append([])
        self._ends.append(array("q", bytes(8 * (len(self._numbers) - waiting))))
        self._length.append(0)
        self._pending.append([""] * waiting)

    def _flush(self) -> None:
        for i, cells in enumerate(self._pending):
            if not cells:
                continue
            ends = self._ends[i]
            total = self._length[i]
            for n in map(len, cells):
                total += n
                ends.append(total)
            self._length[i] = total
            self._done[i].append("".join(cells))
            cells.clear()

    def build(self) -> CompactRows:
        self._flush()
        columns = []
        for chunks in self._done:
            columns.append("".join(chunks))
            chunks.clear()
        ends = [_narrow(e) for e in self._ends]
        return CompactRows(self._numbers, columns, ends, self._problems)


def _narrow(ends: array[int]) -> array[int]:
    """4-byte offsets when the column's text allows (it nearly always does)."""
    return array("I", ends) if not ends or ends[-1] < 1 << 32 else ends


@dataclass(frozen=True, slots=True)
class Sheet:
    """A spreadsheet read as a person sees it."""

    path: Path
    headers: tuple[str, ...]
    rows: Sequence[SheetRow]  # a list, or CompactRows for a large sheet (reader.COMPACT_FROM)
    sha256: str
    sheet_name: str | None = None  # workbook tab, None for CSV
    encoding: str | None = None  # CSV only
    delimiter: str | None = None  # CSV only
    header_row: int = 1  # spreadsheet row number of the header


# --------------------------------------------------------------------------- account


@dataclass(frozen=True, slots=True)
class Field:
    """A custom contact field of the account."""

    id: int
    name: str
    type: str = "text"


@dataclass(frozen=True, slots=True)
class Group:
    """A contact list ("group") of the account."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Account:
    """The account's custom fields and lists, used to resolve names and render changes."""

    fields: tuple[Field, ...] = ()
    groups: tuple[Group, ...] = ()

    def field_name(self, field_id: int) -> str:
        for f in self.fields:
            if f.id == field_id:
                return f.name
        return f"field {field_id}"

    def group_name(self, group_id: int) -> str:
        for g in self.groups:
            if g.id == group_id:
                return g.name
        return f"list {group_id}"


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True, slots=True)
class ColumnTarget:
    """One mapped spreadsheet column."""

    header: str
    kind: TargetKind
    field_id: int | None = None  # kind == FIELD, after resolution
    blank: Blank = Blank.KEEP


@dataclass(frozen=True, slots=True)
class MappingOptions:
    default_country: str | None = None
    blank: Blank = Blank.KEEP
    groups: GroupsMode = GroupsMode.ADD
    header_row: int | None = None


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """A validated mapping file with every field name resolved to an id."""

    columns: tuple[ColumnTarget, ...]
    options: MappingOptions = field(default_factory=MappingOptions)
    source: Path | None = None


# --------------------------------------------------------------------------- contacts


@dataclass(frozen=True, slots=True)
class Desired:
    """What one spreadsheet row wants the contact to be (only mapped targets)."""

    row: int
    contact_id: int | None
    phone: str | None  # normalised digits, None when the phone column is unmapped/blank
    fields: AbcMapping[int, str]  # field id -> value; "" means clear the value
    groups: frozenset[int] | None  # None: groups unmapped, or blank cell kept
    groups_mode: GroupsMode = GroupsMode.ADD


#: the fields of a row that sets none (every row of an id- or phone-only mapping): one shared,
#: immutable mapping instead of an empty dict per row
EMPTY_FIELDS: AbcMapping[int, str] = MappingProxyType({})


class FieldColumn(NamedTuple):
    """A sheet column mapped to a custom field."""

    column: int  # the column's position in the sheet's rows (0 = the first column)
    field_id: int
    clears: bool  # an empty cell clears the field


class _FieldSource(Protocol):
    """Where DesiredRows finds each row's fields (by position)."""

    def __len__(self) -> int: ...
    def at(self, i: int) -> AbcMapping[int, str]: ...
    def select(self, keep: Sequence[int]) -> _FieldSource: ...


class SheetFields:
    """Each desired row's fields read from the sheet's own cells when asked for, so a mapped
    sheet holds no dict (nor copy of a cell) per row: `index` is each row's position in
    `rows`, `columns` the mapped field columns."""

    __slots__ = ("_columns", "_compact", "_index", "_rows")

    def __init__(self, rows: Sequence[SheetRow], index: array[int],
                 columns: tuple[FieldColumn, ...]) -> None:
        self._rows, self._index, self._columns = rows, index, columns
        # CompactRows: each field column's text, cell ends, field id and blank rule
        self._compact: list[tuple[str, array[int], int, bool]] | None = None
        if isinstance(rows, CompactRows):
            _, texts, ends, _ = rows.parts()
            self._compact = [(texts[c], ends[c], fid, clears) for c, fid, clears in columns]

    def __len__(self) -> int:
        return len(self._index)

    def at(self, i: int) -> AbcMapping[int, str]:
        if not self._columns:
            return EMPTY_FIELDS
        j = self._index[i]
        fields: dict[int, str] = {}
        if self._compact is not None:
            for text, ends, fid, clears in self._compact:
                value = text[(ends[j - 1] if j else 0):ends[j]]
                if value or clears:
                    fields[fid] = value
        else:
            values = self._rows[j].values
            for c, fid, clears in self._columns:
                value = values[c]
                if value or clears:
                    fields[fid] = value
        return fields or EMPTY_FIELDS

    def select(self, keep: Sequence[int]) -> SheetFields:
        return SheetFields(self._rows, array("q", map(self._index.__getitem__, keep)),
                           self._columns)

    @property
    def columns(self) -> tuple[FieldColumn, ...]:
        return self._columns

    @property
    def index(self) -> array[int]:
        """Each desired row's position in the sheet's rows (growing strictly)."""
        return self._index

    def sheet_column(self, column: int) -> tuple[str, array[int]] | None:
        """The sheet column's text and cell ends (CompactRows: the whole column, every sheet
        row; `index` says which cell is which desired row's), else None."""
        rows = self._rows
        if not isinstance(rows, CompactRows):
            return None
        _, texts, ends, _ = rows.parts()
        return texts[column], ends[column]

    def cells(self, column: int) -> list[str]:
        """The cell of sheet column `column` in each desired row, made in C."""
        rows, index = self._rows, self._index
        if isinstance(rows, CompactRows):
            _, texts, ends, _ = rows.parts()
            if len(index) == len(rows):
                return cell_run(texts[column], ends[column])
            return cells_at(texts[column], ends[column], index)
        values = map(attrgetter("values"), map(rows.__getitem__, index))
        return list(map(itemgetter(column), values))


class ListFields:
    """Each desired row's fields as given (rows that were Desired objects already)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: list[AbcMapping[int, str]]) -> None:
        self._fields = fields

    def __len__(self) -> int:
        return len(self._fields)

    def at(self, i: int) -> AbcMapping[int, str]:
        return self._fields[i]

    def select(self, keep: Sequence[int]) -> ListFields:
        return ListFields(list(map(self._fields.__getitem__, keep)))


_NO_ID = -(1 << 63)  # in DesiredRows' id column: the row names no contact id


class DesiredRows(MadeWhenRead[Desired]):
    """Desired contacts held column-wise: row numbers, contact ids, phones and lists, with the
    fields read from the sheet when a row is made (SheetFields). A million-row sheet mapped
    to Desired objects is a million objects and dicts (~600 bytes a row); held so it is the
    phone's text and ~30 bytes. A Desired is made when a row is read; it is immutable, so the
    methods that resolve ids or drop rows return a new one sharing what did not change."""

    __slots__ = ("_fields", "_groups", "_ids", "_modes", "_phones", "_rows")
    _item = "desired row"

    def __init__(self, rows: array[int], ids: array[int], phones: list[str | None],
                 fields: _FieldSource, groups: list[frozenset[int] | None] | None,
                 modes: GroupsMode | list[GroupsMode]) -> None:
        if not len(rows) == len(ids) == len(phones) == len(fields):
            raise ValueError("the columns of DesiredRows must have one entry per row")
        self._rows, self._ids, self._phones, self._fields = rows, ids, phones, fields
        self._groups, self._modes = groups, modes

    @classmethod
    def of(cls, desired: Iterable[Desired]) -> DesiredRows:
        """The rows as DesiredRows (the same object when they are already)."""
        if isinstance(desired, DesiredRows):
            return desired
        items = list(desired)
        modes = [d.groups_mode for d in items]
        one_mode = len(set(modes)) <= 1
        groups = [d.groups for d in items]
        return cls(array("q", [d.row for d in items]),
                   array("q", [_NO_ID if d.contact_id is None else d.contact_id for d in items]),
                   [d.phone for d in items], ListFields([d.fields for d in items]),
                   groups if any(g is not None for g in groups) else None,
                   (modes[0] if modes else GroupsMode.ADD) if one_mode else modes)

    def __len__(self) -> int:
        return len(self._rows)

    def _at(self, i: int) -> Desired:
        cid = self._ids[i]
        return Desired(self._rows[i], None if cid == _NO_ID else cid, self._phones[i],
                       self._fields.at(i), self.groups_at(i), self.mode_at(i))

    def __iter__(self) -> Iterator[Desired]:
        return map(self._at, range(len(self)))

    def __repr__(self) -> str:
        return f"DesiredRows({len(self)} rows)"

    # the columns, read without making Desired objects

    def row_numbers(self) -> Sequence[int]:
        return self._rows

    def contact_ids(self) -> Iterator[int | None]:
        return (None if cid == _NO_ID else cid for cid in self._ids)

    def contact_id_at(self, i: int) -> int | None:
        cid = self._ids[i]
        return None if cid == _NO_ID else cid

    def phones(self) -> Sequence[str | None]:
        return self._phones

    def fields_at(self, i: int) -> AbcMapping[int, str]:
        return self._fields.at(i)

    def sheet_fields(self) -> SheetFields | None:
        """Where the fields are read from, when it is the sheet's cells (mapping's rows)."""
        fields = self._fields
        return fields if isinstance(fields, SheetFields) else None

    def id_column(self) -> array[int]:
        """Each row's contact id; a row without one holds a number no contact has."""
        return self._ids

    def groups_column(self) -> list[frozenset[int] | None] | None:
        """Each row's lists (None: the sheet maps no lists)."""
        return self._groups

    def modes(self) -> GroupsMode | list[GroupsMode]:
        """The rows' one groups mode, or each row's."""
        return self._modes

    def groups_at(self, i: int) -> frozenset[int] | None:
        return None if self._groups is None else self._groups[i]

    def mode_at(self, i: int) -> GroupsMode:
        modes = self._modes
        return modes if isinstance(modes, GroupsMode) else modes[i]

    # new rows from these

    def with_ids(self, by_phone: AbcMapping[str, int]) -> DesiredRows:
        """The rows with no contact id given the id of their phone in `by_phone`, if any."""
        ids = array("q", self._ids)
        found = 0
        for i, (cid, phone) in enumerate(zip(self._ids, self._phones, strict=True)):
            if cid == _NO_ID and phone and phone in by_phone:
                ids[i] = by_phone[phone]
                found += 1
        if not found:
            return self
        return DesiredRows(self._rows, ids, self._phones, self._fields, self._groups,
                           self._modes)

    def select(self, keep: Sequence[int]) -> DesiredRows:
        """Only the rows at these positions, in the order given."""
        groups, modes = self._groups, self._modes
        return DesiredRows(
            array("q", map(self._rows.__getitem__, keep)),
            array("q", map(self._ids.__getitem__, keep)),
            list(map(self._phones.__getitem__, keep)), self._fields.select(keep),
            None if groups is None else list(map(groups.__getitem__, keep)),
            modes if isinstance(modes, GroupsMode) else list(map(modes.__getitem__, keep)))


class DesiredBuilder:
    """Collects the desired rows of a sheet as DesiredRows, one column at a time."""

    def __init__(self, sheet_rows: Sequence[SheetRow], fields: tuple[FieldColumn, ...],
                 mode: GroupsMode, with_groups: bool) -> None:
        self._sheet_rows, self._field_columns, self._mode = sheet_rows, fields, mode
        self._index = array("q")
        self._rows = array("q")
        self._ids = array("q")
        self._phones: list[str | None] = []
        self._groups: list[frozenset[int] | None] | None = [] if with_groups else None

    def add(self, position: int, row: int, contact_id: int | None, phone: str | None,
            groups: frozenset[int] | None) -> None:
        """The row at `position` of the sheet's rows (spreadsheet row `row`)."""
        self._index.append(position)
        self._rows.append(row)
        self._ids.append(_NO_ID if contact_id is None else contact_id)
        self._phones.append(phone)
        if self._groups is not None:
            self._groups.append(groups)

    def build(self) -> DesiredRows:
        fields = SheetFields(self._sheet_rows, self._index, self._field_columns)
        return DesiredRows(self._rows, self._ids, self._phones, fields, self._groups, self._mode)


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact as BSG holds it, normalised (fields by int id, groups as ids, phone digits)."""

    id: int
    phone: str
    fields: AbcMapping[int, str]
    groups: frozenset[int]
    hlr_status: str | None = None
    hlr_last_check: str | None = None


@dataclass(frozen=True, slots=True)
class Known:
    """What the state store knows of a contact: last seen in BSG, and last written by us."""

    seen: Contact
    written: Contact | None = None


MISSING = -1  # KnownBook.positions: the row's contact is not in the book


class BookColumn:
    """One custom field's values in a KnownBook, by position: held as one text (the values
    end to end, "" where a contact lacks the field) and its value ends, like a CompactRows
    column, when enough contacts hold it; else as a dict of the positions that hold it."""

    __slots__ = ("ends", "sparse", "text")

    def __init__(self, text: str, ends: array[int], sparse: dict[int, str] | None) -> None:
        self.text, self.ends, self.sparse = text, ends, sparse

    @classmethod
    def of(cls, size: int, positions: list[int], values: list[str]) -> BookColumn:
        """The column of a book of `size` contacts where `positions` hold `values`."""
        if len(positions) * 8 < size:
            return cls("", array("I"), dict(zip(positions, values, strict=True)))
        full = [""] * size
        collections.deque(map(full.__setitem__, positions, values), maxlen=0)
        lengths = itertools.accumulate(map(len, full))
        try:
            ends = array("I", lengths)
        except OverflowError:
            ends = array("q", itertools.accumulate(map(len, full)))
        return cls("".join(full), ends, None)

    def at(self, p: int) -> str:
        """The value at position p ("" when that contact lacks the field)."""
        if self.sparse is not None:
            return self.sparse.get(p, "")
        ends = self.ends
        return self.text[(ends[p - 1] if p else 0):ends[p]]

    def values_at(self, positions: Sequence[int]) -> list[str]:
        """The value at each position, made in C (at MISSING: anything)."""
        if self.sparse is not None:
            return list(map(self.sparse.get, positions, itertools.repeat("")))
        return cells_at(self.text, self.ends, positions)


_NO_COLUMN = BookColumn("", array("I"), {})


class KnownBook(AbcMapping[int, Known]):
    """What the state store knows of many contacts, held column-wise: a Known is made when it
    is read (`book[cid]`), so a million-contact snapshot is not a million Known, Contact and
    fields dicts (each field is one BookColumn). The differ compares a sheet's columns with
    these in C (phones, lists, each mapped field's values by position) and reads whole Known
    objects only for the rows that may change. Immutable; `KnownBook.of` turns any mapping of
    Known into one.

    Lists by position (0..n-1, the order contacts were added), each with one extra, empty
    entry at the end, so that position MISSING (-1) reads as "no contact"."""

    __slots__ = ("_at", "_checked", "_distinct_groups", "_field_ids", "_fields", "_groups",
                 "_hlr", "_id_array", "_ids", "_made", "_phones", "_seen_ids", "_written")

    def __init__(self, builder: KnownBuilder) -> None:
        b = builder
        self._ids, self._seen_ids, self._phones = b.ids, b.seen_ids, b.phones
        self._field_ids, self._groups = b.field_ids, b.groups
        self._hlr, self._checked, self._written, self._made = b.hlr, b.checked, b.written, b.made
        size = len(b.ids)
        self._fields = {fid: BookColumn.of(size, *held) for fid, held in b.fields.items()}
        self._at: dict[int, int] = dict(zip(b.ids, itertools.count()))
        self._id_array = array("q", b.ids)
        self._distinct_groups = frozenset(b.groups)
        self._seen_ids.append(0)
        self._phones.append("")
        self._field_ids.append(())
        self._groups.append(frozenset())
        self._hlr.append(None)
        self._checked.append(None)

    @classmethod
    def of(cls, known: AbcMapping[int, Known]) -> KnownBook:
        """The contacts as a KnownBook (the same object when they are one already)."""
        if isinstance(known, KnownBook):
            return known
        builder = KnownBuilder(keep=True)
        for cid, k in known.items():
            builder.add_known(cid, k)
        return builder.build()

    # Mapping

    def __getitem__(self, cid: int) -> Known:
        p = self._at.get(cid)
        if p is None:
            raise KeyError(cid)
        return self.known_at(p)

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, cid: object) -> bool:
        return cid in self._at

    def __repr__(self) -> str:
        return f"KnownBook({len(self)} contacts)"

    # columns, for the differ and the plan

    def known_at(self, p: int) -> Known:
        """The Known at position `p` (0 <= p < len)."""
        if self._made is not None:
            return self._made[p]
        fields = self._fields
        seen = Contact(self._seen_ids[p], self._phones[p],
                       {fid: fields[fid].at(p) for fid in self._field_ids[p]}, self._groups[p],
                       self._hlr[p], self._checked[p])
        return Known(seen, self._written.get(p))

    def positions(self, ids: array[int]) -> Sequence[int]:
        """Each id's position in the book, MISSING where it holds no such contact: a range
        when the ids are the book's own, in its order (a sheet in the snapshot's order)."""
        if ids == self._id_array:
            return range(len(ids))
        return list(map(self._at.get, ids, itertools.repeat(MISSING)))

    def seen_ids(self) -> list[int]:
        """The seen contact's id at each position (MISSING's entry: 0)."""
        return self._seen_ids

    def phones(self) -> list[str]:
        """The seen phone at each position (MISSING's entry: "")."""
        return self._phones

    def groups(self) -> list[frozenset[int]]:
        """The seen lists at each position (MISSING's entry: none)."""
        return self._groups

    def distinct_groups(self) -> frozenset[frozenset[int]]:
        """Every set of lists some contact of the book is in."""
        return self._distinct_groups

    def hlr(self) -> tuple[list[str | None], list[str | None]]:
        """The HLR status and last check at each position."""
        return self._hlr, self._checked

    def field(self, fid: int) -> BookColumn:
        """One field's values by position ("" where a contact lacks it)."""
        return self._fields.get(fid, _NO_COLUMN)

    def written_by_id(self) -> dict[int, Contact]:
        """What this tool last wrote, by contact id, for the contacts it wrote."""
        if self._made is not None:
            return {cid: k.written for cid, k in zip(self._ids, self._made, strict=True)
                    if k.written is not None}
        ids = self._ids
        return {ids[p]: c for p, c in self._written.items()}

    def phones_by_id(self) -> dict[int, str]:
        """The seen phone of each contact, by id."""
        return dict(zip(self._ids, self._phones, strict=False))  # the extra phone: no id


class KnownBuilder:
    """Collects contacts into a KnownBook, one at a time (`add`, or `add_known` with keep)."""

    def __init__(self, *, keep: bool = False) -> None:
        self.ids: list[int] = []
        self.seen_ids: list[int] = []
        self.phones: list[str] = []
        self.field_ids: list[tuple[int, ...]] = []  # each contact's field ids, in its order
        self.fields: dict[int, tuple[list[int], list[str]]] = {}  # id -> positions, values
        self.groups: list[frozenset[int]] = []
        self.hlr: list[str | None] = []
        self.checked: list[str | None] = []
        self.written: dict[int, Contact] = {}  # by position
        self.made: list[Known] | None = [] if keep else None  # keep: add_known's objects
        self._shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._built = False

    def add(self, cid: int, phone: str, field_ids: tuple[int, ...], values: Iterable[str],
            groups: frozenset[int], hlr: str | None, checked: str | None,
            written: Contact | None) -> None:
        """One contact: `values` in the order of `field_ids` (a repeated id: the last wins)."""
        p = len(self.ids)
        self.ids.append(cid)
        self.seen_ids.append(cid)
        self.phones.append(phone)
        keys = self._shared.setdefault(field_ids, field_ids)
        self.field_ids.append(keys)
        fields = self.fields
        for fid, value in zip(keys, values, strict=True):
            held = fields.get(fid)
            if held is None:
                held = fields[fid] = ([], [])
            if held[0] and held[0][-1] == p:  # the same id twice in one contact
                held[1][-1] = value
            else:
                held[0].append(p)
                held[1].append(value)
        self.groups.append(groups)
        self.hlr.append(hlr)
        self.checked.append(checked)
        if written is not None:
            self.written[p] = written

    def add_known(self, cid: int, k: Known) -> None:
        """A Known under `cid`, kept itself: the book gives back this very object."""
        if self.made is None:
            raise ValueError("add_known needs a KnownBuilder(keep=True)")
        seen = k.seen
        self.add(cid, seen.phone, tuple(seen.fields), seen.fields.values(), seen.groups,
                 seen.hlr_status, seen.hlr_last_check, k.written)
        self.seen_ids[-1] = seen.id
        self.made.append(k)

    def build(self) -> KnownBook:
        """The book (once: it takes over the lists collected here)."""
        if self._built:
            raise ValueError("a KnownBuilder builds one KnownBook")
        self._built = True
        return KnownBook(self)


# --------------------------------------------------------------------------- plan


class PlannedRow(NamedTuple):
    """The plan for one spreadsheet row.

    A NamedTuple rather than a frozen dataclass: a plan holds one per sheet row (a million for
    a large sheet), and a tuple is built several times faster than a frozen dataclass.
    """

    row: int
    action: Action
    status: Status  # PLANNED for update/create; UNCHANGED, INVALID, NOT_FOUND otherwise
    contact_id: int | None = None
    phone: str | None = None
    changes: str = ""
    error_code: str = ""
    error: str = ""
    # the contact as it should read after the write (update: id set; create: id 0), built
    # from the state the row was planned against plus the sheet's mapped values
    target: Contact | None = None
    detach: frozenset[int] = frozenset()  # list ids to leave (groups = exact)
    hlr_status: str | None = None
    hlr_last_check: str | None = None
    desired: Desired | None = None  # the row's wish, kept to re-plan at send time


@dataclass(frozen=True, slots=True)
class RowResult:
    """One report row; field order is the report's column order."""

    row: int
    contact_id: int | None = None
    phone: str | None = None
    action: Action = Action.NONE
    status: Status = Status.UNCHANGED
    error_code: str = ""
    error: str = ""
    changes: str = ""
    attempts: int = 0
    http_status: int | None = None
    hlr_status: str | None = None
    hlr_last_check: str | None = None
    # bsg-sync's own HLR check of the phone (verify.py): this run's lookup or the cache's
    verify_status: str | None = None
    network: str | None = None
    country: str | None = None
    ported: int | None = None  # 1/0
    roaming: int | None = None  # 1/0
    verified_at: str | None = None
    verify_cost: str | None = None  # what this run paid for it ("0" from the cache)


REPORT_COLUMNS: tuple[str, ...] = (
    "row",
    "contact_id",
    "phone",
    "action",
    "status",
    "error_code",
    "error",
    "changes",
    "attempts",
    "http_status",
    "hlr_status",
    "hlr_last_check",
    "verify_status",
    "network",
    "country",
    "ported",
    "roaming",
    "verified_at",
    "verify_cost",
)


def result_from_plan(p: PlannedRow) -> RowResult:
    """The report row of a plan entry that is not (or not yet) sent."""
    return RowResult(
        row=p.row,
        contact_id=p.contact_id,
        phone=p.phone,
        action=p.action,
        status=p.status,
        error_code=p.error_code,
        error=p.error,
        changes=p.changes,
        hlr_status=p.hlr_status,
        hlr_last_check=p.hlr_last_check,
    )


class PlanResults(Sequence[RowResult]):
    """The report rows of a plan that is not sent (a dry run), each made when it is read."""

    __slots__ = ("_plan",)

    def __init__(self, plan: Sequence[PlannedRow]) -> None:
        self._plan = plan

    def __len__(self) -> int:
        return len(self._plan)

    @overload
    def __getitem__(self, index: int) -> RowResult: ...
    @overload
    def __getitem__(self, index: slice) -> list[RowResult]: ...

    def __getitem__(self, index: int | slice) -> RowResult | list[RowResult]:
        if isinstance(index, slice):
            return [result_from_plan(p) for p in self._plan[index]]
        return result_from_plan(self._plan[index])

    def __iter__(self) -> Iterator[RowResult]:
        made = getattr(self._plan, "results", None)  # differ.PlannedRows makes them faster
        if callable(made):
            return made()  # type: ignore[no-any-return]
        return map(result_from_plan, self._plan)

    def row_numbers(self) -> Sequence[int]:
        return row_numbers(self._plan)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return _same_items(self, other)

    __hash__ = None  # type: ignore[assignment]


class _HasRow(Protocol):
    @property
    def row(self) -> int: ...


def row_numbers(rows: Sequence[_HasRow]) -> Sequence[int]:
    """The spreadsheet row number of each entry, from its column when it keeps one."""
    column = getattr(rows, "row_numbers", None)
    return column() if callable(column) else [r.row for r in rows]  # type: ignore[no-any-return]


def _in_row_order(rows: Sequence[_HasRow]) -> bool:
    numbers = row_numbers(rows)
    later = itertools.islice(numbers, 1, None)
    return all(a <= b for a, b in zip(numbers, later, strict=False))  # one shorter


def _same_items(a: Sequence[object], b: Sequence[object]) -> bool:
    return len(a) == len(b) and all(x == y for x, y in zip(a, b, strict=True))


ResultFunc = Callable[[RowResult], RowResult]


class RowResults(MadeWhenRead[RowResult]):
    """Every row's result in row order, merged as it is read from parts that are each in row
    order (the invalid rows, the duplicates, the plan's rows: a list, or a lazy PlanResults),
    so a million rows that send nothing are never a million RowResult objects at once.
    Equal to `sorted(chain(*parts), key=row)` (a part out of order is sorted first); `fn`,
    when given, is applied to each result as it is read (e.g. hiding secrets)."""

    __slots__ = ("_fn", "_index", "_order", "_parts")
    _item = "result"

    def __init__(self, parts: Iterable[Sequence[RowResult]], fn: ResultFunc | None = None
                 ) -> None:
        kept = [p for p in parts if len(p)]
        self._parts: list[Sequence[RowResult]] = [
            p if _in_row_order(p) else sorted(p, key=_row_of) for p in kept]
        self._order = _merge_order(self._parts)  # which part each row comes from; None: one
        self._index: array[int] | None = None  # each row's position in its part, when needed
        self._fn = fn

    def mapped(self, fn: ResultFunc) -> RowResults:
        """The same rows with `fn` applied to each (after any function given before)."""
        out = RowResults.__new__(RowResults)
        out._parts, out._order, out._index = self._parts, self._order, self._index
        first = self._fn
        out._fn = fn if first is None else (lambda r: fn(first(r)))
        return out

    def __len__(self) -> int:
        return sum(map(len, self._parts))

    def _raw(self) -> Iterator[RowResult]:
        parts, order = self._parts, self._order
        if order is None:
            return iter(parts[0]) if parts else iter(())
        nexts = [iter(p).__next__ for p in parts]
        return (nexts[n]() for n in order)

    def __iter__(self) -> Iterator[RowResult]:
        raw = self._raw()
        return raw if self._fn is None else map(self._fn, raw)

    def _at(self, i: int) -> RowResult:
        if self._order is None:
            r = self._parts[0][i]
        else:
            r = self._parts[self._order[i]][self._positions()[i]]
        return r if self._fn is None else self._fn(r)

    def _positions(self) -> array[int]:
        if self._index is None:
            seen = [0] * len(self._parts)
            index = array("q", bytes(8 * len(self)))
            for i, n in enumerate(self._order or ()):
                index[i] = seen[n]
                seen[n] += 1
            self._index = index
        return self._index

    def __repr__(self) -> str:
        return f"RowResults({len(self)} rows from {len(self._parts)} parts)"


def _row_of(r: RowResult) -> int:
    return r.row


def _merge_order(parts: list[Sequence[RowResult]]) -> array[int] | None:
    """For each merged row, the part it comes from (ties keep the parts' order)."""
    if len(parts) <= 1:
        return None
    if len(parts) > 255:
        raise ValueError("RowResults merges at most 255 parts")
    tagged = [zip(row_numbers(p), itertools.repeat(n)) for n, p in enumerate(parts)]
    return array("B", (n for _, n in heapq.merge(*tagged)))


@dataclass(frozen=True, slots=True)
class Threshold:
    """A limit given as a count (`50`) or a share of the rows (`10%`)."""

    value: float
    percent: bool = False

    @classmethod
    def parse(cls, text: str) -> Threshold:
        raw = text.strip()
        percent = raw.endswith("%")
        number = float(raw[:-1] if percent else raw)
        if number < 0 or (percent and number > 100):
            raise ValueError(f"{text!r} is not a count or a percentage between 0% and 100%")
        return cls(number, percent)

    def limit(self, total: int) -> float:
        return total * self.value / 100 if self.percent else self.value

    def exceeded(self, count: int, total: int) -> bool:
        return count > self.limit(total)

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{self.value:g}"


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic GC while millions of rows, plans or cells are built: none of them form
    cycles, and every new container would trigger another useless full collection."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
