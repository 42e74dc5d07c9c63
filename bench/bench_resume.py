"""Resume bench: a sync killed with SIGKILL mid-send loses nothing and resends nothing.

An emulator subprocess (`bsg-sync emulator --latency-ms 20`) holds ROWS contacts; a sheet
changes every one of them. `bsg-sync sync` runs as a subprocess and is killed with SIGKILL about
KILL_AFTER seconds after its first PUT reached the emulator; the same command then runs again.
Targets: every row's change is in BSG at the end, the second run exits 0 with no failed or
not_sent row, a dry run after it plans nothing, and the PUTs of both runs together are at most
ROWS + CONCURRENCY (only the requests in flight at the kill may be sent twice).
Usage: .venv/bin/python -m bench.bench_resume [ROWS]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import append_results, format_table

CITY = 387716
FIRST_ID = 7_000_000
CONCURRENCY = 8
LATENCY_MS = 20
KILL_AFTER = 1.0
KEY = "live_bench_resume"


def write_inputs(folder: Path, rows: int) -> tuple[Path, Path, Path]:
    contacts = [{"id": FIRST_ID + n, "phone": 447800000000 + n,
                 "fields": {str(CITY): f"Old {n}"}, "groups": []} for n in range(rows)]
    seed = folder / "seed.json"
    seed.write_text(json.dumps({"fields": [{"id": CITY, "name": "City", "type": "text"}],
                                "groups": [], "contacts": contacts}), encoding="utf-8")
    sheet = folder / "resume.csv"
    sheet.write_text("Contact ID,City\n" + "".join(f"{FIRST_ID + n},New {n}\n"
                                                    for n in range(rows)), encoding="utf-8")
    mapping = folder / "resume.toml"
    mapping.write_text('[columns]\n"Contact ID" = "id"\n"City" = "field:City"\n',
                       encoding="utf-8")
    return seed, sheet, mapping


@contextmanager
def emulator(seed: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bsg_sync", "emulator", "--seed", str(seed), "--latency-ms",
         str(LATENCY_MS)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def puts(url: str) -> int:
    return int(get_json(f"{url}/_emulator/stats")["requests"]["PUT"])


def cities(url: str, key: str) -> dict[int, str]:
    """Every contact's City, read with the product's own client (paged list)."""
    from bsg_sync.client import BsgClient

    with BsgClient(url, key) as client:
        return {c.id: c.fields.get(CITY, "") for c in client.iter_contacts()}


def sync_command(url: str, sheet: Path, mapping: Path, state: Path, report: Path,
                 *extra: str) -> list[str]:
    return [sys.executable, "-m", "bsg_sync", "sync", str(sheet), "--mapping", str(mapping),
            "--state", str(state), "--api-url", url, "--report", str(report), "--concurrency",
            str(CONCURRENCY), "--no-rate-limit", "-q", *extra]


def statuses(report: Path) -> Counter[str]:
    lines = report.read_text(encoding="utf-8").splitlines()
    return Counter(json.loads(line)["status"] for line in lines)


def main(argv: list[str]) -> None:
    rows = int(argv[0]) if argv else 2000
    env = {**os.environ, "BSG_API_KEY": KEY}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed, sheet, mapping = write_inputs(folder, rows)
        state = folder / "state.sqlite3"
        with emulator(seed) as url:
            first = subprocess.Popen(
                sync_command(url, sheet, mapping, state, folder / "first.jsonl"), env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0 = time.monotonic()
            while puts(url) == 0 and first.poll() is None and time.monotonic() - t0 < 60:
                time.sleep(0.01)
            time.sleep(KILL_AFTER)
            killed_while_running = first.poll() is None
            first.send_signal(signal.SIGKILL)
            first.wait()
            time.sleep(0.2)  # let requests already in flight land
            puts_first = puts(url)

            t1 = time.monotonic()
            second = subprocess.run(
                sync_command(url, sheet, mapping, state, folder / "second.jsonl"), env=env,
                capture_output=True, text=True)
            seconds_second = time.monotonic() - t1
            puts_both = puts(url)
            subprocess.run(
                sync_command(url, sheet, mapping, state, folder / "dry.jsonl", "--dry-run"),
                env=env, capture_output=True, text=True)
            final = cities(url, KEY)
        second_counts = statuses(folder / "second.jsonl")
        dry_counts = statuses(folder / "dry.jsonl")

    expected = {FIRST_ID + n: f"New {n}" for n in range(rows)}
    applied = sum(1 for cid, city in final.items() if expected.get(cid) == city)
    bad = second_counts["failed"] + second_counts["not_sent"] + second_counts["invalid"]
    table = format_table(["figure", "value", "anchor", "ratio", "target", "met?"], [
        ["killed while sending (PUTs before SIGKILL)", puts_first, f"{rows} rows",
         f"{puts_first / rows:.2f}", "0 < PUTs < rows", killed_while_running
         and 0 < puts_first < rows],
        ["second run: exit code", second.returncode, "0", "-", "0", second.returncode == 0],
        ["second run: rows ok / unchanged / bad",
         f"{second_counts['ok']} / {second_counts['unchanged']} / {bad}", f"{rows} rows",
         f"{(second_counts['ok'] + second_counts['unchanged']) / rows:.2f}",
         "ok + unchanged = rows", second_counts["ok"] + second_counts["unchanged"] == rows
         and bad == 0],
        ["second run: seconds", f"{seconds_second:.1f}", "-", "-", "-", True],
        ["rows applied in BSG at the end", applied, f"{rows} rows", f"{applied / rows:.2f}",
         f"= {rows}", applied == rows],
        ["PUTs of both runs", puts_both, f"{rows} rows", f"{puts_both / rows:.3f}",
         f"<= {rows} + {CONCURRENCY}", puts_both <= rows + CONCURRENCY],
        ["dry run after: planned", dry_counts["planned"], "0", "-", "= 0",
         dry_counts["planned"] == 0],
    ])
    print(table)
    append_results(f"bench_resume ({rows} rows, latency {LATENCY_MS} ms, concurrency "
                   f"{CONCURRENCY}, SIGKILL {KILL_AFTER:g} s after the first PUT)", table)


if __name__ == "__main__":
    main(sys.argv[1:])
