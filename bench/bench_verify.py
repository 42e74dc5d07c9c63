"""Verify bench: HLR lookups per second and polls per lookup for N numbers at 50 ms latency.

An in-process emulator (latency 50 ms on every request, lookups final after HLR_DELAY s, at most
100 numbers per create and 1000 lookups in progress, BSG's documented-nowhere limits as the
emulator guesses them) verifies N new UK numbers through the library (`verify_numbers`), with
the CLI's defaults except the poll interval. Targets: every number paid for exactly once, every
result final, polls per lookup under 3.
Usage: .venv/bin/python -m bench.bench_verify [N]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from bench.common import append_results, format_table
from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.hlr import HlrClient
from bsg_sync.state import StateStore
from bsg_sync.verify import VerifyOptions, verify_numbers

LATENCY_MS = 50
HLR_DELAY = 2.0
KEY = "benchHlrKey"


def main(n: int) -> None:
    numbers = [f"4477{i:08d}" for i in range(n)]
    config = EmulatorConfig(hlr_api_key=KEY, latency_ms=LATENCY_MS, hlr_delay=HLR_DELAY,
                            hlr_balance=n * 0.01 + 1, hlr_max_batch=100, hlr_max_pending=1000)
    opts = VerifyOptions(batch=100, poll_interval=1.0, concurrency=8, poll_timeout=3600)
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.json"
        seed.write_text(json.dumps({"fields": [], "groups": [], "contacts": []}))
        with Emulator(config, seed=seed) as emu, \
                HlrClient(emu.url + "/rest", KEY, policy=RetryPolicy()) as hlr, \
                StateStore(Path(tmp) / "state.sqlite3") as store:
            t0 = time.monotonic()
            out = verify_numbers(hlr, store, numbers, opts)
            elapsed = time.monotonic() - t0
            stats = emu.hlr_stats()
    once = sorted(set(stats["numbers"].values())) == [1] and len(stats["numbers"]) == n
    final = all(v.status not in ("sent", "pending") for v in out.results.values())
    per = out.polls / max(1, out.created)
    rows = [
        ("numbers", n, "", ""),
        ("seconds", f"{elapsed:.1f}", "", ""),
        ("lookups/s", f"{out.created / elapsed:.0f}", "", ""),
        ("polls per lookup", f"{per:.2f}", "< 3", "yes" if per < 3 else "NO"),
        ("creates", stats["requests"].get("create", 0), "", ""),
        ("each number paid once", once, "True", "yes" if once else "NO"),
        ("every result final", final, "True", "yes" if final else "NO"),
    ]
    table = format_table(("measure", "result", "target", "pass"), rows)
    print(table)
    append_results(f"bench_verify ({n} numbers, {LATENCY_MS} ms latency, lookups final after "
                   f"{HLR_DELAY:g} s)", table)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
