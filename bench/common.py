"""Shared bench helpers: print a results table and append it to bench/RESULTS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).parent
DATA_DIR = BENCH_DIR / "data"
RESULTS = BENCH_DIR / "RESULTS.md"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (readable as plain text too)."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


LATEST = "## Latest full run"
ARCHIVE = "## Archive"
_PREAMBLE = (
    "# Benchmark results\n\nThe first table is the latest full `python -m bench.run_all`, "
    "every figure from one run with its anchor measured beside it. Below it, the archive: "
    "earlier full runs and each bench's own tables, oldest first.\n"
)


def set_latest(title: str, table: str) -> None:
    """Put a full run's combined table at the top of bench/RESULTS.md; the previous latest
    run moves to the end of the archive."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    head, sep, archive = text.partition(f"\n{ARCHIVE}\n")
    if not sep:  # the old layout: everything so far is archive
        head, archive = "", text
    previous = head.partition(f"\n{LATEST}")[2]
    if previous:
        archive = archive.rstrip("\n") + "\n\n## Full run" + previous.rstrip("\n") + "\n"
    latest = f"{LATEST} — {stamp}\n\n{title}\n\nMachine: {machine()}\n\n{table}\n"
    RESULTS.write_text(f"{_PREAMBLE}\n{latest}\n{ARCHIVE}\n\n{archive.lstrip(chr(10))}",
                       encoding="utf-8")


def append_results(title: str, table: str) -> None:
    """Append a dated section with the machine description to bench/RESULTS.md."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(f"\n## {title} — {stamp}\n\nMachine: {machine()}\n\n{table}\n")
