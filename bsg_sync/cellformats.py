"""Which cells of a tab have which format code (runs per column), and its error and date cells."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CellFormats:
    """Format codes per cell, kept as runs of rows per column, plus error and ISO date cells."""

    runs: dict[int, list[list[Any]]] = field(default_factory=dict)  # col -> [[first, last, code]]
    special: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)  # kind, text
    date1904: bool = False
    _special_rows: dict[int, list[tuple[int, str, str]]] | None = None

    def add(self, row: int, col: int, code: str) -> None:
        runs = self.runs.setdefault(col, [])
        if runs and runs[-1][1] == row - 1 and runs[-1][2] == code:
            runs[-1][1] = row
        else:
            runs.append([row, row, code])

    def add_span(self, first: int, last: int, col: int, code: str) -> None:
        runs = self.runs.setdefault(col, [])
        if runs and runs[-1][1] == first - 1 and runs[-1][2] == code:
            runs[-1][1] = last
        else:
            runs.append([first, last, code])

    def special_in_row(self, row: int) -> list[tuple[int, str, str]]:
        """The error, ISO date and duration cells of one row (indexed by row on first use)."""
        if self._special_rows is None:
            self._special_rows = {}
            for (r, col), (kind, text) in self.special.items():
                self._special_rows.setdefault(r, []).append((col, kind, text))
        return self._special_rows.get(row, [])

    def __bool__(self) -> bool:
        return bool(self.runs or self.special)

    def by_row(self, first: int = 1) -> Iterator[dict[int, str]]:
        """For rows first, first+1, ...: the formatted columns of that row (read in row order)."""
        cursor = dict.fromkeys(self.runs, 0)
        row = first - 1
        while True:
            row += 1
            here: dict[int, str] = {}
            for col, runs in self.runs.items():
                i = cursor[col]
                while i < len(runs) and runs[i][1] < row:
                    i += 1
                cursor[col] = i
                if i < len(runs) and runs[i][0] <= row:
                    here[col] = runs[i][2]
            yield here



def local(tag: str) -> str:
    """An XML tag without its namespace (transitional and Strict OOXML alike)."""
    return tag.rsplit("}", 1)[-1]
