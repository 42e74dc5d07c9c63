"""Mapping files: parse, check against the sheet and the account, guess and write them."""

from __future__ import annotations

import difflib
import json
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from bsg_sync.errors import ConfigError, UsageError
from bsg_sync.models import (
    Account,
    Blank,
    ColumnMapping,
    ColumnTarget,
    GroupsMode,
    MappingOptions,
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


def normalise_name(text: str) -> str:
    """Case-, accent-, space- and underscore-insensitive form of a header or name."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[\s_\-.]+", " ", plain).split())


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'X'?' for the closest candidate, or '' when none is close."""
    by_norm: dict[str, str] = {}
    for cand in candidates:
        by_norm.setdefault(normalise_name(cand), cand)
    close = difflib.get_close_matches(normalise_name(word), list(by_norm), n=1, cutoff=0.6)
    return f"; did you mean '{by_norm[close[0]]}'?" if close else ""


def one_line(text: str) -> str:
    """Headers and keys may hold line breaks (a cell typed with Alt+Enter, a form feed): shown
    escaped, each problem stays on its line."""
    return "".join(repr(ch)[1:-1] if ch.splitlines() != [ch] else ch for ch in text)


def _raise_problems(problems: Sequence[str], source: Path | None) -> None:
    if not problems:
        return
    problems = [one_line(p) for p in problems]
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
        f"unknown table [{name}]{did_you_mean(name, TABLE_NAMES)}"
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
    if lost and not columns and not any(did_you_mean(k, headers) for k in lost):
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
    loose = [h for h in headers if normalise_name(h) == normalise_name(wanted)]
    if len(loose) == 1:
        return loose[0]
    if loose:
        problems.append(f"column '{key}' matches several columns: {', '.join(loose)}")
    else:
        problems.append(f"column '{key}' is not in the sheet{did_you_mean(key, headers)}")
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
    hint = did_you_mean(word, [*SIMPLE_TARGETS, *(f"field:{f.name}" for f in account.fields)])
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
    hint = did_you_mean(key, names.values())
    if hint:
        best = next(k for k, v in names.items() if f"'{v}'" in hint)
        hint = f"; did you mean {best}?"
    problems.append(f"column '{key}': unknown field id {field_id}{hint}")
    return None


def _field_by_name(
    key: str, name: str, account: Account, problems: list[str]
) -> tuple[TargetKind, int | None] | None:
    exact = [f for f in account.fields if f.name == name]
    loose = exact or [f for f in account.fields if normalise_name(f.name) == normalise_name(name)]
    if len(loose) == 1:
        return TargetKind.FIELD, loose[0].id
    if loose:
        problems.append(f"column '{key}': field name '{name}' matches several fields")
    else:
        hint = did_you_mean(name, [f.name for f in account.fields])
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
            problems.append(f"unknown option '{name}'{did_you_mean(name, OPTION_NAMES)}")
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


# --------------------------------------------------------------------------- generating

PHONE_HEADERS = frozenset(normalise_name(h) for h in (
    "phone", "phones", "mobile", "msisdn", "tel", "tel.", "telephone", "phone number",
    "phone no", "mobile phone", "mobile number", "mobile no", "cell", "cell phone",
    "cellphone", "handy", "handynummer", "telefon", "telefonnummer", "téléphone", "portable",
    "numero", "número", "numéro", "telefono", "teléfono", "móvil", "gsm", "whatsapp", "mob",
    "contact phone", "contact number",
))
ID_HEADERS = frozenset(normalise_name(h) for h in (
    "id", "contact id", "contactid", "contact_id", "bsg id", "bsg contact id",
))
GROUPS_HEADERS = frozenset(normalise_name(h) for h in (
    "lists", "list", "groups", "group", "segments", "segment", "contact lists", "listas",
    "listen",
))
_HEADER_KINDS = ((ID_HEADERS, "id"), (PHONE_HEADERS, "phone"), (GROUPS_HEADERS, "groups"))
# A header not in the lists above still names a phone or an id when, split into words
# (camelCase, punctuation), its words are such words plus qualifiers: "Contact Phone Number",
# "homePhone", "Work phone #", "Phone 2", "BSG contact id".
_PHONE_WORDS = frozenset(normalise_name(w) for w in (
    "phone", "phones", "mobile", "msisdn", "tel", "telephone", "cell", "cellphone", "handy",
    "handynummer", "telefon", "telefonnummer", "téléphone", "portable", "telefono", "teléfono",
    "móvil", "movil", "celular", "gsm", "whatsapp", "mob", "sms",
))
_PHONE_QUALIFIERS = frozenset(normalise_name(w) for w in (
    "contact", "number", "num", "no", "nr", "nummer", "numero", "número", "numéro", "de", "du",
    "of", "home", "work", "office", "business", "private", "personal", "primary", "main",
    "direct", "intl", "international", "e164",
))
_ID_QUALIFIERS = frozenset(normalise_name(w) for w in ("contact", "bsg", "record"))
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
    fields = {normalise_name(f.name): f.name for f in account.fields}
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
    norm = normalise_name(header)
    target = next((t for names, t in _HEADER_KINDS if norm in names), None)
    if target is None and norm in fields:
        target = f"field:{fields[norm]}"
    return target


def _header_words(header: str) -> list[str]:
    """"homePhone #2" -> ["home", "phone"]: camelCase split, punctuation and digits dropped."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header)
    return [w for w in re.split(r"[^\w]+|_|\d+", normalise_name(spaced)) if w]


def _word_target(header: str) -> str | None:
    words = _header_words(header)
    for names, qualifiers, target in _WORD_KINDS:
        core = [w for w in words if w not in qualifiers]
        if core and all(w in names for w in core):
            return target
    return None


@dataclass(frozen=True)
class MappingDraft:
    """What a mapping file to be written says: `init`'s guesses, or the web page's form."""

    columns: tuple[tuple[str, str, bool], ...]  # (header, target, an empty cell clears it)
    unmapped: tuple[str, ...] = ()  # listed as comments, to be mapped by hand
    default_country: str | None = None
    groups: str = "add"  # add | exact
    header_row: int | None = None  # written when set: the table starts below a title


WEB_INTRO = "# bsg-sync mapping file, written by the bsg-sync web page.\n"


def render_mapping(draft: MappingDraft, intro: str = _GENERATED_INTRO) -> str:
    """The TOML text of a mapping file: the one writer for `init` and the web page."""
    lines = [intro, "[columns]"]
    for header, target, clears in draft.columns:
        value = (f'{{ target = {_toml_str(target)}, blank = "clear" }}' if clears
                 else _toml_str(target))
        lines.append(f"{_toml_str(header)} = {value}")
    if not any(t in ("id", "phone") for _h, t, _c in draft.columns):
        lines.append('# No column looks like a phone or a contact id: map one: "Tel" = "phone"')
    if draft.unmapped:
        lines.append("# Not mapped (ignored by sync); map them to a target to use them:")
        lines += [f"# {_toml_str(h)} = \"field:...\"" for h in draft.unmapped]
    region = draft.default_country
    country = f"default_country = {_toml_str(region)}" if region else '# default_country = "GB"'
    lines += [
        "",
        "[options]",
        f"{country}  # region for national-format numbers like 07700 900123",
        'blank = "keep"  # keep | clear: what an empty cell means',
        f"groups = {_toml_str(draft.groups)}  # add | exact: exact also removes the contact "
        "from unlisted lists",
    ]
    if draft.header_row is not None:
        lines.append(f"header_row = {int(draft.header_row)}  # the column names, below a title "
                     "or notes")
    lines.append("")
    return "\n".join(lines)


def draft_mapping(
    headers: Sequence[str],
    account: Account,
    *,
    default_country: str | None,
    header_row: int | None = None,
) -> MappingDraft:
    """The mapping `init` proposes for these headers: guessed targets, the rest listed.

    `header_row` (the row the reader found the header on) is kept when it is not row 1."""
    problems: list[str] = []
    region = _resolve_country(default_country, problems)
    _raise_problems(problems, None)
    guessed = guess_targets(headers, account)
    unmapped = [h for h in headers if h.strip() and h not in guessed
                and h.strip().lower() not in ERRORS_FILE_COLUMNS]
    return MappingDraft(
        columns=tuple((h, t, False) for h, t in guessed.items()),
        unmapped=tuple(unmapped),
        default_country=region,
        header_row=None if header_row in (None, 1) else header_row,
    )


def generate_mapping(
    headers: Sequence[str],
    account: Account,
    *,
    default_country: str | None,
    header_row: int | None = None,
) -> tuple[str, list[str]]:
    """TOML text of a mapping for these headers, and the headers it could not map."""
    draft = draft_mapping(headers, account, default_country=default_country,
                          header_row=header_row)
    return render_mapping(draft), list(draft.unmapped)


# --------------------------------------------------------------------------- init


@dataclass(frozen=True)
class InitDone:
    """What `init_mapping` wrote, for the command to tell."""

    path: Path
    draft: MappingDraft
    header_row: int  # the row the header was read from
    online: bool  # the account's custom fields were read

    @property
    def guessed(self) -> dict[str, str]:
        return {h: t for h, t, _clears in self.draft.columns}

    @property
    def names_a_contact(self) -> bool:
        """A column maps to the phone or the contact id."""
        return any(t in ("id", "phone") for t in self.guessed.values())


def init_mapping(
    sheet: Path,
    target: Path,
    *,
    force: bool = False,
    sheet_name: str | None = None,
    encoding: str | None = None,
    default_country: str | None = None,
    load_account: Callable[[], Account] | None = None,
) -> InitDone:
    """`bsg-sync init`: read the sheet's headers, guess a mapping (custom fields from
    `load_account`, if given) and write it to `target`; a file there needs `force`."""
    from bsg_sync.isolate import read_sheet_isolated

    if target.exists() and not force:
        raise UsageError(f"{target} already exists; pass --force to overwrite it")
    read = read_sheet_isolated(sheet, sheet=sheet_name, encoding=encoding)
    account = load_account() if load_account is not None else Account()
    draft = draft_mapping(read.headers, account, default_country=default_country,
                          header_row=read.header_row)
    try:
        target.write_text(render_mapping(draft), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    return InitDone(target, draft, read.header_row, load_account is not None)
