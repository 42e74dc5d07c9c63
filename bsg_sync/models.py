"""Plain, frozen data shared by the stages: sheet rows, mapping, contacts, plan, results."""

from __future__ import annotations

import gc
import itertools
from array import array
from collections.abc import Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import NamedTuple, overload

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


class CompactRows(Sequence[SheetRow]):
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

    @overload
    def __getitem__(self, index: int) -> SheetRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[SheetRow]: ...

    def __getitem__(self, index: int | slice) -> SheetRow | list[SheetRow]:
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("row index out of range")
        return self._row(index)

    def _row(self, i: int) -> SheetRow:
        values = tuple(col[(ends[i - 1] if i else 0) : ends[i]]
                       for col, ends in zip(self._columns, self._ends, strict=True))
        return SheetRow(self._numbers[i], values, self._problems.get(i, ()))

    def __iter__(self) -> Iterator[SheetRow]:
        columns = [_cells(col, ends) for col, ends in zip(self._columns, self._ends, strict=True)]
        problems = self._problems
        rows = zip(*columns, strict=True) if columns else itertools.repeat((), len(self))
        for i, (number, values) in enumerate(zip(self._numbers, rows, strict=True)):
            yield SheetRow(number, values, problems[i]) if i in problems else SheetRow(number, values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def parts(self) -> tuple[array[int], list[str], list[array[int]], dict[int, tuple[CellProblem, ...]]]:
        """What it is made of (isolate sends these across the pipe as they are)."""
        return self._numbers, self._columns, self._ends, self._problems


def _cells(col: str, ends: array[int]) -> Iterator[str]:
    """A column's cells, one slice each."""
    start = 0
    for end in ends:
        yield col[start:end]
        start = end


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
