"""The state store's size after 30 nightly runs, with and without the retention prune.

    .venv/bin/python -m bench.bench_state_size [ROWS] [NIGHTS]   # default 100000 rows, 30 nights

Writes the results of each night straight through the store API (no network): one run per
night, ROWS results each (95 % unchanged, 5 % updated with a changes text, as a nightly
sheet looks), started a day after the one before. Four stores:

- no prune: what the store did before retention existed;
- nightly prune at the default retention (90 days): 30 nights are all kept, but the WAL is
  truncated after every run;
- nightly prune at a 7-day retention (what dry runs and web previews get): the steady state;
- nightly dry runs with the default prune (7 days for dry runs).

The anchor is the first store; the ratio is each store's size against it.
"""

from __future__ import annotations

import shutil
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import DATA_DIR, append_results, format_table
from bsg_sync.models import Action, RowResult, Status
from bsg_sync.state import DRY_RUN_RETENTION_DAYS, RETENTION_DAYS, StateStore

FIRST_NIGHT = datetime(2026, 1, 1, 2, 0, tzinfo=timezone.utc)


def _results(rows: int, night: int) -> list[RowResult]:
    out = []
    for n in range(rows):
        if n % 20 == night % 20:
            out.append(RowResult(row=n + 2, contact_id=248500000 + n, phone=f"4477009{n:05d}",
                                 action=Action.UPDATE, status=Status.OK,
                                 changes=f"City: Town{n} → City{night}", attempts=1,
                                 http_status=200, hlr_status="active",
                                 hlr_last_check="2026-01-01 10:00:00"))
        else:
            out.append(RowResult(row=n + 2, contact_id=248500000 + n, phone=f"4477009{n:05d}",
                                 hlr_status="active", hlr_last_check="2026-01-01 10:00:00"))
    return out


def _size(path: Path) -> tuple[int, int]:
    wal = Path(f"{path}-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


def run_store(path: Path, rows: int, nights: int, *, prune_days: float | None,
              dry: bool) -> tuple[int, int, int, float]:
    """Size of the store and of its WAL (measured with the store still open, as a nightly
    run leaves it), the biggest WAL seen, and the seconds spent."""
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    t0 = time.monotonic()
    biggest_wal = 0
    with StateStore(path) as store:
        for night in range(nights):
            when = FIRST_NIGHT + timedelta(days=night)
            run_id = store.begin_run(sheet="nightly.csv", sheet_sha256="0" * 64,
                                     mapping="bsg-sync.toml", options={"dry run": str(dry)},
                                     started_at=when.isoformat(timespec="seconds"))
            store.record_results(run_id, _results(rows, night))
            store.end_run(run_id, {"ok": rows // 20, "unchanged": rows - rows // 20})
            biggest_wal = max(biggest_wal, _size(path)[1])
            if prune_days is not None:
                store.prune(days=prune_days, dry_run_days=min(prune_days,
                                                              DRY_RUN_RETENTION_DAYS),
                            now=when + timedelta(hours=1))
        db, wal = _size(path)
    return db, wal, biggest_wal, time.monotonic() - t0


def main(argv: list[str]) -> None:
    rows = int(argv[0]) if argv else 100_000
    nights = int(argv[1]) if len(argv) > 1 else 30
    folder = DATA_DIR / "state_size"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cases = [
        ("no prune", None, False),
        (f"nightly prune, {RETENTION_DAYS:g}-day retention", RETENTION_DAYS, False),
        ("nightly prune, 7-day retention", 7.0, False),
        (f"nightly dry runs, prune ({DRY_RUN_RETENTION_DAYS:g} days)", RETENTION_DAYS, True),
    ]
    measured = []
    for name, days, dry in cases:
        db, wal, biggest, seconds = run_store(folder / "state.sqlite3", rows, nights,
                                              prune_days=days, dry=dry)
        measured.append((name, db, wal, biggest, seconds))
        print(f"{name}: {db / 1e6:.1f} MB + WAL {wal / 1e6:.1f} MB in {seconds:.0f} s",
              file=sys.stderr, flush=True)
    anchor = measured[0][1] + measured[0][2]
    table_rows = []
    for name, db, wal, biggest, _seconds in measured:
        total = db + wal
        per_row = total / (rows * nights)
        if name.startswith("no prune"):
            target, met = "-", "-"
        elif "7-day" in name or "dry" in name:
            kept = min(nights, 8)  # 7 days back plus tonight
            target = f"<= {anchor * kept / nights * 1.2 / 1e6:.0f} MB"
            met = str(total <= anchor * kept / nights * 1.2)
        else:  # nothing is old enough to go yet; the WAL (biggest without: see above) goes
            target = f"WAL truncated (was up to {biggest / 1e6:.1f} MB)"
            met = str(wal == 0)
        table_rows.append([f"{name}: store + WAL after {nights} nights",
                           f"{total / 1e6:.1f} MB (WAL {wal / 1e6:.1f} MB, "
                           f"{per_row:.0f} B/row-run)",
                           f"{anchor / 1e6:.1f} MB", f"{total / anchor:.2f}", target, met])
    table = format_table(["figure", "value", "anchor", "ratio", "target", "met?"], table_rows)
    print(table)
    append_results(f"bench_state_size ({rows} rows a night, {nights} nights)", table)


if __name__ == "__main__":
    main(sys.argv[1:])
