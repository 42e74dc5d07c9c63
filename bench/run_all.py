"""Run every bench, each in its own subprocess, and print one combined table.

    .venv/bin/python -m bench.run_all            # full sizes (each bench's own defaults)
    .venv/bin/python -m bench.run_all --quick    # small sizes, to check the harness
    .venv/bin/python -m bench.run_all bench_refresh bench_resume   # only these

Each bench generates its own data (into bench/data/), prints its own table and appends it to
bench/RESULTS.md; this script collects the printed tables (Markdown tables, or the plain
"measure  result  target  pass" table of bench_send), normalises them to
figure | value | anchor | ratio | target | met? and puts that combined table, with the date
and the machine, at the top of bench/RESULTS.md as the latest full run (the one before moves
to the archive below it); a --quick or partial run appends its table to the archive instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import BENCH_DIR, DATA_DIR, append_results, format_table, set_latest

ORDER = ("bench_read", "bench_scale", "bench_diff", "bench_report", "bench_send",
         "bench_refresh", "bench_resume", "bench_soak", "bench_state_size", "bench_faults",
         "bench_isolate", "bench_verify")
QUICK_ARGS: dict[str, list[str]] = {
    "bench_scale": ["20000", "5000"],  # full: 1,048,575 rows (+ header) and 100,000
    "bench_diff": ["50000", "20000"],
    "bench_report": ["5000"],
    "bench_send": ["400"],  # its rate-cap scenario sends 400 rows to a book of ROWS
    "bench_refresh": ["5000"],
    "bench_resume": ["1000"],
    "bench_soak": ["--rows", "2000"],
    "bench_state_size": ["5000", "10"],
    "bench_faults": ["300", "--long", "600"],
    "bench_verify": ["500"],
}
TIMEOUT = 3600.0
HEADERS = ("figure", "value", "anchor", "ratio", "target", "met?")
_COMPARISON = re.compile(r"^\s*(<=|>=|<|>|=|≤|≥)\s*(-?[\d.,]+)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True)
class Figure:
    bench: str
    figure: str
    value: str
    anchor: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: str = "-"

    def cells(self) -> list[str]:
        return [f"{self.bench}: {self.figure}", self.value, self.anchor, self.ratio,
                self.target, self.met]


# --------------------------------------------------------------------------- parsing


def judge(value: str, target: str) -> str:
    """True/False when the target is a plain comparison with a number, else "-"."""
    m, v = _COMPARISON.match(target), _NUMBER.search(value)
    if m is None or v is None:
        return "-"
    want, got = float(m.group(2).replace(",", "")), float(v.group().replace(",", ""))
    op = {"≤": "<=", "≥": ">="}.get(m.group(1), m.group(1))
    ok = {"<": got < want, "<=": got <= want, ">": got > want, ">=": got >= want,
          "=": got == want}[op]
    return str(ok)


def _truth(text: str) -> str:
    low = text.strip().lower()
    if low in ("true", "yes", "ok", "met", "pass"):
        return "True"
    if low in ("false", "no", "over", "fail", "not met"):
        return "False"
    return text.strip() or "-"


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in text, as rows of cells (header first, separator dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        s = line.strip()
        if s.startswith("|") and s.endswith("|"):
            cells = [c.strip() for c in s[1:-1].split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def plain_table(text: str) -> list[list[str]]:
    """A table whose header starts with "measure" and whose columns are 2+ spaces apart."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lower().startswith("measure"):
            return [re.split(r"\s{2,}", ln.strip()) for ln in lines[i:] if ln.strip()]
    return []


def figures_from_table(bench: str, table: list[list[str]]) -> list[Figure]:
    head = [h.lower() for h in table[0]]
    out: list[Figure] = []
    for row in table[1:]:
        cell = dict(zip(head, row, strict=False))
        if {"figure", "value"} <= set(head):
            met = cell.get("met?", "")
            out.append(Figure(bench, cell["figure"], cell["value"], cell.get("anchor", "-"),
                              cell.get("ratio", "-"), cell.get("target", "-"),
                              _truth(met) if met else judge(cell["value"],
                                                            cell.get("target", ""))))
        elif {"step", "seconds"} <= set(head):  # bench_diff
            target = cell.get("target", "") or "-"
            out.append(Figure(bench, f"{cell['step']} ({cell.get('size', '')})",
                              f"{cell['seconds']} s", "dict-of-tuples anchor",
                              cell.get("vs anchor", "-") or "-", target,
                              judge(cell["seconds"], target)))
        elif {"format", "seconds", "peak mib"} <= set(head):  # bench_report
            out.append(Figure(bench, f"{cell['format']} report, {cell.get('rows', '')} rows",
                              f"{cell['seconds']} s, {cell['peak mib']} MiB peak",
                              f"{cell.get('base mib', '-')} MiB base", "-",
                              "< 10 s, < 300 MiB", _truth(cell.get("verdict", ""))))
        elif head and head[0] == "measure":  # bench_send (+ pass), bench_soak (measure, value)
            result = cell.get("result", cell.get("value", ""))
            verdict = cell.get("pass", result if cell["measure"] == "verdict" else "")
            out.append(Figure(bench, cell["measure"], result, "-", "-", cell.get("target", "-"),
                              _truth(verdict) if verdict else "-"))
        else:
            met = next((cell[k] for k in ("met?", "verdict", "pass", "ok") if k in cell), "-")
            out.append(Figure(bench, row[0], " ".join(row[1:]), met=_truth(met)))
    return out


def collect(bench: str, stdout: str) -> list[Figure]:
    figures: list[Figure] = []
    for table in markdown_tables(stdout):
        figures += figures_from_table(bench, table)
    if not figures:
        plain = plain_table(stdout)
        if plain:
            figures = figures_from_table(bench, plain)
    return figures


# --------------------------------------------------------------------------- running


def present(names: Sequence[str]) -> list[str]:
    wanted = list(names) or list(ORDER)
    found = [n for n in wanted if (BENCH_DIR / f"{n}.py").is_file()]
    extra = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py") if p.stem not in ORDER)
    return found + ([] if names else extra)


def run_one(name: str, quick: bool) -> tuple[list[Figure], float]:
    args = QUICK_ARGS.get(name, []) if quick else []
    cmd = [sys.executable, "-m", f"bench.{name}", *args]
    print(f"running {' '.join(cmd[1:])} …", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=BENCH_DIR.parent, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return [Figure(name, "run", f"timed out after {TIMEOUT:g} s", met="False")], TIMEOUT
    seconds = time.monotonic() - t0
    print(proc.stdout, end="", file=sys.stderr)
    figures = collect(name, proc.stdout)
    if proc.returncode != 0 and not figures:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        figures = [Figure(name, "run", f"exit {proc.returncode}: {tail[:80]}", met="False")]
    print(f"{name}: {len(figures)} figures in {seconds:.0f} s (exit {proc.returncode})",
          file=sys.stderr, flush=True)
    return figures, seconds


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("--")]
    DATA_DIR.mkdir(exist_ok=True)
    figures: list[Figure] = []
    timings: list[str] = []
    for name in present(names):
        found, seconds = run_one(name, quick)
        figures += found
        timings.append(f"{name} {seconds:.0f} s")
    table = format_table(HEADERS, [f.cells() for f in figures])
    print(table)
    met = sum(f.met == "True" for f in figures)
    missed = sum(f.met == "False" for f in figures)
    title = ("all benches, combined (run_all" + (" --quick" if quick else "") + f"): {met} met, "
             f"{missed} not met; {', '.join(timings)}")
    if quick or names:
        append_results(title, table)  # a partial run goes to the archive
    else:
        set_latest(title, table)
    print(f"\n{title}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
