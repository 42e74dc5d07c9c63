"""Sheet rows -> desired contacts (pure): ids, phones, fields and lists per row, duplicates."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NewType, Protocol

from bsg_sync.errors import ConfigError, ErrorCode
from bsg_sync.mappingfile import (
    ERRORS_FILE_COLUMNS,
    RawMapping,
    did_you_mean,
    find_mapping_file,
    generate_mapping,
    guess_targets,
    init_mapping,
    load_mapping,
    normalise_name,
    one_line,
    parse_mapping,
    resolve_mapping,
    unmapped_headers,
)
from bsg_sync.models import (
    Account,
    Action,
    Blank,
    ColumnMapping,
    ColumnTarget,
    Desired,
    DesiredBuilder,
    DesiredRows,
    FieldColumn,
    GroupsMode,
    RowResult,
    Sheet,
    SheetRow,
    Status,
    TargetKind,
)

# the mapping file's API, here too for callers written before the split
__all__ = [
    "ERRORS_FILE_COLUMNS", "MappedRows", "PhoneFunc", "PhoneLike", "RawMapping", "dedupe",
    "find_mapping_file", "generate_mapping", "guess_targets", "init_mapping", "load_mapping",
    "map_rows", "parse_mapping", "resolve_mapping", "unmapped_headers",
]


def _rows_text(rows: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"



# --------------------------------------------------------------------------- rows


class PhoneLike(Protocol):
    """What a phone normaliser returns (bsg_sync.phones.PhoneResult)."""

    @property
    def digits(self) -> str | None: ...
    @property
    def error_code(self) -> str: ...
    @property
    def error(self) -> str: ...


PhoneFunc = Callable[[str], PhoneLike]


@dataclass(frozen=True)
class MappedRows:
    """Every sheet row once: either a desired contact, or a result that needs no plan."""

    desired: Sequence[Desired]  # DesiredRows from map_rows and dedupe
    results: list[RowResult]


#: a column's position in the sheet's rows (0 = the first column), not a field id or a row
ColumnIndex = NewType("ColumnIndex", int)


@dataclass(frozen=True)
class SheetColumns:
    """Where each target sits in the sheet's rows, worked out once per sheet."""

    id_col: ColumnIndex | None
    phone_col: ColumnIndex | None
    groups_col: ColumnIndex | None
    groups_clear: bool
    fields: tuple[FieldColumn, ...]
    groups_mode: GroupsMode
    mapped: frozenset[ColumnIndex] = frozenset()  # every mapped column


def _sheet_columns(sheet: Sheet, mapping: ColumnMapping) -> SheetColumns:
    # the first column of a header wins (reversed, so earlier ones overwrite later ones)
    index = {h: ColumnIndex(i) for i, h in reversed(list(enumerate(sheet.headers)))}
    by_kind: dict[TargetKind, ColumnTarget] = {
        c.kind: c for c in mapping.columns if c.kind is not TargetKind.FIELD
    }

    def col(kind: TargetKind) -> ColumnIndex | None:
        target = by_kind.get(kind)
        return index[target.header] if target is not None else None

    groups = by_kind.get(TargetKind.GROUPS)
    return SheetColumns(
        id_col=col(TargetKind.ID),
        phone_col=col(TargetKind.PHONE),
        groups_col=col(TargetKind.GROUPS),
        groups_clear=groups is not None and groups.blank is Blank.CLEAR,
        fields=tuple(
            FieldColumn(index[c.header], c.field_id, c.blank is Blank.CLEAR)
            for c in mapping.columns
            if c.kind is TargetKind.FIELD and c.field_id is not None
        ),
        groups_mode=mapping.options.groups,
        mapped=frozenset(index[c.header] for c in mapping.columns if c.header in index),
    )


class _GroupParser:
    """Turns a groups cell into list ids, caching per distinct cell text."""

    def __init__(self, account: Account) -> None:
        self._account = account
        self._ids = {g.id for g in account.groups}
        self._by_name: dict[str, int] = {}
        for g in account.groups:
            self._by_name.setdefault(normalise_name(g.name), g.id)
        self._cache: dict[str, frozenset[int]] = {}
        self.unknown: dict[str, list[int]] = {}  # token -> rows

    def parse(self, text: str, row: int) -> frozenset[int]:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        ids: set[int] = set()
        bad: list[str] = []
        for token in (t.strip() for t in re.split(r"[,;]", text)):
            if not token:
                continue
            found = self._lookup(token)
            if found is None:
                bad.append(token)
            else:
                ids.add(found)
        for token in bad:
            self.unknown.setdefault(token, []).append(row)
        result = frozenset(ids)
        if not bad:
            self._cache[text] = result
        return result

    def _lookup(self, token: str) -> int | None:
        if token.isascii() and token.isdigit() and (int(token) in self._ids or not self._account.groups):
            return int(token)
        return self._by_name.get(normalise_name(token))

    def raise_unknown(self) -> None:
        names = [g.name for g in self._account.groups]
        problems = [
            f"unknown list '{token}' ({_rows_text(rows)}){did_you_mean(token, names)}"
            for token, rows in self.unknown.items()
        ]
        if len(problems) == 1:
            raise ConfigError(problems[0])
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"the sheet names {len(problems)} unknown lists:\n{listed}")


def _invalid(row: int, code: str, error: str, contact_id: int | None = None) -> RowResult:
    return RowResult(
        row=row, contact_id=contact_id, action=Action.SKIP, status=Status.INVALID,
        error_code=code, error=error,
    )


def _default_phone_func(default_country: str | None) -> PhoneFunc:
    from bsg_sync.phones import normalise_phone

    return partial(normalise_phone, default_country=default_country)


class _PhoneCache:
    """The phone function's results by cell text: a value repeated down the sheet parses
    once. Bounded: a sheet of a million distinct numbers would otherwise hold a million
    entries that are never hit; when full it starts again (repeats are usually near)."""

    __slots__ = ("_cache", "_func", "_limit")

    def __init__(self, func: PhoneFunc, limit: int = 1 << 15) -> None:
        self._func, self._limit = func, limit
        self._cache: dict[str, PhoneLike] = {}

    def __call__(self, text: str) -> PhoneLike:
        cache = self._cache
        res = cache.get(text)
        if res is None:
            res = self._func(text)
            if len(cache) >= self._limit:
                cache.clear()
            cache[text] = res
        return res

    def __len__(self) -> int:
        return len(self._cache)


def map_rows(
    sheet: Sheet, mapping: ColumnMapping, account: Account, *, phone_func: PhoneFunc | None = None
) -> MappedRows:
    """Turn every row into a Desired contact or an invalid/duplicate RowResult.

    Unknown list names are collected over the whole sheet and raised as one ConfigError.
    """
    columns = _sheet_columns(sheet, mapping)
    phones = _PhoneCache(phone_func or _default_phone_func(mapping.options.default_country))
    groups = _GroupParser(account)
    desired = DesiredBuilder(sheet.rows, columns.fields, columns.groups_mode,
                             with_groups=columns.groups_col is not None)
    results: list[RowResult] = []
    for position, srow in enumerate(sheet.rows):
        bad = _mapped_problem(srow, columns, sheet.headers) if srow.problems else None
        if bad is not None:
            results.append(bad)
            continue
        who = _identify(srow.row, srow.values, columns, phones)
        if isinstance(who, RowResult):
            results.append(who)
        else:
            desired.add(position, srow.row, *who, _groups(srow.row, srow.values, columns, groups))
    if groups.unknown:
        groups.raise_unknown()
    return dedupe(desired.build(), results)


_PROBLEM_SENTENCES: dict[str, str] = {
    ErrorCode.CELL_ERROR: "The cell in column '{header}' shows the error {detail}; fix the formula or "
                  "the value in the sheet.",
    ErrorCode.CONTROL_CHARACTER: "The cell in column '{header}' holds an invisible control character "
                         "({detail}); retype the value or remove the character.",
}


def _mapped_problem(srow: SheetRow, columns: SheetColumns, headers: Sequence[str]
                    ) -> RowResult | None:
    """The row's first problem cell in a mapped column, as an invalid result."""
    for p in srow.problems:
        if p.column in columns.mapped:
            template = _PROBLEM_SENTENCES.get(p.code, "The cell in column '{header}' cannot "
                                              "be sent ({detail}).")
            header = one_line(headers[p.column]) if p.column < len(headers) else str(p.column)
            return _invalid(srow.row, p.code, template.format(header=header, detail=p.detail))
    return None


def _identify(
    row: int, values: tuple[str, ...], columns: SheetColumns, phones: _PhoneCache
) -> tuple[int | None, str | None] | RowResult:
    """(contact id, phone digits) of a row, or the invalid result saying why it has none."""
    contact_id: int | None = None
    raw_id = values[columns.id_col] if columns.id_col is not None else ""
    if raw_id:
        if not (raw_id.isascii() and raw_id.isdigit()) or int(raw_id) < 1:
            return _invalid(row, ErrorCode.INVALID_ID, f"Contact ID '{raw_id}' is not a whole number "
                            "above 0; use the contact's BSG id or leave it empty.")
        contact_id = int(raw_id)
    raw_phone = values[columns.phone_col] if columns.phone_col is not None else ""
    if raw_phone:
        res = phones(raw_phone)
        if res.digits is None:
            return _invalid(row, res.error_code or ErrorCode.INVALID_PHONE, res.error, contact_id)
        return contact_id, res.digits
    if contact_id is None:
        return _invalid(row, ErrorCode.MISSING_CONTACT, "The row needs a contact id or a phone.")
    return contact_id, None


_NO_GROUPS: frozenset[int] = frozenset()


def _groups(row: int, values: tuple[str, ...], columns: SheetColumns, groups: _GroupParser
            ) -> frozenset[int] | None:
    """The row's list ids (None: groups unmapped, or a blank cell that keeps them); the
    fields are not read here: DesiredRows reads them from the sheet when a row is made."""
    if columns.groups_col is None:
        return None
    cell = values[columns.groups_col]
    if cell:
        return groups.parse(cell, row)
    return _NO_GROUPS if columns.groups_clear else None


def _same_wish(a: Desired, b: Desired, phones: Mapping[int, str]) -> bool:
    """Both rows ask the same of one contact. A row that names the contact by its current
    phone (`phones`, by id) asks nothing of the phone, like a row that leaves it blank."""
    def phone(d: Desired) -> str | None:
        if d.contact_id is not None and d.phone == phones.get(d.contact_id):
            return None
        return d.phone
    return (a.contact_id, phone(a), dict(a.fields), a.groups) == (
        b.contact_id, phone(b), dict(b.fields), b.groups
    )


def dedupe(desired: Sequence[Desired], results: list[RowResult],
           phones: Mapping[int, str] | None = None) -> MappedRows:
    """Identical rows for one contact are sent once; conflicting ones are all invalid.

    Run once on the sheet (rows keyed by id, else phone) and again once phones are resolved
    to contacts, with `phones` the resolved contacts' current phones: a row by id and a row
    by phone can be the same contact. The rows come back as DesiredRows."""
    rows = DesiredRows.of(desired)
    groups = _duplicate_keys(rows)
    if not groups:
        return MappedRows(rows, results)
    phones = phones or {}
    dropped: set[int] = set()
    for positions in groups:
        group = [rows[i] for i in positions]
        head = group[0]
        if all(_same_wish(head, d, phones) for d in group[1:]):
            results.extend(_duplicate_row(d, head.row) for d in group[1:])
            dropped.update(positions[1:])
        else:
            results.extend(_conflict(d, group) for d in group)
            dropped.update(positions)
    results.sort(key=lambda r: r.row)
    return MappedRows(rows.select([i for i in range(len(rows)) if i not in dropped]), results)


def _duplicate_keys(rows: DesiredRows) -> list[list[int]]:
    """The positions of the rows of each contact named more than once, in order of its first
    row; a contact is its id, else its phone (an id is an int and a phone a str, so the keys
    cannot collide). One set of keys for the common sheet without duplicates."""
    seen: set[int | str | None] = set()
    repeated: set[int | str | None] = set()
    for cid, phone in zip(rows.contact_ids(), rows.phones(), strict=True):
        key = cid if cid is not None else phone
        if key in seen:
            repeated.add(key)
        else:
            seen.add(key)
    if not repeated:
        return []
    del seen
    by_key: dict[int | str | None, list[int]] = {}
    for i, (cid, phone) in enumerate(zip(rows.contact_ids(), rows.phones(), strict=True)):
        key = cid if cid is not None else phone
        if key in repeated:
            by_key.setdefault(key, []).append(i)
    return list(by_key.values())


def _duplicate_row(d: Desired, first_row: int) -> RowResult:
    return RowResult(
        row=d.row, contact_id=d.contact_id, phone=d.phone, action=Action.NONE,
        status=Status.UNCHANGED, error_code=ErrorCode.DUPLICATE_ROW,
        error=f"Same as row {first_row}; sent once.",
    )


def _conflict(d: Desired, group: Sequence[Desired]) -> RowResult:
    others = [o.row for o in group if o.row != d.row]
    who = f"contact {d.contact_id}" if d.contact_id is not None else f"phone {d.phone}"
    return RowResult(
        row=d.row, contact_id=d.contact_id, phone=d.phone, action=Action.SKIP,
        status=Status.INVALID, error_code=ErrorCode.DUPLICATE_CONTACT,
        error=f"Same {who} as {_rows_text(others)} but different values; keep one of them.",
    )

