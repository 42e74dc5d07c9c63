"""Excel number formats -> the text Excel shows for a number (pure; one renderer for every workbook).

`render_number(value, code)` takes a cell's number (a date is its serial) and its format code
(`builtin_format(id)` for the ids 0-49 that files store without a code) and returns the text.
Where Excel's output depends on the column width, the locale or the screen, or the project's
contract (SPEC §3) fixes the text, these are the choices made:

- General: 15 significant digits (`0.1+0.2` -> `0.3`, `274.66`); an integer of up to 15 digits
  is printed whole (a phone stored as a number keeps all its digits, as Excel shows it in a wide
  enough column); from 1E+15 up, and below 1E-04, scientific as Excel writes it
  (`1.23456789012346E+17`, `1E-05`). Excel's narrow-column `4.48E+11` depends on a width that
  is not known here. Every format rounds from those 15 digits, half away from zero.
- Dates: a format with a date part shows `YYYY-MM-DD`, with `HH:MM:SS` added when the format also
  has a time part and the value has a time (SPEC §3; seconds rounded half up as Excel rounds,
  not truncated); a date-only format on a value with a time shows only the date. A format with
  a time part only (`h:mm`, `h:mm:ss AM/PM`, `[h]:mm` elapsed, `mm:ss.0`) is rendered as
  written. 1900 (with Excel's 29 Feb 1900) and 1904 date systems. Serials Excel cannot show as a
  date (negative, > 2958465) show as the number in General, where Excel shows `#######`.
- `*x` fill characters render nothing and `_x` a single space; surrounding spaces are trimmed
  by the caller (SPEC: trimmed whitespace). Colours (`[Red]`) and locale tags (`[$-409]`) are
  ignored; `[$€-407]` shows its symbol. Conditions (`[<1000]`) pick the section; a negative
  value in a conditional section keeps its minus sign unless the condition is itself `<`/`<=`
  a non-positive number.
- Separators are en-US (`,` groups thousands, `.` is the decimal point) whatever the locale the
  file was written in: Excel shows the reader's locale, not the file's (a Russian `# ##0,00` is
  stored as `#,##0.00`).
- Fractions take the closest fraction whose denominator fits the placeholders (or the fixed
  denominator of `?/8`). Scientific formats with `#` in the integer part use engineering
  exponents (`##0.0E+0`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from functools import lru_cache
from typing import Any, NamedTuple

MAX_SERIAL = 2958465  # 9999-12-31, the last day Excel shows as a date
_EPOCH_1900 = dt.date(1899, 12, 30)
_EPOCH_1904 = dt.date(1904, 1, 1)

BUILTIN_FORMATS: dict[int, str] = {
    0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00",
    5: '"$"#,##0_);\\("$"#,##0\\)', 6: '"$"#,##0_);[Red]\\("$"#,##0\\)',
    7: '"$"#,##0.00_);\\("$"#,##0.00\\)', 8: '"$"#,##0.00_);[Red]\\("$"#,##0.00\\)',
    9: "0%", 10: "0.00%", 11: "0.00E+00", 12: "# ?/?", 13: "# ??/??",
    14: "m/d/yyyy", 15: "d-mmm-yy", 16: "d-mmm", 17: "mmm-yy", 18: "h:mm AM/PM",
    19: "h:mm:ss AM/PM", 20: "h:mm", 21: "h:mm:ss", 22: "m/d/yyyy h:mm",
    **{i: "m/d/yyyy" for i in (27, 28, 29, 30, 31, 36, 50, 51, 52, 53, 54, 57, 58)},
    32: "h:mm", 33: "h:mm", 34: "h:mm:ss", 35: "h:mm:ss", 55: "h:mm", 56: "h:mm:ss",
    37: "#,##0 ;(#,##0)", 38: "#,##0 ;[Red](#,##0)", 39: "#,##0.00;(#,##0.00)",
    40: "#,##0.00;[Red](#,##0.00)",
    41: '_(* #,##0_);_(* \\(#,##0\\);_(* "-"_);_(@_)',
    42: '_("$"* #,##0_);_("$"* \\(#,##0\\);_("$"* "-"_);_(@_)',
    43: '_(* #,##0.00_);_(* \\(#,##0.00\\);_(* "-"??_);_(@_)',
    44: '_("$"* #,##0.00_);_("$"* \\(#,##0.00\\);_("$"* "-"??_);_(@_)',
    45: "mm:ss", 46: "[h]:mm:ss", 47: "mmss.0", 48: "##0.0E+0", 49: "@",
}  # fmt: skip


def builtin_format(format_id: int) -> str:
    """The en-US code of a built-in format id (General for an id Excel does not define)."""
    return BUILTIN_FORMATS.get(format_id, "General")


GENERAL_CODES = frozenset({"general", "@", ""})  # codes that show a number as General


def has_format(code: str) -> bool:
    """Whether a format code changes how a number reads (not General, not text)."""
    return code.strip().lower() not in GENERAL_CODES


def xlsx_style_codes(styles_xml: bytes) -> list[str]:
    """Number format code per cell style (cellXfs) of an XLSX `styles.xml` (transitional or
    Strict OOXML): its custom `numFmts`, else the built-in code of the id."""
    from xml.etree import ElementTree

    root = ElementTree.fromstring(styles_xml)
    custom: dict[int, str] = {}
    xfs: list[ElementTree.Element] = []
    for node in root:
        tag = node.tag.rsplit("}", 1)[-1]
        if tag == "numFmts":
            for fmt in node:
                custom[int(fmt.get("numFmtId", "0") or 0)] = fmt.get("formatCode", "")
        elif tag == "cellXfs":
            xfs = list(node)
    out = []
    for xf in xfs:
        fid = int(xf.get("numFmtId", "0") or 0)
        out.append(custom.get(fid) or builtin_format(fid))
    return out


# --------------------------------------------------------------------------- parsing


class Token(NamedTuple):
    kind: str  # lit digit point comma percent exp slash at general date elapsed ampm subsec
    text: str


class Section(NamedTuple):
    kind: str  # general | number | date | text | empty
    tokens: tuple[Token, ...]
    condition: tuple[str, float] | None


_CONDITION = re.compile(r"\[(<=|>=|<>|<|>|=)\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\]")
_DATE_LETTERS = "ymdhsYMDHS"
_DATE_KINDS = {"date", "elapsed", "ampm", "subsec"}


@lru_cache(maxsize=1024)
def parse_format(code: str) -> tuple[Section, ...]:
    """A format code split into its sections, each a list of tokens (cached per code)."""
    return tuple(_parse_section(part) for part in _split_sections(code))


def _split_sections(code: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(code):
        ch = code[i]
        if ch == '"':
            end = code.find('"', i + 1)
            end = len(code) if end < 0 else end
            current.append(code[i : end + 1])
            i = end + 1
            continue
        if ch in "\\_*" and i + 1 < len(code):
            current.append(code[i : i + 2])
            i += 2
            continue
        if ch == ";":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _parse_section(text: str) -> Section:
    condition = None
    match = _CONDITION.search(text)
    if match:
        condition = (match.group(1), float(match.group(2)))
        text = text[: match.start()] + text[match.end() :]
    tokens = _tokenize(text)
    kinds = {t.kind for t in tokens}
    if not tokens:
        kind = "empty"
    elif kinds & _DATE_KINDS:
        kind = "date"
        tokens = _date_tokens(tokens)
    elif "general" in kinds:
        kind = "general"
    elif "at" in kinds and "digit" not in kinds:
        kind = "text"
    elif "digit" in kinds:
        kind = "number"
    else:
        kind = "text" if "at" in kinds else "number"
    return Section(kind, tuple(tokens), condition)


def _tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        low = text[i : i + 7].lower()
        if ch == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end
            out.append(Token("lit", text[i + 1 : end]))
            i = end + 1
        elif ch == "\\" and i + 1 < n:
            out.append(Token("lit", text[i + 1]))
            i += 2
        elif ch == "_" and i + 1 < n:
            out.append(Token("lit", " "))
            i += 2
        elif ch == "*" and i + 1 < n:
            i += 2
        elif ch == "[":
            end = text.find("]", i)
            end = n if end < 0 else end
            out.extend(_bracket(text[i + 1 : end]))
            i = end + 1
        elif low == "general":
            out.append(Token("general", ""))
            i += 7
        elif low.startswith("am/pm"):
            out.append(Token("ampm", text[i : i + 5]))
            i += 5
        elif low.startswith("a/p"):
            out.append(Token("ampm", text[i : i + 3]))
            i += 3
        elif ch in "0#?":
            out.append(Token("digit", ch))
            i += 1
        elif ch in _DATE_LETTERS:
            j = i
            while j < n and text[j].lower() == ch.lower():
                j += 1
            out.append(Token("date", text[i:j].lower()))
            i = j
        elif ch in "eE" and i + 1 < n and text[i + 1] in "+-":
            out.append(Token("exp", text[i + 1]))
            i += 2
        else:
            kind = {".": "point", ",": "comma", "%": "percent", "/": "slash", "@": "at"}
            out.append(Token(kind.get(ch, "lit"), ch))
            i += 1
    return out


def _bracket(inner: str) -> list[Token]:
    low = inner.lower()
    if low and low[0] in "hms" and set(low) == {low[0]}:
        return [Token("elapsed", low)]
    if inner.startswith("$"):
        symbol = inner[1:].split("-", 1)[0]
        return [Token("lit", symbol)] if symbol else []
    return []  # colours, [DBNum1], locale tags


def _date_tokens(tokens: list[Token]) -> list[Token]:
    """Tell minutes from months (`m` after an hour or before seconds) and mark `.0` subseconds."""
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "point" and i + 1 < len(tokens) and tokens[i + 1] == Token("digit", "0"):
            j = i + 1
            while j < len(tokens) and tokens[j] == Token("digit", "0"):
                j += 1
            out.append(Token("subsec", str(j - i - 1)))
            i = j
            continue
        if tok.kind == "date" and tok.text[0] == "m" and len(tok.text) <= 2:
            tok = Token("date", "M" * len(tok.text) if _is_minute(tokens, i) else tok.text)
        elif tok.kind == "digit":
            tok = Token("lit", tok.text)
        out.append(tok)
        i += 1
    return out


def _is_minute(tokens: list[Token], i: int) -> bool:
    for j in range(i - 1, -1, -1):
        if tokens[j].kind in ("date", "elapsed"):
            if tokens[j].text[0] == "h":
                return True
            break
    for j in range(i + 1, len(tokens)):
        if tokens[j].kind in ("date", "elapsed"):
            return tokens[j].text[0] == "s"
    return False


# --------------------------------------------------------------------------- public


def render_number(value: float, code: str = "General", *, date1904: bool = False) -> str:
    """The text Excel shows for `value` in a cell whose number format is `code`."""
    if not code or code == "General":
        return general(value)
    if isinstance(value, float) and not math.isfinite(value):
        return general(value)
    fast = _fast_renderer(code)
    if fast is not None:
        text = fast(value, date1904)
        if text is not None:
            return text
    return render_sections(value, code, date1904=date1904)


def render_sections(value: float, code: str, *, date1904: bool = False) -> str:
    """The general renderer (render_number takes a fast path for the common shapes)."""
    section, signed = _pick_section(parse_format(code), value)
    magnitude = value if signed else abs(value)
    if section.kind == "date":
        return _render_date(magnitude, section, date1904)
    if section.kind in ("general", "text", "empty"):
        body = "" if section.kind == "empty" else _render_general(abs(magnitude), section)
    else:
        body = _render_numeric(abs(magnitude), section.tokens)
    return f"-{body}" if magnitude < 0 else body


def render_text(text: str, code: str) -> str:
    """A text cell in a format with a text section (`"Name: "@`): the section's literals kept."""
    sections = parse_format(code)
    section = next((s for s in sections if s.kind == "text"), None)
    if section is None:
        return text
    return "".join(text if t.kind == "at" else t.text for t in section.tokens)


def is_date_format(code: str) -> bool:
    """Whether the format shows a number as a date or a time (its first section decides)."""
    return bool(code) and code != "General" and parse_format(code)[0].kind == "date"


def general(value: float) -> str:
    """Excel's General: integers of up to 15 digits whole, else 15 significant digits."""
    if (isinstance(value, int) or value.is_integer()) and abs(value) < 1e15:
        return str(int(value))
    if not math.isfinite(value):
        return "#NUM!"
    text = f"{value:.15g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}E{exponent[0]}{int(exponent[1:]):02d}"


_G15 = "{:.15g}".format


def general_column(values: Sequence[float]) -> list[str]:
    """`general` of each float, formatted in C: one format call a cell and one search of the
    joined texts; a column holding what the plain format shows otherwise (an exponent, -0,
    inf or nan) goes cell by cell through `general`."""
    texts = list(map(_G15, values))
    joined = "\x00" + "\x00".join(texts) + "\x00"
    if "e" in joined or "n" in joined or "\x00-0\x00" in joined:
        return list(map(general, values))
    return texts


class ErrorText(str):
    """An error cell's text (`#N/A`, `#DIV/0!`, ...): shown as Excel shows it, never sent."""

    __slots__ = ()


ERROR_CODES = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")


def render_cell(value: Any, code: str | None = None, date1904: bool = False) -> str:
    """One cell value (as python-calamine or xlrd gives it) as the text Excel shows."""
    if type(value) is float:
        if code is None:
            return general(value)
        return render_number(value, code, date1904=date1904).strip()
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return render_number(value, code or "General", date1904=date1904).strip()
    if isinstance(value, (dt.datetime, dt.date, dt.time, dt.timedelta)):
        return _render_temporal(value, code)
    return "" if value is None else str(value).strip()


def _render_temporal(value: dt.datetime | dt.date | dt.time | dt.timedelta, code: str | None) -> str:
    """Dates that calamine already converted: through the cell's date format when known."""
    shape = date_shape(code) if code is not None else None
    if isinstance(value, dt.date) and shape in (None, "date", "datetime"):
        return _iso_of(value, shape)
    serial = to_serial(value)
    if code is not None and is_date_format(code):
        return render_number(serial, code).strip()
    if isinstance(value, dt.timedelta):
        return render_number(serial, "[h]:mm:ss")
    if isinstance(value, dt.time):
        return render_number(serial, "hh:mm:ss")
    if isinstance(value, dt.datetime) and round(serial * 86400) % 86400:
        return render_number(serial, "yyyy-mm-dd hh:mm:ss")
    return render_number(serial, "yyyy-mm-dd")


@lru_cache(maxsize=1024)
def cell_renderer(code: str, date1904: bool = False) -> Callable[[Any], str]:
    """render_cell for one format code, with its fast paths looked up once."""
    fast = _fast_renderer(code)
    shape = date_shape(code)

    def render(value: Any) -> str:
        kind = type(value)
        if kind is float and fast is not None:
            text = fast(value, date1904)
            if text is not None:
                return text.strip()
        elif (kind is dt.datetime or kind is dt.date) and shape in ("date", "datetime"):
            return _iso_of(value, shape)
        elif kind is str:
            return render_text(value.strip(), code).strip()
        return render_cell(value, code, date1904)

    return render


def _iso_of(value: dt.date, shape: str | None) -> str:
    """A date (or date-time, rounded half up to the second) in the SPEC's ISO form."""
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    if value.microsecond >= 500_000:
        value += dt.timedelta(seconds=1)
    if shape == "date" or value.time().replace(microsecond=0) == dt.time(0):
        return value.date().isoformat()
    return value.strftime("%Y-%m-%d %H:%M:%S")


@lru_cache(maxsize=1024)
def date_shape(code: str) -> str | None:
    """"date", "datetime" or "time" for a date/time format (its first section), else None."""
    if not is_date_format(code):
        return None
    tokens = parse_format(code)[0].tokens
    letters = {t.text[0] for t in tokens if t.kind == "date"}
    has_date = bool(letters & {"y", "d", "m"})
    has_time = bool(letters & {"h", "M", "s"}) or any(
        t.kind in ("elapsed", "ampm", "subsec") for t in tokens
    )
    if has_date:
        return "datetime" if has_time else "date"
    return "time"


FastRenderer = Callable[[float, bool], "str | None"]


@lru_cache(maxsize=1024)
def _fast_renderer(code: str) -> FastRenderer | None:
    """A quick renderer for one-section fixed-decimal, zero-padded and date-only formats."""
    sections = parse_format(code)
    if len(sections) != 1 or sections[0].condition is not None:
        return None
    if sections[0].kind == "date":
        return _fast_date if date_shape(code) == "date" else None
    return _fixed_renderer(sections[0].tokens) if sections[0].kind == "number" else None


def _fast_date(serial: float, date1904: bool) -> str | None:
    if serial < 0 or serial > MAX_SERIAL - (1462 if date1904 else 0):
        return None
    seconds = (Decimal(repr(float(serial))) * 86400).to_integral_value(ROUND_HALF_UP)
    return _iso_day(int(seconds) // 86400, date1904)


def _fixed_renderer(tokens: tuple[Token, ...]) -> FastRenderer | None:
    """`0.00`, `#,##0.00`, `00000`, `"$"0.00`: literals around plain digit placeholders."""
    kinds = [t.kind for t in tokens]
    body = [i for i, k in enumerate(kinds) if k in ("digit", "comma", "point")]
    if not body or any(k != "lit" for i, k in enumerate(kinds) if not body[0] <= i <= body[-1]):
        return None
    middle = tokens[body[0] : body[-1] + 1]
    shape = "".join("," if t.kind == "comma" else t.text for t in middle)
    match = re.fullmatch(r"(#*(?:,#+)*,?#*)(0+)(\.0*)?", shape)
    if match is None or (tokens[body[-1]].kind == "comma"):
        return None
    grouping, zeros = "," in match.group(1), len(match.group(2))
    if grouping and zeros > 3:
        return None
    places = len(match.group(3) or ".") - 1
    point = bool(match.group(3))
    width = zeros + (places + 1 if places else 0)
    spec = f"0{width}{',' if grouping else ''}.{places}f"
    quantum = Decimal(1).scaleb(-places)
    before = "".join(t.text for t in tokens[: body[0]])
    after = "".join(t.text for t in tokens[body[-1] + 1 :])
    if point and not places:
        after = "." + after

    def render(value: float, _date1904: bool) -> str | None:
        size = abs(value)
        if size >= 1e15:
            return None
        number = Decimal(f"{size:.15g}").quantize(quantum, ROUND_HALF_UP)
        text = before + format(number, spec) + after
        return "-" + text if value < 0 else text

    return render


def to_serial(value: dt.datetime | dt.date | dt.time | dt.timedelta) -> float:
    """Excel's 1900-system serial of a date or time (a duration or a time of day: its days)."""
    if isinstance(value, dt.timedelta):
        return value.total_seconds() / 86400
    if isinstance(value, dt.time):
        seconds = value.hour * 3600 + value.minute * 60 + value.second
        return (seconds + value.microsecond / 1e6) / 86400
    day = value.date() if isinstance(value, dt.datetime) else value
    days = (day - _EPOCH_1900).days
    days = days - 1 if days < 61 else days  # before 1 Mar 1900 Excel counts a 29 Feb
    if isinstance(value, dt.datetime):
        return days + to_serial(value.time())
    return float(days)


# --------------------------------------------------------------------------- sections


def _pick_section(sections: tuple[Section, ...], value: float) -> tuple[Section, bool]:
    """The section that shows `value`, and whether it keeps the value's own minus sign."""
    numeric = [s for s in sections if s.kind != "text" or s.condition] or [sections[0]]
    if any(s.condition for s in numeric):
        return _pick_conditional(numeric, value)
    if value < 0 and len(numeric) >= 2:
        return numeric[1], False
    if value == 0 and len(numeric) >= 3:
        return numeric[2], False
    first = numeric[0]
    if first.kind == "text":
        return Section("general", (Token("general", ""),), None), True
    return first, True


def _pick_conditional(sections: list[Section], value: float) -> tuple[Section, bool]:
    for section in sections:
        if section.condition and _holds(section.condition, value):
            op, limit = section.condition
            return section, not (op in ("<", "<=") and limit <= 0)
    rest = [s for s in sections if not s.condition]
    return (rest[0] if rest else Section("general", (Token("general", ""),), None)), True


def _holds(condition: tuple[str, float], value: float) -> bool:
    op, limit = condition
    return {
        "<": value < limit, "<=": value <= limit, ">": value > limit,
        ">=": value >= limit, "=": value == limit, "<>": value != limit,
    }[op]  # fmt: skip


def _render_general(value: float, section: Section) -> str:
    return "".join(general(value) if t.kind in ("general", "at") else t.text for t in section.tokens)


# --------------------------------------------------------------------------- numbers


def _render_numeric(value: float, tokens: tuple[Token, ...]) -> str:
    with localcontext() as context:
        context.prec = 700  # room for every digit of 1.8E+308 and its decimals
        return _render_in_context(value, tokens)


def _render_in_context(value: float, tokens: tuple[Token, ...]) -> str:
    kinds = [t.kind for t in tokens]
    # Excel keeps 15 significant digits: 0.1+0.2 is 0.3 and 2.675 rounds to 2.68
    scaled = Decimal(f"{float(value):.15g}") * (Decimal(100) ** kinds.count("percent"))
    if "exp" in kinds:
        return _render_scientific(scaled, tokens)
    if "slash" in kinds and "digit" in kinds[kinds.index("slash") :]:
        return _render_fraction(scaled, tokens)
    if "slash" in kinds and _fixed_denominator(tokens) is not None:
        return _render_fraction(scaled, tokens)
    return _render_decimal(scaled, tokens)


def _split_point(tokens: tuple[Token, ...]) -> tuple[list[Token], list[Token]]:
    for i, tok in enumerate(tokens):
        if tok.kind == "point":
            return list(tokens[:i]), list(tokens[i:])
    return list(tokens), []


def _scaling(int_tokens: list[Token]) -> tuple[list[Token], int, bool]:
    """Drop the commas: trailing ones divide by 1000 each; one between digits groups thousands."""
    last_digit = max((i for i, t in enumerate(int_tokens) if t.kind == "digit"), default=-1)
    scale, grouping, out = 0, False, []
    for i, tok in enumerate(int_tokens):
        if tok.kind != "comma":
            out.append(tok)
        elif i > last_digit:
            if last_digit >= 0 and all(t.kind == "comma" for t in int_tokens[last_digit + 1 : i]):
                scale += 1
        elif any(t.kind == "digit" for t in int_tokens[:i]):
            grouping = True
    return out, scale, grouping


def _render_decimal(value: Decimal, tokens: tuple[Token, ...]) -> str:
    int_tokens, frac_tokens = _split_point(tokens)
    int_tokens, scale, grouping = _scaling(int_tokens)
    if frac_tokens:
        frac_tokens, frac_scale, _ = _scaling(frac_tokens)
        scale += frac_scale
    value /= Decimal(1000) ** scale
    places = sum(1 for t in frac_tokens if t.kind == "digit")
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    whole, _, frac = f"{rounded:f}".partition(".")
    whole = whole.lstrip("0")
    int_text = _fill_integer(whole, int_tokens, grouping)
    return int_text + _fill_fraction(frac, frac_tokens)


def _fill_integer(digits: str, tokens: list[Token], grouping: bool) -> str:
    """Fill 0/#/? placeholders from the right; surplus digits go at the first placeholder."""
    slots = [i for i, t in enumerate(tokens) if t.kind == "digit"]
    if not slots:
        return "".join(t.text for t in tokens)
    if grouping:
        return _fill_grouped(digits, tokens, slots)
    parts = [t.text for t in tokens]
    pos = len(digits)
    for slot in reversed(slots):
        ch = tokens[slot].text
        if pos > 0:
            pos -= 1
            parts[slot] = digits[pos]
        else:
            parts[slot] = {"0": "0", "?": " ", "#": ""}[ch]
    if pos > 0:
        parts[slots[0]] = digits[:pos] + parts[slots[0]]
    return "".join(parts)


def _fill_grouped(digits: str, tokens: list[Token], slots: list[int]) -> str:
    placeholders = "".join(tokens[i].text for i in slots)
    zeros = len(placeholders) - placeholders.index("0") if "0" in placeholders else 0
    padded = digits.rjust(zeros, "0")
    head = len(padded) % 3 or 3
    grouped = ",".join([padded[:head]] + [padded[i : i + 3] for i in range(head, len(padded), 3)])
    parts = [t.text for t in tokens]
    for slot in slots:
        parts[slot] = ""
    parts[slots[0]] = grouped
    return "".join(parts)


def _fill_fraction(frac: str, tokens: list[Token]) -> str:
    slots = [i for i, t in enumerate(tokens) if t.kind == "digit"]
    parts = [t.text for t in tokens]
    for n, slot in enumerate(slots):
        parts[slot] = frac[n]
    for slot in reversed(slots):  # trailing zeros: '#' drops them, '?' shows a space
        ch = tokens[slot].text
        if parts[slot] != "0" or ch == "0":
            break
        parts[slot] = " " if ch == "?" else ""
    return "".join(parts)


def _render_scientific(value: Decimal, tokens: tuple[Token, ...]) -> str:
    at = next(i for i, t in enumerate(tokens) if t.kind == "exp")
    mantissa_tokens, exp_tokens = tokens[:at], tokens[at + 1 :]
    int_tokens, _ = _split_point(mantissa_tokens)
    int_slots = [t.text for t in int_tokens if t.kind == "digit"] or ["0"]
    places = sum(1 for t in _split_point(mantissa_tokens)[1] if t.kind == "digit")
    exponent = 0 if value == 0 else math.floor(math.log10(value))
    step = len(int_slots) if "#" in int_slots and len(int_slots) > 1 else 1
    exponent = exponent - exponent % step if step > 1 else exponent - (len(int_slots) - 1)
    mantissa = (value.scaleb(-exponent)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    if value and mantissa >= Decimal(10) ** (len(int_slots) if step == 1 else step):
        exponent += step
        mantissa = value.scaleb(-exponent).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    text = _render_decimal(mantissa, mantissa_tokens)
    exp_digits = sum(1 for t in exp_tokens if t.kind == "digit")
    sign = "-" if exponent < 0 else ("+" if tokens[at].text == "+" else "")
    rest = "".join(t.text for t in exp_tokens if t.kind != "digit")
    return f"{text}E{sign}{abs(exponent):0{max(exp_digits, 1)}d}{rest}"


def _fixed_denominator(tokens: tuple[Token, ...]) -> int | None:
    at = next(i for i, t in enumerate(tokens) if t.kind == "slash")
    digits = ""
    for tok in tokens[at + 1 :]:
        if tok.kind == "lit" and tok.text.isdigit():
            digits += tok.text
        else:
            break
    return int(digits) if digits and int(digits) > 0 else None


def _render_fraction(value: Decimal, tokens: tuple[Token, ...]) -> str:
    at = next(i for i, t in enumerate(tokens) if t.kind == "slash")
    before, after = list(tokens[:at]), list(tokens[at + 1 :])
    num_start = at
    while num_start > 0 and before[num_start - 1].kind == "digit":
        num_start -= 1
    int_tokens, num_tokens = before[:num_start], before[num_start:]
    has_whole = any(t.kind == "digit" for t in int_tokens)
    whole = int(value) if has_whole else 0
    fixed = _fixed_denominator(tokens)
    den_slots = [t for t in after if t.kind == "digit"]
    exact = Fraction(value - whole)
    if fixed:
        top, bottom = round(exact * fixed), fixed
    else:
        best = exact.limit_denominator(10 ** max(len(den_slots), 1) - 1)
        top, bottom = best.numerator, best.denominator
    if has_whole and top == bottom:
        whole, top = whole + 1, 0
    fraction = Fraction(top, bottom)
    num_width, den_width = len(num_tokens), len(den_slots) or len(str(fixed))
    if fraction == 0 and has_whole:
        lead = _fill_integer(str(whole), int_tokens, False)
        return lead + " " * (num_width + 1 + den_width)
    lead = _fill_integer(str(whole).lstrip("0"), int_tokens, False) if has_whole else ""
    if has_whole and whole == 0:
        lead = "".join(" " if t.kind == "digit" else t.text for t in int_tokens)
    numerator = str(top).rjust(num_width)
    denominator = str(bottom)
    tail = "".join(t.text for t in after[len(den_slots) if den_slots else len(str(fixed)) :])
    return f"{lead}{numerator}/{denominator.ljust(den_width)}{tail}"


# --------------------------------------------------------------------------- dates


def _render_date(serial: float, section: Section, date1904: bool) -> str:
    limit = MAX_SERIAL - (1462 if date1904 else 0)
    if serial < 0 or serial > limit:
        return general(serial)
    sub = max((int(t.text) for t in section.tokens if t.kind == "subsec"), default=0)
    # Excel rounds half up to what the format shows, it does not truncate
    ticks = (Decimal(repr(float(serial))) * 86400 * 10**sub).to_integral_value(ROUND_HALF_UP)
    days, rest = divmod(int(ticks), 86400 * 10**sub)
    kinds = {t.text[0] for t in section.tokens if t.kind == "date"}
    has_date = bool(kinds & {"y", "d", "m"})
    has_time = bool(kinds & {"h", "M", "s"}) or any(
        t.kind in ("elapsed", "ampm", "subsec") for t in section.tokens
    )
    if has_date:
        text = _iso_day(days, date1904)
        if has_time and rest:  # SPEC §3: the time only when one is present
            seconds = rest // 10**sub
            text += f" {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        return text
    return _render_time(int(ticks), sub, section.tokens)


def _iso_day(days: int, date1904: bool) -> str:
    if date1904:
        return (_EPOCH_1904 + dt.timedelta(days=days)).isoformat()
    if days == 0:
        return "1900-01-00"  # Excel's day zero
    if days == 60:
        return "1900-02-29"  # Excel keeps Lotus 1-2-3's leap day
    offset = days + 1 if days < 60 else days
    return (_EPOCH_1900 + dt.timedelta(days=offset)).isoformat()


def _render_time(ticks: int, sub: int, tokens: tuple[Token, ...]) -> str:
    per_second = 10**sub
    total, fraction = divmod(ticks, per_second)
    hours, minutes, seconds = total // 3600 % 24, total // 60 % 60, total % 60
    twelve = any(t.kind == "ampm" for t in tokens)
    out: list[str] = []
    for tok in tokens:
        if tok.kind == "elapsed":
            count = {"h": total // 3600, "m": total // 60, "s": total}[tok.text[0]]
            out.append(str(count).rjust(len(tok.text), "0"))
        elif tok.kind == "date":
            value = {"h": (hours % 12 or 12) if twelve else hours, "M": minutes, "s": seconds}.get(
                tok.text[0], 0
            )
            out.append(str(value).rjust(min(len(tok.text), 2), "0"))
        elif tok.kind == "ampm":
            out.append(_am_pm(tok.text, hours))
        elif tok.kind == "subsec":
            out.append("." + str(fraction).rjust(sub, "0"))
        else:
            out.append(tok.text)
    return "".join(out)


def _am_pm(text: str, hours: int) -> str:
    if len(text) == 3:  # A/P keeps the case it was written in
        letter = text[2] if hours >= 12 else text[0]
        return letter
    return "PM" if hours >= 12 else "AM"


__all__ = [
    "BUILTIN_FORMATS",
    "ERROR_CODES",
    "ErrorText",
    "builtin_format",
    "cell_renderer",
    "date_shape",
    "general",
    "is_date_format",
    "parse_format",
    "render_cell",
    "render_number",
    "render_sections",
    "render_text",
    "to_serial",
]
