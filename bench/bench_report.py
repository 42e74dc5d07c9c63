"""Benchmark: time and peak RSS of a 100k-row report per format (targets: 10 s, 300 MiB).

Each measurement runs in a fresh subprocess so ru_maxrss is that run's own peak.
Usage: .venv/bin/python bench/bench_report.py [ROWS]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_SECONDS = 10.0
TARGET_MIB = 300.0

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from bsg_sync import report
from bsg_sync.models import Action, RowResult, Status

rows, out = int(sys.argv[1]), Path(sys.argv[2])
statuses = list(Status)
def result(i):
    s = statuses[i % len(statuses)]
    return RowResult(
        row=i + 2, contact_id=248400000 + i, phone=str(447700900000 + i),
        action=Action.UPDATE if s is Status.OK else Action.NONE, status=s,
        error_code="http-422" if s is Status.FAILED else "",
        error="BSG said: The phone has already been taken." if s is Status.FAILED else "",
        changes=f"City: London → Leeds {i}; +list Newsletter", attempts=1, http_status=200,
        hlr_status="active", hlr_last_check="2025-03-01 09:15:00")
results = [result(i) for i in range(rows)]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
summary = report.summarise(results, run_id=1, sheet=Path("in.csv"), sheet_sha256="0" * 64,
    report_path=out, errors_path=None, dry_run=False, started_at="", finished_at="",
    duration_s=0.0, options={}, requests=rows, retries=0)
report.write_report(out, results, summary)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mib": peak / 1024, "base_mib": base / 1024,
                  "bytes": out.stat().st_size}))
"""


def measure(rows: int, suffix: str, tmp: Path) -> dict[str, float]:
    out = tmp / f"bench.report{suffix}"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(rows), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    headers = ["format", "rows", "seconds", "peak MiB", "base MiB", "file MiB", "verdict"]
    table: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".xlsx", ".csv", ".jsonl"):
            m = measure(rows, suffix, Path(tmp))
            ok = m["seconds"] < TARGET_SECONDS and m["peak_mib"] < TARGET_MIB
            table.append(
                [
                    suffix,
                    rows,
                    f"{m['seconds']:.2f}",
                    f"{m['peak_mib']:.1f}",
                    f"{m['base_mib']:.1f}",
                    f"{m['bytes'] / 2**20:.2f}",
                    "ok" if ok else "OVER",
                ]
            )
    title = f"report writers ({rows} rows; targets < {TARGET_SECONDS:g} s, < {TARGET_MIB:g} MiB)"
    _publish(title, headers, table)


def _publish(title: str, headers: list[str], table: list[list[object]]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import common  # bench/common.py: shared table format and bench/RESULTS.md
    except ImportError:
        print(title)
        lines: list[list[object]] = [list(headers), *table]
        for row in lines:
            print("  ".join(f"{c!s:>9}" for c in row))
        return
    text = common.format_table(headers, table)
    print(f"{title}\n{text}")
    common.append_results(title, text)


if __name__ == "__main__":
    main()
