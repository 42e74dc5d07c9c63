"""Mapping files: parse and resolve column targets, and turn sheet rows into desired contacts."""

from __future__ import annotations

import difflib
import json
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import phonenumbers

from bsg_sync.errors import ConfigError
from bsg_sync.models import (
    Account,
    Action,
    Blank,
    ColumnMapping,
    ColumnTarget,
    Desired,
    GroupsMode,
    MappingOptions,
    RowResult,
    Sheet,
    SheetRow,
    Status,
    TargetKind,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: columns of an errors file that are read back without a warning
ERRORS_FILE_COLUMNS = frozenset({"error_code", "error"})
OPTION_NAMES = ("default_country", "blank", "groups", "header_row")
TABLE_NAMES = ("columns", "options")
SIMPLE_TARGETS = {"id": TargetKind.ID, "phone": TargetKind.PHONE, "groups": TargetKind.GROUPS}


# --------------------------------------------------------------------------- helpers


def _norm(text: str) -> str:
    """Case-, accent-, space- and underscore-insensitive form of a header or name."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[\s_\-.]+", " ", plain).split())


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'X'?' for the closest candidate, or '' when none is close."""
    by_norm: dict[str, str] = {}
    for cand in candidates:
        by_norm.setdefault(_norm(cand), cand)
    close = difflib.get_close_matches(_norm(word), list(by_norm), n=1, cutoff=0.6)
    return f"; did you mean '{by_norm[close[0]]}'?" if close else ""


def _rows_text(rows: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _one_line(text: str) -> str:
    """Headers and keys may hold line breaks (a cell typed with Alt+Enter, a form feed): shown
    escaped, each problem stays on its line."""
    return "".join(repr(ch)[1:-1] if ch.splitlines() != [ch] else ch for ch in text)


def _raise_problems(problems: Sequence[str], source: Path | None) -> None:
    if not problems:
        return
    problems = [_one_line(p) for p in problems]
    where = source.name if source is not None else "mapping"
    if len(problems) == 1:
        raise ConfigError(f"{where}: {problems[0]}")
    listed = "\n".join(f"  - {p}" for p in problems)
    raise ConfigError(f"{where} has {len(problems)} problems:\n{listed}")


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class RawMapping:
    """A mapping file as written: header -> target text or field id, options, blank overrides."""

    columns: dict[str, str | int]
    options: dict[str, Any]
    source: Path | None = None
    blanks: dict[str, str] = field(default_factory=dict)  # header -> "keep" | "clear"
    problems: tuple[str, ...] = ()  # structural problems, reported by resolve_mapping


def load_mapping(path: Path) -> RawMapping:
    """Read and parse a mapping file; a missing or unreadable file is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"mapping file {path} not found; write one with `bsg-sync init SHEET`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read mapping file {path}: {exc}; save it as UTF-8") from None
    return parse_mapping(text, source=path)


def parse_mapping(text: str, source: Path | None = None) -> RawMapping:
    """Parse mapping TOML; syntax errors raise, structural problems are kept for resolve."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = source.name if source is not None else "mapping"
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    problems = [
        f"unknown table [{name}]{_did_you_mean(name, TABLE_NAMES)}"
        for name in doc
        if name not in TABLE_NAMES
    ]
    columns, blanks = _parse_columns(doc.get("columns", {}), problems)
    options = doc.get("options", {})
    if not isinstance(options, dict):
        problems.append("[options] must be a table")
        options = {}
    return RawMapping(columns, dict(options), source, blanks, tuple(problems))


def _parse_columns(
    table: object, problems: list[str]
) -> tuple[dict[str, str | int], dict[str, str]]:
    columns: dict[str, str | int] = {}
    blanks: dict[str, str] = {}
    if not isinstance(table, dict):
        problems.append("[columns] must be a table of header = target")
        return columns, blanks
    for header, value in table.items():
        if isinstance(value, dict):
            extra = sorted(set(value) - {"target", "blank"})
            if extra:
                problems.append(f"column '{header}': unknown key '{extra[0]}' (use target, blank)")
            if "blank" in value:
                blanks[header] = str(value["blank"])
            value = value.get("target")
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            columns[header] = value
        else:
            problems.append(
                f"column '{header}': target must be id, phone, groups, "
                f"field:<name> or a field id, not {value!r}"
            )
    return columns, blanks


def find_mapping_file(sheet_path: Path, cwd: Path) -> Path | None:
    """<sheet stem>.toml beside the sheet, then bsg-sync.toml beside it, then in cwd."""
    candidates = (
        sheet_path.with_name(f"{sheet_path.stem}.toml"),
        sheet_path.with_name("bsg-sync.toml"),
        cwd / "bsg-sync.toml",
    )
    return next((c for c in candidates if c.is_file()), None)


# --------------------------------------------------------------------------- resolving


def resolve_mapping(raw: RawMapping, headers: Sequence[str], account: Account) -> ColumnMapping:
    """Check a mapping against the sheet and the account; raise one ConfigError for all problems."""
    problems = list(raw.problems)
    options = _resolve_options(raw.options, problems)
    columns = []
    for key, value in raw.columns.items():
        header = _match_header(key, headers, problems)
        target = _resolve_target(key, value, account, problems)
        what = f"column '{key}': blank"
        blank = _resolve_blank(raw.blanks.get(key), options.blank, what, problems)
        if header is not None and target is not None:
            columns.append(ColumnTarget(header, target[0], target[1], blank))
    _check_columns(columns, problems)
    lost = [k for k in raw.columns if _match_header(k, headers, []) is None]
    if lost and not columns and not any(_did_you_mean(k, headers) for k in lost):
        # nothing matched and nothing is close: most likely the wrong header row
        shown = ", ".join(repr(h) for h in headers[:8]) + (", …" if len(headers) > 8 else "")
        problems.append(f"the header row read from the sheet is {shown}; if the real headers "
                        "are further down, set header_row in [options]")
    if not any(c.kind in (TargetKind.ID, TargetKind.PHONE) for c in columns) and not any(
        v in ("id", "phone") for v in map(_target_word, raw.columns.values())
    ):
        problems.append("no column is mapped to phone or id, so no row can name its contact")
    _raise_problems(problems, raw.source)
    return ColumnMapping(tuple(columns), options, raw.source)


def _target_word(value: str | int) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def _match_header(key: str, headers: Sequence[str], problems: list[str]) -> str | None:
    wanted = key.strip()
    for h in headers:
        if h.strip() == wanted:
            return h
    loose = [h for h in headers if _norm(h) == _norm(wanted)]
    if len(loose) == 1:
        return loose[0]
    if loose:
        problems.append(f"column '{key}' matches several columns: {', '.join(loose)}")
    else:
        problems.append(f"column '{key}' is not in the sheet{_did_you_mean(key, headers)}")
    return None


def _resolve_target(
    key: str, value: str | int, account: Account, problems: list[str]
) -> tuple[TargetKind, int | None] | None:
    if isinstance(value, int):
        return _field_by_id(key, value, account, problems)
    word = value.strip()
    if word.lower() in SIMPLE_TARGETS:
        return SIMPLE_TARGETS[word.lower()], None
    if word.isascii() and word.isdigit():
        return _field_by_id(key, int(word), account, problems)
    if word.lower().startswith("field:"):
        name = word[len("field:") :].strip()
        if name.isascii() and name.isdigit():
            return _field_by_id(key, int(name), account, problems)
        return _field_by_name(key, name, account, problems)
    hint = _did_you_mean(word, [*SIMPLE_TARGETS, *(f"field:{f.name}" for f in account.fields)])
    problems.append(
        f"column '{key}': bad target '{value}' (use id, phone, groups, field:<name> "
        f"or a field id){hint}"
    )
    return None


def _field_by_id(
    key: str, field_id: int, account: Account, problems: list[str]
) -> tuple[TargetKind, int | None] | None:
    if any(f.id == field_id for f in account.fields):
        return TargetKind.FIELD, field_id
    names = {f"{f.id} ({f.name})": f.name for f in account.fields}
    hint = _did_you_mean(key, names.values())
    if hint:
        best = next(k for k, v in names.items() if f"'{v}'" in hint)
        hint = f"; did you mean {best}?"
    problems.append(f"column '{key}': unknown field id {field_id}{hint}")
    return None


def _field_by_name(
    key: str, name: str, account: Account, problems: list[str]
) -> tuple[TargetKind, int | None] | None:
    exact = [f for f in account.fields if f.name == name]
    loose = exact or [f for f in account.fields if _norm(f.name) == _norm(name)]
    if len(loose) == 1:
        return TargetKind.FIELD, loose[0].id
    if loose:
        problems.append(f"column '{key}': field name '{name}' matches several fields")
    else:
        hint = _did_you_mean(name, [f.name for f in account.fields])
        problems.append(f"column '{key}': unknown field '{name}'{hint}")
    return None


def _resolve_blank(value: object, default: Blank, what: str, problems: list[str]) -> Blank:
    if value is None:
        return default
    try:
        return Blank(str(value).strip().lower())
    except ValueError:
        problems.append(f"{what} = {value!r} must be 'keep' or 'clear'")
        return default


def _resolve_options(options: dict[str, Any], problems: list[str]) -> MappingOptions:
    for name in options:
        if name not in OPTION_NAMES:
            problems.append(f"unknown option '{name}'{_did_you_mean(name, OPTION_NAMES)}")
    blank = _resolve_blank(options.get("blank"), Blank.KEEP, "option blank", problems)
    groups = GroupsMode.ADD
    raw_groups = options.get("groups")
    if raw_groups is not None:
        try:
            groups = GroupsMode(str(raw_groups).strip().lower())
        except ValueError:
            problems.append(f"option groups = {raw_groups!r} must be 'add' or 'exact'")
    return MappingOptions(
        default_country=_resolve_country(options.get("default_country"), problems),
        blank=blank,
        groups=groups,
        header_row=_resolve_header_row(options.get("header_row"), problems),
    )


def _resolve_country(value: object, problems: list[str]) -> str | None:
    if value is None:
        return None
    region = str(value).strip().upper()
    if region in phonenumbers.SUPPORTED_REGIONS:
        return region
    problems.append(
        f"option default_country = {value!r} is not a region code like 'GB', 'DE' or 'US'"
    )
    return None


def _resolve_header_row(value: object, problems: list[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    problems.append(f"option header_row = {value!r} must be a row number (1 or more)")
    return None


def _check_columns(columns: Sequence[ColumnTarget], problems: list[str]) -> None:
    seen_header: dict[str, str] = {}
    seen_target: dict[tuple[TargetKind, int | None], str] = {}
    for col in columns:
        if col.header in seen_header:
            problems.append(f"column '{col.header}' is mapped twice")
        seen_header[col.header] = col.header
        key = (col.kind, col.field_id)
        if key in seen_target:
            what = f"field {col.field_id}" if col.kind is TargetKind.FIELD else col.kind.value
            problems.append(
                f"two columns are mapped to {what}: '{seen_target[key]}' and '{col.header}'"
            )
        seen_target.setdefault(key, col.header)


def unmapped_headers(mapping: ColumnMapping, headers: Sequence[str]) -> list[str]:
    """Non-blank sheet headers no column maps (an errors file's own columns are not listed)."""
    mapped = {c.header for c in mapping.columns}
    return [
        h
        for h in headers
        if h.strip() and h not in mapped and h.strip().lower() not in ERRORS_FILE_COLUMNS
    ]


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

    desired: list[Desired]
    results: list[RowResult]


@dataclass(frozen=True)
class _Plan:
    """Column indexes and lookups computed once per sheet."""

    id_idx: int | None
    phone_idx: int | None
    groups_idx: int | None
    groups_clear: bool
    fields: tuple[tuple[int, int, bool], ...]  # (column index, field id, blank clears)
    groups_mode: GroupsMode
    mapped: frozenset[int] = frozenset()  # every mapped column index


def _plan(sheet: Sheet, mapping: ColumnMapping) -> _Plan:
    index = {h: i for i, h in reversed(list(enumerate(sheet.headers)))}
    by_kind: dict[TargetKind, ColumnTarget] = {
        c.kind: c for c in mapping.columns if c.kind is not TargetKind.FIELD
    }

    def idx(kind: TargetKind) -> int | None:
        col = by_kind.get(kind)
        return index[col.header] if col is not None else None

    groups = by_kind.get(TargetKind.GROUPS)
    return _Plan(
        id_idx=idx(TargetKind.ID),
        phone_idx=idx(TargetKind.PHONE),
        groups_idx=idx(TargetKind.GROUPS),
        groups_clear=groups is not None and groups.blank is Blank.CLEAR,
        fields=tuple(
            (index[c.header], c.field_id, c.blank is Blank.CLEAR)
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
            self._by_name.setdefault(_norm(g.name), g.id)
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
        return self._by_name.get(_norm(token))

    def raise_unknown(self) -> None:
        names = [g.name for g in self._account.groups]
        problems = [
            f"unknown list '{token}' ({_rows_text(rows)}){_did_you_mean(token, names)}"
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
    from bsg_sync.phones import PhoneNormaliser

    return PhoneNormaliser(default_country)


def map_rows(
    sheet: Sheet, mapping: ColumnMapping, account: Account, *, phone_func: PhoneFunc | None = None
) -> MappedRows:
    """Turn every row into a Desired contact or an invalid/duplicate RowResult.

    Unknown list names are collected over the whole sheet and raised as one ConfigError.
    """
    plan = _plan(sheet, mapping)
    phones = _PhoneLookup(phone_func or _default_phone_func(mapping.options.default_country), {})
    groups = _GroupParser(account)
    desired: list[Desired] = []
    results: list[RowResult] = []
    for srow in sheet.rows:
        bad = _mapped_problem(srow, plan, sheet.headers) if srow.problems else None
        if bad is not None:
            results.append(bad)
            continue
        who = _identify(srow.row, srow.values, plan, phones)
        if isinstance(who, RowResult):
            results.append(who)
        else:
            desired.append(_desired(srow.row, srow.values, plan, groups, *who))
    if groups.unknown:
        groups.raise_unknown()
    return dedupe(desired, results)


_PROBLEM_SENTENCES = {
    "cell-error": "The cell in column '{header}' shows the error {detail}; fix the formula or "
                  "the value in the sheet.",
    "control-character": "The cell in column '{header}' holds an invisible control character "
                         "({detail}); retype the value or remove the character.",
}


def _mapped_problem(srow: SheetRow, plan: _Plan, headers: Sequence[str]) -> RowResult | None:
    """The row's first problem cell in a mapped column, as an invalid result."""
    for p in srow.problems:
        if p.column in plan.mapped:
            template = _PROBLEM_SENTENCES.get(p.code, "The cell in column '{header}' cannot "
                                              "be sent ({detail}).")
            header = _one_line(headers[p.column]) if p.column < len(headers) else str(p.column)
            return _invalid(srow.row, p.code, template.format(header=header, detail=p.detail))
    return None


class _PhoneLookup(NamedTuple):
    """The normaliser and its results by cell text (one call per distinct value)."""

    func: PhoneFunc
    cache: dict[str, PhoneLike]


def _identify(
    row: int, values: tuple[str, ...], plan: _Plan, phones: _PhoneLookup
) -> tuple[int | None, str | None] | RowResult:
    """(contact id, phone digits) of a row, or the invalid result saying why it has none."""
    contact_id: int | None = None
    raw_id = values[plan.id_idx] if plan.id_idx is not None else ""
    if raw_id:
        if not (raw_id.isascii() and raw_id.isdigit()) or int(raw_id) < 1:
            return _invalid(row, "invalid-id", f"Contact ID '{raw_id}' is not a whole number "
                            "above 0; use the contact's BSG id or leave it empty.")
        contact_id = int(raw_id)
    raw_phone = values[plan.phone_idx] if plan.phone_idx is not None else ""
    if raw_phone:
        res = phones.cache.get(raw_phone)
        if res is None:
            res = phones.cache[raw_phone] = phones.func(raw_phone)
        if res.digits is None:
            return _invalid(row, res.error_code or "invalid-phone", res.error, contact_id)
        return contact_id, res.digits
    if contact_id is None:
        return _invalid(row, "missing-contact", "The row needs a contact id or a phone.")
    return contact_id, None


def _desired(
    row: int, values: tuple[str, ...], plan: _Plan, groups: _GroupParser,
    contact_id: int | None, phone: str | None,
) -> Desired:
    fields: dict[int, str] = {}
    for idx, field_id, clear in plan.fields:
        value = values[idx]
        if value or clear:
            fields[field_id] = value
    group_ids: frozenset[int] | None = None
    if plan.groups_idx is not None:
        cell = values[plan.groups_idx]
        if cell:
            group_ids = groups.parse(cell, row)
        elif plan.groups_clear:
            group_ids = frozenset()
    return Desired(row, contact_id, phone, fields, group_ids, plan.groups_mode)


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


def dedupe(desired: list[Desired], results: list[RowResult],
           phones: Mapping[int, str] | None = None) -> MappedRows:
    """Identical rows for one contact are sent once; conflicting ones are all invalid.

    Run once on the sheet (rows keyed by id, else phone) and again once phones are resolved
    to contacts, with `phones` the resolved contacts' current phones: a row by id and a row
    by phone can be the same contact."""
    phones = phones or {}
    first: dict[int | str | None, Desired] = {}
    dupes: dict[int | str | None, list[Desired]] = {}
    for d in desired:  # an id is an int and a phone a str, so the keys cannot collide
        key = d.contact_id if d.contact_id is not None else d.phone
        seen = first.setdefault(key, d)
        if seen is not d:
            dupes.setdefault(key, [seen]).append(d)
    if not dupes:
        return MappedRows(desired, results)
    dropped: set[int] = set()
    for group in dupes.values():
        head = group[0]
        if all(_same_wish(head, d, phones) for d in group[1:]):
            results.extend(_duplicate_row(d, head.row) for d in group[1:])
            dropped.update(d.row for d in group[1:])
        else:
            results.extend(_conflict(d, group) for d in group)
            dropped.update(d.row for d in group)
    results.sort(key=lambda r: r.row)
    return MappedRows([d for d in desired if d.row not in dropped], results)


def _duplicate_row(d: Desired, first_row: int) -> RowResult:
    return RowResult(
        row=d.row, contact_id=d.contact_id, phone=d.phone, action=Action.NONE,
        status=Status.UNCHANGED, error_code="duplicate-row",
        error=f"Same as row {first_row}; sent once.",
    )


def _conflict(d: Desired, group: Sequence[Desired]) -> RowResult:
    others = [o.row for o in group if o.row != d.row]
    who = f"contact {d.contact_id}" if d.contact_id is not None else f"phone {d.phone}"
    return RowResult(
        row=d.row, contact_id=d.contact_id, phone=d.phone, action=Action.SKIP,
        status=Status.INVALID, error_code="duplicate-contact",
        error=f"Same {who} as {_rows_text(others)} but different values; keep one of them.",
    )


# --------------------------------------------------------------------------- generating

PHONE_HEADERS = frozenset(_norm(h) for h in (
    "phone", "phones", "mobile", "msisdn", "tel", "tel.", "telephone", "phone number",
    "phone no", "mobile phone", "mobile number", "mobile no", "cell", "cell phone",
    "cellphone", "handy", "handynummer", "telefon", "telefonnummer", "téléphone", "portable",
    "numero", "número", "numéro", "telefono", "teléfono", "móvil", "gsm", "whatsapp", "mob",
    "contact phone", "contact number",
))
ID_HEADERS = frozenset(_norm(h) for h in (
    "id", "contact id", "contactid", "contact_id", "bsg id", "bsg contact id",
))
GROUPS_HEADERS = frozenset(_norm(h) for h in (
    "lists", "list", "groups", "group", "segments", "segment", "contact lists", "listas",
    "listen",
))
_HEADER_KINDS = ((ID_HEADERS, "id"), (PHONE_HEADERS, "phone"), (GROUPS_HEADERS, "groups"))
# A header not in the lists above still names a phone or an id when, split into words
# (camelCase, punctuation), its words are such words plus qualifiers: "Contact Phone Number",
# "homePhone", "Work phone #", "Phone 2", "BSG contact id".
_PHONE_WORDS = frozenset(_norm(w) for w in (
    "phone", "phones", "mobile", "msisdn", "tel", "telephone", "cell", "cellphone", "handy",
    "handynummer", "telefon", "telefonnummer", "téléphone", "portable", "telefono", "teléfono",
    "móvil", "movil", "celular", "gsm", "whatsapp", "mob", "sms",
))
_PHONE_QUALIFIERS = frozenset(_norm(w) for w in (
    "contact", "number", "num", "no", "nr", "nummer", "numero", "número", "numéro", "de", "du",
    "of", "home", "work", "office", "business", "private", "personal", "primary", "main",
    "direct", "intl", "international", "e164",
))
_ID_QUALIFIERS = frozenset(_norm(w) for w in ("contact", "bsg", "record"))
_WORD_KINDS = ((frozenset({"id"}), _ID_QUALIFIERS, "id"),
               (_PHONE_WORDS, _PHONE_QUALIFIERS, "phone"))  # fmt: skip
_GENERATED_INTRO = """\
# bsg-sync mapping file, written by `bsg-sync init`. Edit freely.
# [columns] maps a spreadsheet header to a target:
#   "id" (BSG contact id), "phone", "groups" (list names or ids separated by , or ;),
#   "field:<name>" or a field id (a custom field). Unmapped columns are ignored.
# An empty cell keeps the current value; to clear it for one column instead:
#   "City" = { target = "field:City", blank = "clear" }
"""


def _toml_str(text: str) -> str:
    """A TOML basic string (JSON escapes are valid TOML; DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def guess_targets(headers: Sequence[str], account: Account) -> dict[str, str]:
    """header -> target text for the headers that look like id, phone, lists or a field.

    Exact names win over names guessed from their words ("Mobile" over "Home phone")."""
    fields = {_norm(f.name): f.name for f in account.fields}
    taken: set[str] = set()
    guessed: dict[str, str] = {}
    for guess in (lambda h: _exact_target(h, fields), _word_target):
        for header in headers:
            target = guess(header)
            if target is not None and target not in taken and header not in guessed:
                taken.add(target)
                guessed[header] = target
    return {h: guessed[h] for h in headers if h in guessed}


def _exact_target(header: str, fields: dict[str, str]) -> str | None:
    norm = _norm(header)
    target = next((t for names, t in _HEADER_KINDS if norm in names), None)
    if target is None and norm in fields:
        target = f"field:{fields[norm]}"
    return target


def _header_words(header: str) -> list[str]:
    """"homePhone #2" -> ["home", "phone"]: camelCase split, punctuation and digits dropped."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header)
    return [w for w in re.split(r"[^\w]+|_|\d+", _norm(spaced)) if w]


def _word_target(header: str) -> str | None:
    words = _header_words(header)
    for names, qualifiers, target in _WORD_KINDS:
        core = [w for w in words if w not in qualifiers]
        if core and all(w in names for w in core):
            return target
    return None


def generate_mapping(
    headers: Sequence[str],
    account: Account,
    *,
    default_country: str | None,
    header_row: int | None = None,
) -> tuple[str, list[str]]:
    """TOML text of a mapping for these headers, and the headers it could not map.

    `header_row` (the row the reader found the header on) is written when it is not row 1."""
    problems: list[str] = []
    region = _resolve_country(default_country, problems)
    _raise_problems(problems, None)
    guessed = guess_targets(headers, account)
    unmapped = [h for h in headers if h.strip() and h not in guessed
                and h.strip().lower() not in ERRORS_FILE_COLUMNS]
    lines = [_GENERATED_INTRO, "[columns]"]
    lines += [f"{_toml_str(h)} = {_toml_str(t)}" for h, t in guessed.items()]
    if not any(t in ("id", "phone") for t in guessed.values()):
        lines.append('# No column looks like a phone or a contact id: map one: "Tel" = "phone"')
    if unmapped:
        lines.append("# Not mapped (ignored by sync); map them to a target to use them:")
        lines += [f"# {_toml_str(h)} = \"field:...\"" for h in unmapped]
    country = f"default_country = {_toml_str(region)}" if region else '# default_country = "GB"'
    lines += [
        "",
        "[options]",
        f"{country}  # region for national-format numbers like 07700 900123",
        'blank = "keep"  # keep | clear: what an empty cell means',
        'groups = "add"  # add | exact: exact also removes the contact from unlisted lists',
    ]
    if header_row not in (None, 1):
        lines.append(f"header_row = {header_row}  # the column names, below a title or notes")
    lines.append("")
    return "\n".join(lines), unmapped
