"""Cell text that must not reach BSG: control characters (C0, DEL, C1 and bidi controls).

Tab is allowed, and so are CR and LF (a CSV holds them only inside a quoted cell; in a
workbook they are the line breaks of a wrapped cell). The value is kept as read: the cell
is noted as a `CellProblem`, and `mapping` makes the row `invalid` if the column is mapped.
Every format's rows are built here, so the rule is the same for CSV, XLSX, XLS and ODS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

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


def sheet_rows(data: Iterable[tuple[int, Sequence[str]]], width: int) -> list[SheetRow]:
    """Rows padded to `width` cells, each with the control characters it holds noted."""
    out = [SheetRow(n, tuple(c) + ("",) * (width - len(c))) for n, c in data]
    for start in range(0, len(out), _BATCH):  # one C-level test per batch: most hold none
        batch = out[start : start + _BATCH]
        text = "".join(map("".join, (r.values for r in batch)))  # the fastest way measured
        if text.isprintable() or not _CONTROL.search(text):
            continue
        for index, row in enumerate(batch, start):
            problems = control_problems(row.values)
            if problems:
                out[index] = SheetRow(row.row, row.values, problems)
    return out
