"""Desired rows vs known contacts -> the plan of changes, field by field (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import count

from bsg_sync.errors import ErrorCode, TooManyChanges
from bsg_sync.models import (
    Account,
    Action,
    Contact,
    Desired,
    DesiredRows,
    GroupsMode,
    Known,
    MadeWhenRead,
    PlannedRow,
    RowResult,
    Status,
    Threshold,
    paused_gc,
    result_from_plan,
)

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
        written = {cid: k.written for cid, k in known.items() if k.written is not None}
        return cls(_Names.of(account), written, keep_drift)

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
    """_plan_one for a million rows: rows whose wish BSG already holds exactly (every mapped
    field, the phone and the lists) are only recorded; the rest are planned in full by
    `_plan_row`, and only the writes among them are kept (an unchanged or not-found row is
    made again from its columns when read). The exact test is inlined and the contacts looked
    up by `map`; equivalence with the `_plan_one` oracle is property-tested."""
    rows = DesiredRows.of(desired)
    get = known.get
    seen_of = [None if cid is None else get(cid) for cid in rows.contact_ids()]
    detailed: dict[int, PlannedRow] = {}
    add = GroupsMode.ADD
    fields_at, groups_at, mode_at = rows.fields_at, rows.groups_at, rows.mode_at
    for i, k, phone in zip(count(), seen_of, rows.phones()):
        if k is not None:
            seen = k.seen
            # a dict's items compare as sets in C: every mapped value is already held
            if fields_at(i).items() <= seen.fields.items():
                g = groups_at(i)
                if (phone is None or phone == seen.phone) and (
                        g is None or (g <= seen.groups if mode_at(i) is add
                                      else g == seen.groups)):
                    continue
        elif not (create_missing and phone and rows.contact_id_at(i) is None):
            continue  # not found: nothing to plan
        p = _plan_row(rows[i], k, names, create_missing, keep_drift)
        if p.action in _WRITES:
            detailed[i] = p
    return PlannedRows(rows, seen_of, detailed)


class PlannedRows(MadeWhenRead[PlannedRow]):
    """One PlannedRow per desired row, in order. Only the writes are held as PlannedRow
    objects; an unchanged row is kept as the (desired, known) pair it was planned from and a
    not-found row as its desired columns, each made into a PlannedRow only when read, so a
    million-row plan where 1% changes holds ten thousand objects, not a million.
    Its inputs are copied (DesiredRows, contacts looked up), so later edits do not show."""

    __slots__ = ("_detailed", "_known", "_rows")
    _item = "plan"

    def __init__(self, rows: DesiredRows, known: list[Known | None],
                 detailed: dict[int, PlannedRow]) -> None:
        self._rows, self._known, self._detailed = rows, known, detailed

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
        return _recorded(rows.row_numbers()[i], rows.contact_id_at(i), rows.phones()[i],
                         self._known[i])

    def __iter__(self) -> Iterator[PlannedRow]:
        get = self._detailed.get
        rows = self._rows
        for i, (row, cid, phone, k) in enumerate(zip(
                rows.row_numbers(), rows.contact_ids(), rows.phones(), self._known,
                strict=True)):
            p = get(i)
            yield p if p is not None else _recorded(row, cid, phone, k)

    def results(self) -> Iterator[RowResult]:
        """`map(result_from_plan, self)`, an unchanged row's result made without its
        PlannedRow (a dry run reads its results several times: journal, summary, report)."""
        get = self._detailed.get
        rows = self._rows
        none, unchanged = Action.NONE, Status.UNCHANGED
        for i, (row, cid, phone, k) in enumerate(zip(
                rows.row_numbers(), rows.contact_ids(), rows.phones(), self._known,
                strict=True)):
            p = get(i)
            if p is not None:
                yield result_from_plan(p)
            elif k is not None:
                seen = k.seen
                yield RowResult(row, seen.id, seen.phone, none, unchanged, "", "", "", 0, None,
                                seen.hlr_status, seen.hlr_last_check)
            else:
                yield result_from_plan(_not_found(row, cid, phone))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PlannedRows({len(self._rows)} rows, {len(self._detailed)} planned in full)"


def _recorded(row: int, cid: int | None, phone: str | None, k: Known | None) -> PlannedRow:
    """The plan of a row that writes nothing: unchanged when its contact is known (the fast
    test or `_plan_update` found nothing to change), else not found."""
    if k is not None:
        return _unchanged(row, k.seen.id, k.seen)
    return _not_found(row, cid, phone)


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
