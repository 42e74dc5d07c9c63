"""OpenDocument (.ods) number styles -> Excel format codes per cell, error cells and the active tab."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO
from xml.etree import ElementTree

from bsg_sync.cellformats import CellFormats, local
from bsg_sync.numfmt import ERROR_CODES

_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
_NUMBER = "{urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0}"
_CALCEXT = "{urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0}"
_CONFIG = "{urn:oasis:names:tc:opendocument:xmlns:config:1.0}"
_DATA_STYLES = {
    "number-style", "percentage-style", "currency-style", "date-style", "time-style",
    "text-style", "boolean-style",
}  # fmt: skip
_MAX_REPEAT = 1 << 20


def is_encrypted(path: Path) -> bool:
    """Whether an ODS package's parts are encrypted (saved with a password)."""
    with zipfile.ZipFile(path) as zf:
        if "META-INF/manifest.xml" not in zf.namelist():
            return False
        return b"encryption-data" in zf.read("META-INF/manifest.xml")


def active_tab(zf: zipfile.ZipFile) -> str | None:
    """The tab LibreOffice opens on (settings.xml ActiveTable), if the file says."""
    if "settings.xml" not in zf.namelist():
        return None
    root = ElementTree.fromstring(zf.read("settings.xml"))
    for item in root.iter(f"{_CONFIG}config-item"):
        if item.get(f"{_CONFIG}name") == "ActiveTable":
            return item.text
    return None


class _Styles:
    """Data styles (number:*-style) and the cell styles that point at them."""

    def __init__(self) -> None:
        self.data: dict[str, ElementTree.Element] = {}
        self.cell_data: dict[str, str] = {}  # cell style -> data style name
        self.parent: dict[str, str] = {}
        self._codes: dict[str, str] = {}

    def note(self, elem: ElementTree.Element) -> None:
        tag = local(elem.tag)
        name = elem.get(f"{_STYLE}name")
        if name is None:
            return
        if tag in _DATA_STYLES:
            self.data[name] = elem
        elif tag == "style" and elem.get(f"{_STYLE}family") == "table-cell":
            data = elem.get(f"{_STYLE}data-style-name")
            if data:
                self.cell_data[name] = data
            parent = elem.get(f"{_STYLE}parent-style-name")
            if parent:
                self.parent[name] = parent

    def code_of_cell_style(self, name: str | None) -> str | None:
        seen = 0
        while name is not None and name not in self.cell_data and seen < 20:
            name, seen = self.parent.get(name), seen + 1
        if name is None or name not in self.cell_data:
            return None
        data = self.cell_data[name]
        if data not in self._codes:
            self._codes[data] = self._code(data) if data in self.data else "General"
        return self._codes[data]

    def _code(self, name: str) -> str:
        elem = self.data[name]
        maps = [
            (m.get(f"{_STYLE}condition", ""), m.get(f"{_STYLE}apply-style-name", ""))
            for m in elem
            if local(m.tag) == "map"
        ]
        body = style_section(elem)
        subs = [(c.replace("value()", "").strip(), self._sub(n)) for c, n in maps]
        conditions = [c for c, _ in subs]
        if conditions in ([">=0"], [">0"]):
            return f"{subs[0][1]};{body}"
        if sorted(conditions) == ["<0", ">0"]:
            pos = next(s for c, s in subs if c == ">0")
            neg = next(s for c, s in subs if c == "<0")
            return f"{pos};{neg};{body}"
        return ";".join([*(f"[{c}]{s}" for c, s in subs), body])

    def _sub(self, name: str) -> str:
        return style_section(self.data[name]) if name in self.data else "General"


def style_section(elem: ElementTree.Element) -> str:
    """One ODS data style as one section of an Excel format code."""
    kind = local(elem.tag)
    if kind == "text-style":
        return "".join(_quote(c.text) if local(c.tag) == "text" else "@" for c in elem
                       if local(c.tag) in ("text", "text-content")) or "@"
    if kind in ("date-style", "time-style"):
        return _date_section(elem)
    parts: list[str] = []
    for child in elem:
        tag = local(child.tag)
        if tag == "number":
            parts.append(_number_code(child))
        elif tag == "scientific-number":
            parts.append(_scientific_code(child))
        elif tag == "fraction":
            parts.append(_fraction_code(child))
        elif tag == "text" and kind == "percentage-style":
            parts.append("%".join(_quote(p) for p in (child.text or "").split("%")))
        elif tag in ("text", "currency-symbol"):
            parts.append(_quote(child.text))
    return "".join(parts) or "General"


def _quote(text: str | None) -> str:
    return f'"{text.replace(chr(34), "")}"' if text else ""


def _num(child: ElementTree.Element, name: str, default: int) -> int:
    value = child.get(f"{_NUMBER}{name}")
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _number_code(child: ElementTree.Element) -> str:
    digits = _num(child, "min-integer-digits", 1)
    grouped = child.get(f"{_NUMBER}grouping") == "true"
    if child.get(f"{_NUMBER}decimal-places") is None and digits <= 1 and not grouped:
        return "General"  # LibreOffice's "General" (N0) names no decimal places
    places = _num(child, "decimal-places", 0)
    min_places = min(_num(child, "min-decimal-places", places), places)
    whole = "0" * digits or "#"
    if grouped:
        whole = "#" * max(0, 4 - digits) + "0" * digits
        whole = f"{whole[:-3]},{whole[-3:]}"
    decimals = "." + "0" * min_places + "#" * (places - min_places) if places else ""
    factor = child.get(f"{_NUMBER}display-factor")
    scale = "," * {"1000": 1, "1000000": 2}.get(factor or "", 0)
    return whole + decimals + scale


def _scientific_code(child: ElementTree.Element) -> str:
    digits = "0" * max(_num(child, "min-integer-digits", 1), 1)
    places = _num(child, "decimal-places", 0)
    exponent = "0" * max(_num(child, "min-exponent-digits", 2), 1)
    return digits + ("." + "0" * places if places else "") + "E+" + exponent


def _fraction_code(child: ElementTree.Element) -> str:
    whole = "# " if child.get(f"{_NUMBER}min-integer-digits") not in (None, "") else ""
    numerator = "?" * max(_num(child, "min-numerator-digits", 1), 1)
    fixed = child.get(f"{_NUMBER}denominator-value")
    denominator = fixed or "?" * max(_num(child, "min-denominator-digits", 1), 1)
    return f"{whole}{numerator}/{denominator}"


def _date_section(elem: ElementTree.Element) -> str:
    kind = local(elem.tag)
    tags = [local(c.tag) for c in elem]
    if kind == "date-style" and {"day", "month", "year", "day-of-week"} & set(tags):
        has_time = bool({"hours", "minutes", "seconds"} & set(tags))
        return "yyyy-mm-dd hh:mm:ss" if has_time else "yyyy-mm-dd"
    elapsed = elem.get(f"{_NUMBER}truncate-on-overflow") == "false"
    parts: list[str] = []
    for child in elem:
        tag, long = local(child.tag), child.get(f"{_NUMBER}style") == "long"
        if tag == "hours":
            parts.append(("[hh]" if long else "[h]") if elapsed else ("hh" if long else "h"))
        elif tag == "minutes":
            parts.append("mm" if long else "m")
        elif tag == "seconds":
            places = _num(child, "decimal-places", 0)
            parts.append(("ss" if long else "s") + ("." + "0" * places if places else ""))
        elif tag == "am-pm":
            parts.append("AM/PM")
        elif tag == "text":
            parts.append(_quote(child.text))
    return "".join(parts) or "hh:mm:ss"


# --------------------------------------------------------------------------- cells


def formats(path: Path, tab: str) -> CellFormats:
    """Every valued cell of the tab whose style has a number format, and its error cells."""
    out = CellFormats()
    styles = _Styles()
    with zipfile.ZipFile(path) as zf:
        if "styles.xml" in zf.namelist():
            for elem in ElementTree.fromstring(zf.read("styles.xml")).iter():
                styles.note(elem)
        with zf.open("content.xml") as fh:
            _scan_content(fh, tab, styles, out)
    return out


def _scan_content(fh: IO[bytes], tab: str, styles: _Styles, out: CellFormats) -> None:
    state = _Walk(tab, styles, out)
    for event, elem in ElementTree.iterparse(fh, events=("start", "end")):
        if event == "start":
            state.start(elem)
        elif state.end(elem):
            return


class _Walk:
    """Row and column positions inside one table, as LibreOffice repeats them."""

    def __init__(self, tab: str, styles: _Styles, out: CellFormats) -> None:
        self.tab, self.styles, self.out = tab, styles, out
        self.inside, self.row, self.col = False, 0, 0
        self.column_styles: list[str | None] = []
        self.depth = 0

    def start(self, elem: ElementTree.Element) -> None:
        tag = elem.tag
        if tag == f"{_TABLE}table":
            self.depth += 1
            if self.depth == 1:
                self.inside = elem.get(f"{_TABLE}name") == self.tab
                self.row = 0

    def end(self, elem: ElementTree.Element) -> bool:
        tag = elem.tag
        if tag == f"{_TABLE}table":
            self.depth -= 1
            done = self.inside and self.depth == 0
            elem.clear()
            return done
        if self.depth == 0:
            if local(tag) in _DATA_STYLES or local(tag) == "style":
                self.styles.note(elem)
            return False
        if not self.inside or self.depth > 1:
            return False
        if tag == f"{_TABLE}table-column":
            repeat = min(int(elem.get(f"{_TABLE}number-columns-repeated", "1")), _MAX_REPEAT)
            style = elem.get(f"{_TABLE}default-cell-style-name")
            self.column_styles.extend([style] * min(repeat, 16384))
        elif tag == f"{_TABLE}table-row":
            self._row(elem)
            elem.clear()
        return False

    def _row(self, elem: ElementTree.Element) -> None:
        repeat = min(int(elem.get(f"{_TABLE}number-rows-repeated", "1")), _MAX_REPEAT)
        first = self.row + 1
        col = 0
        for cell in elem:
            if local(cell.tag) not in ("table-cell", "covered-table-cell"):
                continue
            span = min(int(cell.get(f"{_TABLE}number-columns-repeated", "1")), 16384)
            if cell.get(f"{_OFFICE}value-type") is not None:
                self._cell(cell, first, first + repeat - 1, col, span)
            col += span
        self.row += repeat

    def _cell(self, cell: ElementTree.Element, first: int, last: int, col: int, span: int) -> None:
        shown = "".join(cell.itertext()).strip()
        if cell.get(f"{_CALCEXT}value-type") == "error" or (
            cell.get(f"{_TABLE}formula") and (shown in ERROR_CODES or shown.startswith("Err:"))
        ):
            self._special(first, last, col, span, ("e", shown or "#N/A"))
            return
        if cell.get(f"{_OFFICE}value-type") == "time":  # calamine gives the ISO text
            self._special(first, last, col, span, ("t", cell.get(f"{_OFFICE}time-value", "")))
        style = cell.get(f"{_TABLE}style-name")
        if style is None and col < len(self.column_styles):
            style = self.column_styles[col]
        code = self.styles.code_of_cell_style(style)
        if code is None or code.strip().lower() in ("general", "@"):
            return
        for c in range(col, col + span):
            self.out.add_span(first, last, c, code)

    def _special(self, first: int, last: int, col: int, span: int, what: tuple[str, str]) -> None:
        for row in range(first, min(last, first + 1000) + 1):
            for c in range(col, col + span):
                self.out.special[(row, c)] = what
