"""Diff and snapshot bench: `.venv/bin/python -m bench.bench_diff [rows] [contacts]`.

Issue 15's target: plan 1M desired vs 1M known (1% changed) in < 0.5 s. Measured 2026-12-02
on the shared 2-core machine at load 5-12 (best CPU seconds of 3; six runs): the plan
0.73-0.93 s = 0.79-0.97x the dict-of-tuples anchor measured beside it (0.79-1.02 s); before
the fast path (every row a PlannedRow) 1.36 s = 1.27x. At 20k rows the plan is 0.55x the
anchor: at 1M both are bound by memory (four objects per row reached through pointers).
The 10,000 changed rows cost ~0.1 s of it. Not yet under 0.5 s on that machine; the ratio
is the figure to compare. Reading every row of the plan afterwards (a dry run's report)
builds the unchanged rows then: 1.8-2.5 s in all.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import append_results, format_table
from bsg_sync.differ import plan_changes
from bsg_sync.models import Account, Contact, Desired, Field, Group, GroupsMode, Known
from bsg_sync.state import StateStore

ACCOUNT = Account(tuple(Field(i, f"Field {i}") for i in range(1, 6)),
                  tuple(Group(i, f"List {i}") for i in range(10, 15)))


def _contact(i: int) -> Contact:
    return Contact(i, f"4477{i:08d}", {1: f"First{i}", 2: f"Last{i}", 3: "London", 4: "GB"},
                   frozenset({10, 11}), "active", "2025-01-01 10:00:00")


def make_data(n: int) -> tuple[list[Desired], dict[int, Known]]:
    """n known contacts; n sheet rows mapping phone, three fields and lists; 1% changed."""
    known = {i: Known(_contact(i)) for i in range(1, n + 1)}
    rows = []
    for i in range(1, n + 1):
        city = "Leeds" if i % 100 == 0 else "London"
        rows.append(Desired(i + 1, i, f"4477{i:08d}", {1: f"First{i}", 2: f"Last{i}", 3: city},
                            frozenset({10}), GroupsMode.ADD))
    return rows, known


def anchor(rows: list[Desired], known: dict[int, Known]) -> int:
    """The plain way: dict of tuples on each side, compare with ==, count the differences."""
    a = {i: (k.seen.phone, k.seen.fields.get(1), k.seen.fields.get(2), k.seen.fields.get(3))
         for i, k in known.items()}
    b = {d.contact_id: (d.phone, d.fields.get(1), d.fields.get(2), d.fields.get(3)) for d in rows}
    return sum(1 for cid, t in b.items() if a.get(cid) != t)


def ours(rows: list[Desired], known: dict[int, Known]) -> int:
    """The plan (unchanged rows recorded, not built) and its writes."""
    plan = plan_changes(rows, known, account=ACCOUNT)
    return sum(1 for p in plan.detailed_rows() if p.target is not None)


def ours_read(rows: list[Desired], known: dict[int, Known]) -> int:
    """The plan, then every one of its rows read (as a dry run's report does)."""
    plan = plan_changes(rows, known, account=ACCOUNT)
    return sum(1 for p in plan if p.target is not None)


def timed(fn: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    """Best CPU seconds of `repeat` calls: on a shared machine the wall clock also counts
    the time other processes hold the CPU, this process's CPU time does not."""
    best, result = float("inf"), 0
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def bench_plan(n: int) -> tuple[float, float, float]:
    """Best of three each, interleaved in one run: (anchor, plan, plan + every row read)."""
    rows, known = make_data(n)
    t_anchor, c_anchor = timed(lambda: anchor(rows, known))
    t_ours, c_ours = timed(lambda: ours(rows, known))
    t_read, c_read = timed(lambda: ours_read(rows, known))
    assert c_anchor == c_ours == c_read == n // 100, (c_anchor, c_ours, c_read)
    return t_anchor, t_ours, t_read


def bench_save_seen(n: int) -> tuple[float, float]:
    contacts = [_contact(i) for i in range(1, n + 1)]
    with tempfile.TemporaryDirectory() as folder, StateStore(Path(folder) / "s.db") as store:
        start = time.perf_counter()
        store.save_seen(contacts)
        first = time.perf_counter() - start
        start = time.perf_counter()
        store.save_seen(contacts)
        return first, time.perf_counter() - start


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 1_000_000
    m = int(argv[1]) if len(argv) > 1 else 500_000
    t_anchor, t_ours, t_read = bench_plan(n)
    t_insert, t_upsert = bench_save_seen(m)
    table = format_table(["step", "size", "seconds", "per row (µs)", "vs anchor", "target"], [
        ["dict-of-tuples anchor (count only)", f"{n:,} vs {n:,}", f"{t_anchor:.2f}",
         f"{t_anchor / n * 1e6:.2f}", "1.0x", ""],
        ["plan_changes (unchanged rows recorded)", f"{n:,} vs {n:,}, 1% changed",
         f"{t_ours:.2f}", f"{t_ours / n * 1e6:.2f}", f"{t_ours / t_anchor:.2f}x", "< 0.5 s"],
        ["plan_changes + every row read", f"{n:,} vs {n:,}, 1% changed", f"{t_read:.2f}",
         f"{t_read / n * 1e6:.2f}", f"{t_read / t_anchor:.2f}x", "< 2 s"],
        ["save_seen, empty store", f"{m:,}", f"{t_insert:.2f}", f"{t_insert / m * 1e6:.2f}",
         "", "< 5 s"],
        ["save_seen, upsert over it", f"{m:,}", f"{t_upsert:.2f}", f"{t_upsert / m * 1e6:.2f}",
         "", "< 5 s"],
    ])
    print(table)
    append_results("Diff and snapshot (bench_diff)", table)


if __name__ == "__main__":
    main(sys.argv[1:])
