"""Soak: a 50,000-row sync with ~5 % faults against an emulator subprocess.

Checks that every row is accounted for (one report row each, all `ok` or, after an exhausted
retry budget, `failed`), that BSG ends equal to the sheet, and that the CLI's peak RSS
(ru_maxrss of the child, via wait4) stays under 500 MiB. Prints a table and appends it to
bench/RESULTS.md.

    .venv/bin/python bench/bench_soak.py [--rows 50000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from common import append_results, format_table  # noqa: E402
from reliability_helpers import (  # noqa: E402
    REPO,
    EmulatorProcess,
    cli_env,
    make_world,
    mismatches,
    read_report,
    sync_args,
)

RSS_LIMIT_MIB = 500
FAULTS = ("--fail-rate", "0.03", "--drop-rate", "0.01", "--throttle-rate", "0.01")  # ~5 %


def run_soak(rows: int, concurrency: int, workdir: Path) -> tuple[list[list[object]], bool]:
    t0 = time.monotonic()
    world = make_world(workdir, rows)
    made = time.monotonic() - t0
    with EmulatorProcess(world.seed, *FAULTS, log=workdir / "emulator.log",
                         verbose=False) as emu:
        args = sync_args(world, emu.url, "-q", "--no-rate-limit", "--concurrency",
                         str(concurrency))
        out = (workdir / "sync.out").open("wb")
        t1 = time.monotonic()
        proc = subprocess.Popen(args, cwd=REPO, env=cli_env(world.state), stdout=out,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - t1
        out.close()
        stats = emu.stats()
        report = read_report(world.report())
        wrong = mismatches(world, emu.contacts())
    counts = Counter(r["status"] for r in report)
    codes = Counter(r["error_code"] for r in report if r["error_code"])
    rows_seen = sorted(r["row"] for r in report)
    accounted = rows_seen == [w.row for w in world.wanted]
    rss_mib = usage.ru_maxrss / 1024  # Linux: KiB
    not_ok = {r["row"] for r in report if r["status"] != "ok"}
    wrong_ok = [m for m in wrong if int(m.split()[1].rstrip(":")) not in not_ok]  # "row N: …"
    ok = (accounted and rss_mib < RSS_LIMIT_MIB and proc.returncode in (0, 1)
          and set(counts) <= {"ok", "failed"} and not wrong_ok)
    table = [
        ["rows", rows],
        ["concurrency", concurrency],
        ["faults", "fail 3 %, drop 1 %, 429 1 % per request"],
        ["exit code", proc.returncode],
        ["sync wall time (s)", f"{elapsed:.1f}"],
        ["rows/s", f"{rows / elapsed:.0f}"],
        ["statuses", ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))],
        ["error codes", ", ".join(f"{k} {v}" for k, v in sorted(codes.items())) or "none"],
        ["every row reported once", accounted],
        ["ok rows not equal in BSG", len(wrong_ok)],
        ["API requests (GET/PUT/POST)", "{GET}/{PUT}/{POST}".format(**stats["requests"])],
        ["peak RSS of the CLI (MiB)", f"{rss_mib:.0f} (limit {RSS_LIMIT_MIB})"],
        ["world generation (s)", f"{made:.1f}"],
        ["verdict", "PASS" if ok else "FAIL"],
    ]
    if not ok:
        table.append(["sync output (tail)",
                      (workdir / "sync.out").read_text()[-300:].replace("\n", " / ")])
    return table, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-save", action="store_true", help="do not append to RESULTS.md")
    ns = parser.parse_args()
    with TemporaryDirectory(prefix="bsg-soak-") as tmp:
        table, ok = run_soak(ns.rows, ns.concurrency, Path(tmp))
    text = format_table(["measure", "value"], table)
    print(text)
    if not ns.no_save:
        append_results(f"bench_soak: {ns.rows:,} rows with ~5 % faults", text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
