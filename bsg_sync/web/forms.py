"""The mapping page's form: one target per column, pre-filled, and turned into mapping TOML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bsg_sync import mappingfile
from bsg_sync.errors import ConfigError
from bsg_sync.models import Account
from bsg_sync.web.columns import field_type_word
from bsg_sync.web.countries import read_country

IGNORE = "ignore"
SIMPLE_CHOICES = (("phone", "Phone number"), ("id", "BSG contact id"), ("groups", "Lists"))


@dataclass(frozen=True)
class ColumnChoice:
    """One row of the mapping form."""

    index: int
    header: str
    target: str  # ignore | id | phone | groups | field:<name>
    clear: bool  # an empty cell clears the value


@dataclass(frozen=True)
class MappingForm:
    columns: tuple[ColumnChoice, ...]
    default_country: str
    groups_mode: str  # add | exact
    create_missing: bool


def target_choices(account: Account) -> list[tuple[str, str]]:
    """(value, label) of every dropdown option, "ignore" first."""
    fields = [
        (f"field:{f.name}", f"Custom field: {f.name} ({field_type_word(f.type)})")
        for f in account.fields
    ]
    return [(IGNORE, "Ignore this column"), *SIMPLE_CHOICES, *fields]


def target_types(account: Account) -> dict[str, str]:
    """Each dropdown value's type as the page says it ("date", "phone number", ...)."""
    simple = {"phone": "phone number", "id": "whole number", "groups": "list names"}
    fields = {f"field:{f.name}": f"{field_type_word(f.type)} field" for f in account.fields}
    return {IGNORE: "not sent", **simple, **fields}


def _as_choice(value: str | int, account: Account) -> str:
    """A mapping file's target as a dropdown value (field ids become field:<name>)."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        field_id = int(value)
        return next((f"field:{f.name}" for f in account.fields if f.id == field_id), IGNORE)
    word = value.strip()
    if word.lower() in ("id", "phone", "groups"):
        return word.lower()
    if word.lower().startswith("field:"):
        name = word[len("field:") :].strip()
        if name.isdigit():
            return _as_choice(int(name), account)
        return next((f"field:{f.name}" for f in account.fields if f.name == name), IGNORE)
    return IGNORE


def prefill(
    headers: Sequence[str], account: Account, saved: tuple[str, bool] | None
) -> MappingForm:
    """The saved mapping for this header set, else the one `bsg-sync init` would write."""
    raw = None
    if saved is not None:
        try:
            raw = mappingfile.parse_mapping(saved[0])
        except ConfigError:
            raw = None
    if raw is None:
        text, _unmapped = mappingfile.generate_mapping(headers, account, default_country=None)
        raw = mappingfile.parse_mapping(text)
    # the saved layout matches however the columns are ordered or capitalised this time
    targets = {_loose(h): v for h, v in raw.columns.items()}
    clears = {_loose(h) for h, b in raw.blanks.items() if b == "clear"}
    columns = tuple(
        ColumnChoice(
            i,
            h,
            _as_choice(targets[_loose(h)], account) if _loose(h) in targets else IGNORE,
            _loose(h) in clears,
        )
        for i, h in enumerate(headers)
    )
    options = raw.options
    return MappingForm(
        columns,
        str(options.get("default_country", "")),
        "exact" if options.get("groups") == "exact" else "add",
        saved[1] if saved is not None else False,
    )


def read_form(form: Mapping[str, str], headers: Sequence[str], account: Account) -> MappingForm:
    """The posted form; ConfigError for a column not in the sheet or a target not offered."""
    allowed = {value for value, _label in target_choices(account)}
    problems = []
    columns = []
    for i, header in enumerate(headers):
        posted = form.get(f"header-{i}")
        if posted is not None and posted != header:
            problems.append(f"column '{posted}' is not in the sheet (column {i + 1} is '{header}')")
            continue
        target = form.get(f"target-{i}", IGNORE)
        if target not in allowed:
            problems.append(f"column '{header}': '{target}' is not a target this account offers")
            continue
        columns.append(ColumnChoice(i, header, target, form.get(f"clear-{i}") == "on"))
    extra = sorted(
        k for k in form if k.startswith("header-") and not _index_ok(k[7:], len(headers))
    )
    problems += [f"column '{form[k]}' is not in the sheet" for k in extra]
    country = read_country(form.get("default_country", ""))
    if country is None:
        problems.append(
            f"“{form.get('default_country', '').strip()}” is not a country this page knows; "
            "choose the country from the list"
        )
    if problems:
        raise ConfigError("; ".join(problems))
    return MappingForm(
        tuple(columns),
        country or "",
        "exact" if form.get("groups_mode") == "exact" else "add",
        form.get("create_missing") == "on",
    )


def _loose(header: str) -> str:
    return " ".join(header.casefold().split())


def _index_ok(text: str, n: int) -> bool:
    return text.isdigit() and int(text) < n


def to_toml(form: MappingForm, header_row: int | None = None) -> str:
    """The mapping file `run_sync` reads (options that are not TOML keys stay out of it);
    `header_row`: the row the page read the header on, so the run reads the same table."""
    draft = mappingfile.MappingDraft(
        columns=tuple((c.header, c.target, c.clear) for c in form.columns if c.target != IGNORE),
        default_country=form.default_country or None,
        groups=form.groups_mode,
        header_row=header_row,
    )
    return mappingfile.render_mapping(draft, intro=mappingfile.WEB_INTRO)
