"""The self-contained demo: a bundled emulator, the sample sheets, three syncs."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bsg_sync import report
from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.errors import UsageError
from bsg_sync.models import Status
from bsg_sync.sync import SyncOptions, SyncOutcome, run_sync

DEMO_SHEET = "contacts.csv"
DEMO_KEY = "live_demo_key_not_a_secret"
SHOWN_CHANGES = 8


def find_samples() -> Path:
    """sample_sheets/ of a source checkout, else the copy installed as data files."""
    here = Path(__file__).resolve().parent
    candidates = [
        here.parent / "sample_sheets",
        Path(sys.prefix) / "share" / "bsg-sync" / "sample_sheets",
    ]
    for c in candidates:
        if (c / "seed.json").is_file() and (c / DEMO_SHEET).is_file():
            return c
    raise UsageError("the sample sheets are not installed; reinstall bsg-sync from its source")


def run_demo(workdir: Path | None, echo: Callable[[str], None]) -> list[SyncOutcome]:
    """Dry run, real sync, second sync (which must send nothing); returns the three outcomes."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="bsg-sync-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    samples = find_samples()
    for f in samples.iterdir():
        if f.is_file() and f.suffix in {".csv", ".xlsx", ".toml", ".json"}:
            shutil.copy2(f, workdir / f.name)
    sheet = workdir / DEMO_SHEET
    with Emulator(EmulatorConfig(latency_ms=5), seed=workdir / "seed.json") as emu:
        echo(f"emulator of BSG One-API running at {emu.url} (seeded from {samples.name}/seed.json)")
        base = SyncOptions(
            sheet=sheet,
            state=workdir / "state.sqlite3",
            api_url=emu.url,
            errors=workdir / "contacts.errors.csv",
            policy=RetryPolicy(backoff_initial=0.05, backoff_max=0.5, retry_after_cap=1.0),
            concurrency=8,
            max_rps=None,
        )
        steps = [
            (
                "1. dry run (sends nothing)",
                replace(base, dry_run=True, report=workdir / "contacts.dry-run.report.xlsx"),
            ),
            ("2. real sync", replace(base, report=workdir / "contacts.report.xlsx")),
            (
                "3. second sync (nothing left to send)",
                replace(base, report=workdir / "contacts.second.report.xlsx"),
            ),
        ]
        outcomes = []
        for title, opts in steps:
            writes_before = int(emu.stats()["writes"])
            outcome = run_sync(opts, DEMO_KEY)
            writes = int(emu.stats()["writes"]) - writes_before
            echo("")
            echo(f"{title}: {writes} writes sent")
            _show(outcome, echo)
            outcomes.append(outcome)
    echo("")
    echo(f"reports and the errors file are in {workdir}")
    return outcomes


def _show(outcome: SyncOutcome, echo: Callable[[str], None]) -> None:
    shown = 0
    for r in outcome.results:
        if r.changes and r.status in (Status.PLANNED, Status.OK) and shown < SHOWN_CHANGES:
            echo(f"   row {r.row}: {r.status.value}: {r.changes}")
            shown += 1
    for r in outcome.results:
        if r.status in (Status.INVALID, Status.NOT_FOUND, Status.FAILED):
            echo(f"   row {r.row}: {r.status.value} ({r.error_code}): {r.error}")
    hlr = report.hlr_sentence(outcome.summary)
    if hlr:
        echo(f"   {hlr}")
    echo(f"   {report.summary_sentence(outcome.summary)}")
