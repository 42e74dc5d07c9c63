"""What the mapping page tells of each column: sample values, what its values fit, and why not."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from bsg_sync.models import Account, Sheet

SAMPLES = 5
EXAMPLES = 3
MAX_TOKENS = 2000  # distinct list names kept per column (enough to check, bounded in memory)
# what a value must look like for a target; a text field takes anything
KINDS = ("date", "number", "id", "phone")
KIND_WORDS = {
    "date": "dates",
    "number": "numbers",
    "id": "BSG contact ids (whole numbers)",
    "phone": "phone numbers",
}
KIND_WORD = {
    "date": "a date",
    "number": "a number",
    "id": "a BSG contact id (a whole number)",
    "phone": "a phone number",
}
TYPE_WORDS = {"text": "text", "number": "number", "date": "date"}
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_DMY = re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4})")
_YMD = re.compile(r"(\d{4})[./](\d{1,2})[./](\d{1,2})")
_NUMBER = re.compile(r"[+-]?(?:\d+|\d{1,3}(?:[ ,.'\u00a0\u202f]\d{3})+)(?:[.,]\d+)?")
_PHONE = re.compile(r"[\d\s+().\-/]+")


@dataclass(frozen=True)
class ColumnProfile:
    """One column of the sheet as read: how many cells hold something, a few of its values,
    and per kind of target how many values do not fit it, with examples."""

    index: int
    header: str
    filled: int
    samples: tuple[str, ...]
    misfits: tuple[tuple[str, int, tuple[str, ...]], ...]  # (kind, count, examples)
    tokens: tuple[str, ...]  # distinct list names, for a column mapped to lists

    def misfit(self, kind: str) -> tuple[int, tuple[str, ...]]:
        return next(((n, ex) for k, n, ex in self.misfits if k == kind), (0, ()))


def fits(kind: str, value: str) -> bool:
    """Whether a cell's text is a value of this kind (a date, a number, an id, a phone)."""
    text = value.strip()
    if kind == "date":
        return _is_date(text)
    if kind == "number":
        return _NUMBER.fullmatch(text) is not None
    if kind == "id":
        return text.isascii() and text.isdigit() and int(text) > 0
    if kind == "phone":
        return _PHONE.fullmatch(text) is not None and sum(c.isdigit() for c in text) >= 6
    return True


def _is_date(text: str) -> bool:
    for pattern, order in ((_ISO, (0, 1, 2)), (_YMD, (0, 1, 2)), (_DMY, (2, 1, 0))):
        m = pattern.fullmatch(text)
        if m is None:
            continue
        parts = [int(g) for g in m.groups()]
        y, mo, d = (parts[i] for i in order)
        return _real_date(y, mo, d) or (order == (2, 1, 0) and _real_date(y, d, mo))
    return False


def _real_date(y: int, m: int, d: int) -> bool:
    try:
        date(y, m, d)
    except ValueError:
        return False
    return True


def profile_columns(sheet: Sheet) -> tuple[ColumnProfile, ...]:
    """Every column's profile, from the rows the reader gave (one pass over the sheet)."""
    return tuple(_profile(i, h, sheet) for i, h in enumerate(sheet.headers))


def _profile(index: int, header: str, sheet: Sheet) -> ColumnProfile:
    filled = 0
    samples: list[str] = []
    bad: dict[str, list[str]] = {k: [] for k in KINDS}
    counts = dict.fromkeys(KINDS, 0)
    tokens: dict[str, None] = {}
    for row in sheet.rows:
        value = row.values[index] if index < len(row.values) else ""
        if not value.strip():
            continue
        filled += 1
        if value not in samples and len(samples) < SAMPLES:
            samples.append(value)
        for kind in KINDS:
            if not fits(kind, value):
                counts[kind] += 1
                if value not in bad[kind] and len(bad[kind]) < EXAMPLES:
                    bad[kind].append(value)
        for token in re.split(r"[,;]", value):
            if token.strip() and len(tokens) < MAX_TOKENS:
                tokens.setdefault(token.strip(), None)
    misfits = tuple((k, counts[k], tuple(bad[k])) for k in KINDS if counts[k])
    return ColumnProfile(index, header, filled, tuple(samples), misfits, tuple(tokens))


# --------------------------------------------------------------------------- targets


def target_kind(target: str, account: Account) -> str | None:
    """The kind of value a dropdown target needs (None: any text)."""
    if target in ("id", "phone"):
        return target
    if target.startswith("field:"):
        name = target[len("field:") :]
        ftype = next((f.type for f in account.fields if f.name == name), "text")
        return ftype if ftype in ("date", "number") else None
    return None


def field_type_word(ftype: str) -> str:
    """A field's type as the page says it ("date", "number", "text")."""
    return TYPE_WORDS.get(ftype.lower(), ftype.lower() or "text")


def misfit_sentence(profile: ColumnProfile, kind: str) -> str:
    """"29 of 29 values are not dates (e.g. 000121, 000122)", or "" when all fit."""
    count, examples = profile.misfit(kind)
    if not count:
        return ""
    shown = ", ".join(f"“{e}”" for e in examples)
    what = f"is not {KIND_WORD[kind]}" if count == 1 else f"are not {KIND_WORDS[kind]}"
    return f"{count} of {profile.filled} values {what} (e.g. {shown})"


def type_warnings(
    targets: Sequence[tuple[int, str]], profiles: Sequence[ColumnProfile], account: Account
) -> list[str]:
    """One sentence per column whose values do not fit the target chosen for it."""
    by_index = {p.index: p for p in profiles}
    out = []
    for index, target in targets:
        kind = target_kind(target, account)
        profile = by_index.get(index)
        if kind is None or profile is None:
            continue
        problem = misfit_sentence(profile, kind) if _worth_warning(profile, kind) else ""
        if problem:
            out.append(f"Column “{profile.header}” goes to {target_label(target)}, but {problem}")
    return out


def _worth_warning(profile: ColumnProfile, kind: str) -> bool:
    """Only a date or number field stops before the preview: nothing else checks those values,
    while phones and ids are checked row by row and listed on the preview anyway (the mapping
    page still shows their misfits next to the column)."""
    count, _examples = profile.misfit(kind)
    return count > 0 and kind in ("date", "number")


def target_label(target: str) -> str:
    if target.startswith("field:"):
        return f"the field “{target[len('field:'):]}”"
    return {"id": "the BSG contact id", "phone": "the phone number", "groups": "the lists"}.get(
        target, target
    )


def _norm(text: str) -> str:
    """The loose form the mapping uses to match list names (case, accents, spacing)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[\s_\-.]+", " ", plain).split())


def unknown_lists(profile: ColumnProfile, account: Account) -> list[str]:
    """The list names in a column that BSG does not have (ids of existing lists are fine)."""
    names = {_norm(g.name) for g in account.groups}
    ids = {str(g.id) for g in account.groups}
    if not account.groups:
        return [t for t in profile.tokens if not t.isdigit()]
    return [t for t in profile.tokens if _norm(t) not in names and t not in ids]


def lists_sentence(account: Account) -> str:
    """The account's lists, said once, for a message about a list it does not have."""
    if not account.groups:
        return "BSG has no lists yet; create them in BSG first."
    names = ", ".join(f"“{g.name}”" for g in sorted(account.groups, key=lambda g: g.name.casefold()))
    return f"The lists in BSG are: {names}."


def unknown_list_error(header: str, unknown: Sequence[str], account: Account) -> str:
    """Why the preview cannot start: the sheet names lists BSG does not have."""
    shown = ", ".join(f"“{t}”" for t in unknown[:10])
    more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    return (
        f"Column “{header}” names list{'s' if len(unknown) > 1 else ''} that BSG does not "
        f"have: {shown}{more}. {lists_sentence(account)} Correct the sheet, or create the "
        "lists in BSG, then upload it again."
    )


def ignored_reason(profile: ColumnProfile | None, header: str, index: int) -> str:
    """Why a column left on "Ignore" sends nothing, in a few words (the reader names a column
    without a header "Column N")."""
    unnamed = not header.strip() or header == f"Column {index + 1}"
    if profile is not None and not profile.filled:
        return "it has no name and is empty" if unnamed else "it is empty"
    if unnamed:
        return "it has no name in the sheet; choose a field to send it"
    return "“Ignore this column” is chosen for it; choose a field to send it"


_FIELD_ID = re.compile(r"\bfield (\d+)\b")


def name_fields(message: str, account: Account) -> str:
    """A library message with "field 387714" said as the field's name."""
    names = {f.id: f.name for f in account.fields}

    def named(m: re.Match[str]) -> str:
        name = names.get(int(m.group(1)))
        return m.group(0) if name is None else f"the field “{name}”"

    return _FIELD_ID.sub(named, message)
