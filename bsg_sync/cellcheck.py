"""Cell text that must not reach BSG: control characters (C0, DEL, C1 and bidi controls).

Tab is allowed, and so are CR and LF (a CSV holds them only inside a quoted cell; in a
workbook they are the line breaks of a wrapped cell). The value is kept as read: the cell
is noted as a `CellProblem`, and `mapping` makes the row `invalid` if the column is mapped.
Every format's rows are built here, so the rule is the same for CSV, XLSX, XLS and ODS.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from itertools import repeat
from operator import itemgetter

from bsg_sync.errors import ErrorCode
from bsg_sync.models import CellProblem, SheetRow

CONTROL_CODE = ErrorCode.CONTROL_CHARACTER
_BATCH = 4096
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def control_problems(cells: Sequence[str]) -> tuple[CellProblem, ...]:
    """One problem per cell holding a control character, naming the first one (U+001B)."""
    joined = "".join(cells)
    if joined.isprintable() or not _CONTROL.search(joined):  # the fast path for most rows
        return ()
    problems = []
    for column, cell in enumerate(cells):
        found = _CONTROL.search(cell)
        if found:
            problems.append(CellProblem(column, CONTROL_CODE, f"U+{ord(found.group()):04X}"))
    return tuple(problems)


_new_row = partial(tuple.__new__, SheetRow)  # SheetRow((row, values, problems)), made in C


def sheet_rows(data: Sequence[tuple[int, Sequence[str]]], width: int) -> list[SheetRow]:
    """Rows padded to `width` cells, each with the control characters it holds noted."""
    values: list[tuple[str, ...]] = list(map(itemgetter(1), data))
    if set(map(len, values)) - {width} or set(map(type, values)) - {tuple}:
        values = [tuple(c) + ("",) * (width - len(c)) for c in values]
    # the rows are made without a Python step per row (as are, above, the common rows' cells:
    # tuples of `width` cells already, as the plain XLSX path gives them)
    out = list(map(_new_row, zip(map(itemgetter(0), data), values, repeat(()))))
    for start in range(0, len(out), _BATCH):  # one C-level test per batch: most hold none
        text = "".join(map("".join, values[start : start + _BATCH]))  # the fastest way measured
        if text.isprintable() or not _CONTROL.search(text):
            continue
        for index in range(start, min(start + _BATCH, len(out))):
            problems = control_problems(values[index])
            if problems:
                out[index] = SheetRow(out[index].row, values[index], problems)
    return out
