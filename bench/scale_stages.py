"""Memory of the dry run's stages after the read: a `run_sync` dry run in this process with
probes after mapping, planning, the results and the report (RSS, and tracemalloc with -t).

    .venv/bin/python -m bench.scale_stages [ROWS] [-t]

The sheet (bench_read.make_xlsx, 12 columns) is read once by the isolated reader and cached
as a pickle in bench/data/, so a re-run measures only the stages after the read; the book is
bench_scale's 1,000 contacts, the mapping its phone-only one (no id column). ROWS defaults
to 500,000.
"""

from __future__ import annotations

import functools
import logging
import pickle
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bench_read import make_xlsx
from bench.bench_scale import KEY, SMALL_BOOK, write_mapping, write_seed
from bench.bench_send import emulator
from bench.common import DATA_DIR

MIB = 2**20


def _status(name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    return 0


class Probe:
    """RSS (now and high-water mark) and traced Python memory after each stage."""

    def __init__(self, trace: bool) -> None:
        self.trace = trace
        self.rows: list[tuple[str, float, float, float, float, float]] = []
        self.t0 = time.perf_counter()

    def mark(self, stage: str) -> None:
        now, peak = _status("VmRSS"), _status("VmHWM")
        traced, traced_peak = tracemalloc.get_traced_memory() if self.trace else (0, 0)
        self.rows.append((stage, now / MIB, peak / MIB, traced / MIB, traced_peak / MIB,
                          time.perf_counter() - self.t0))

    def after(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            self.mark(stage)
            return out
        return wrapped

    def table(self) -> str:
        lines = ["stage                 rss MiB  hwm MiB  traced  traced-peak  s"]
        last = 0.0
        for stage, now, peak, traced, tpeak, t in self.rows:
            lines.append(f"{stage:<20} {now:8.0f} {peak:8.0f} {traced:7.0f} {tpeak:11.0f} "
                         f"{t - last:6.1f}")
            last = t
        return "\n".join(lines)


def cached_sheet(rows: int) -> Any:
    pick = DATA_DIR / f"stages_{rows}.pickle"
    if pick.exists():
        with pick.open("rb") as fh:
            return pickle.load(fh)
    from bsg_sync.isolate import read_sheet_isolated

    xlsx = DATA_DIR / f"scale_{rows}.xlsx"
    make_xlsx(xlsx, rows)
    sheet = read_sheet_isolated(xlsx)
    with pick.open("wb") as fh:
        pickle.dump(sheet, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return sheet


def main(argv: list[str]) -> None:
    from bsg_sync import mapping, report, sync
    from bsg_sync.client import RetryPolicy

    logging.getLogger("bsg_sync").setLevel(logging.ERROR)
    trace = "-t" in argv
    args = [a for a in argv if a != "-t"]
    rows = int(args[0]) if args else 500_000
    DATA_DIR.mkdir(exist_ok=True)
    seed = DATA_DIR / f"scale_seed_{SMALL_BOOK}.json"
    write_seed(seed, SMALL_BOOK)
    probe = Probe(trace)
    if trace:
        tracemalloc.start()
    probe.mark("start")
    sheet = cached_sheet(rows)
    probe.mark("sheet")
    sync.read_sheet_isolated = lambda *_a, **_k: sheet  # type: ignore[assignment]
    mapping.map_rows = probe.after("mapping", mapping.map_rows)  # type: ignore[assignment]
    sync._plan = probe.after("plan", sync._plan)  # type: ignore[assignment]
    sync.send_plan = probe.after("results", sync.send_plan)  # type: ignore[assignment]
    report.write_report = probe.after("report", report.write_report)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp, emulator(seed) as url:
        mapping_path = Path(tmp) / "m.toml"
        write_mapping(mapping_path, with_id=False)
        opts = sync.SyncOptions(sheet=Path(tmp) / "s.xlsx", mapping=mapping_path,
                                state=Path(tmp) / "s.db", api_url=url,
                                report=Path(tmp) / "r.jsonl", dry_run=True, max_rps=None,
                                policy=RetryPolicy.fast())
        outcome = sync.run_sync(opts, KEY)
        probe.mark("outcome")
        print(outcome.summary.counts)
    print(probe.table())


if __name__ == "__main__":
    main(sys.argv[1:])
