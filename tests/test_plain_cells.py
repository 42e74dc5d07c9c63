"""workbook.plain_cells (a column at a time) shows every cell as the per-cell rule does."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bsg_sync.numfmt import render_cell
from bsg_sync.workbook import plain_cells

SPACES = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2003", "\u3000"]


def _one_by_one(block: list[list[Any]]) -> list[tuple[str, ...]]:
    return [tuple(v.strip() if type(v) is str else render_cell(v) for v in raw) for raw in block]


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("where", ["lead", "trail", "alone", "first", "last"])
def test_whitespace_at_any_edge_is_trimmed(space: str, where: str) -> None:
    cells = [[f"Name {i}", f"City {i}"] for i in range(50)]
    at = {"first": 0, "last": 49}.get(where, 17)
    text = {"lead": f"{space}Leeds", "trail": f"Leeds{space}", "alone": space}.get(where)
    cells[at][1] = text if text is not None else (f"{space}Leeds" if at == 0 else f"Leeds{space}")
    assert plain_cells(cells) == _one_by_one(cells)  # type: ignore[arg-type]


def test_inner_spaces_and_separators_are_kept() -> None:
    cells = [["+44 7700 900123", "a\x00b", "x\x1fy"], ["07700 900456", "c  d", "e\tf"]]
    assert plain_cells(cells) == _one_by_one(cells)  # type: ignore[arg-type]
    assert plain_cells(cells)[0] == ("+44 7700 900123", "a\x00b", "x\x1fy")


def test_numbers_booleans_dates_and_mixed_columns() -> None:
    import datetime as dt

    values: list[Any] = [1.0, 0.1 + 0.2, 274.66, 1e16, -3.5, True, "", " t ", dt.date(2024, 2, 1),
                         dt.datetime(2024, 2, 1, 8, 30), 7]
    block = [list(row) for row in itertools.permutations(values[:4])] + [values[4:8], values[7:11]]
    assert plain_cells(block) == _one_by_one(block)


def test_rows_of_unequal_width_are_converted_one_by_one() -> None:
    block: list[list[Any]] = [["a ", 1.0], [" b"], []]
    assert plain_cells(block) == [("a", "1"), ("b",), ()]
