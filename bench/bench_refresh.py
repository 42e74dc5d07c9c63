"""Refresh bench: how many GETs a sync's refresh costs, counted by the emulator.

Scenarios, each against a BOOK-contact book in an in-process emulator whose API handler is
wrapped to classify every request (list page, count, single GET, phone search, account):
  1. a BOOK-row sheet (contact id + phone + City), cold state, dry run:
     list pages <= ceil(BOOK / 500) (+ one count call);
  2. a PHONE_BOOK-row sheet by phone only (no id column) against a PHONE_BOOK-contact book,
     cold state, dry run: same target (smaller, because the emulator's search is a scan);
  3. a 50-row sheet with ids, cold state: contact GETs <= 50;
  4. a 50-row phone-only sheet after a `pull`: contact GETs + searches <= 50;
  5. a real sync of the BOOK-row sheet with 1% changed, then a dry run: zero planned;
  6. listing the BOOK-contact book at 50 ms latency (emulator in its own process), the pages
     after the first GET_WORKERS at a time vs one at a time, alternated, best of 2.
Usage: .venv/bin/python -m bench.bench_refresh [BOOK]
"""

from __future__ import annotations

import json
import logging
import math
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.common import DATA_DIR, append_results, format_table
from bsg_sync.client import BsgClient, RetryPolicy
from bsg_sync.emulator import Emulator
from bsg_sync.models import Status
from bsg_sync.refresh import GET_WORKERS, pull_all
from bsg_sync.state import StateStore
from bsg_sync.sync import SyncOptions, SyncOutcome, run_sync

CITY = 387716
FIRST_ID = 5_000_000
PAGE = 500
KEY = "live_bench_refresh"
SMALL = 50
PHONE_BOOK = 1000


def _phone(n: int) -> int:
    return 447700000000 + n


def write_seed(path: Path, book: int) -> None:
    contacts = [{"id": FIRST_ID + n, "phone": _phone(n), "fields": {str(CITY): f"City {n}"},
                 "groups": []} for n in range(book)]
    seed = {"fields": [{"id": CITY, "name": "City", "type": "text"}], "groups": [],
            "contacts": contacts}
    path.write_text(json.dumps(seed), encoding="utf-8")


def write_sheet(path: Path, rows: range, *, with_id: bool, changed_every: int = 0) -> None:
    """Rows n of the book; every `changed_every`-th one gets a new City."""
    lines = ["Contact ID,Phone,City" if with_id else "Phone,City"]
    for n in rows:
        city = f"New city {n}" if changed_every and n % changed_every == 0 else f"City {n}"
        lines.append(f"{FIRST_ID + n},+{_phone(n)},{city}" if with_id else f"+{_phone(n)},{city}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_mapping(path: Path, *, with_id: bool) -> None:
    ident = '"Contact ID" = "id"\n' if with_id else ""
    path.write_text(f'[columns]\n{ident}"Phone" = "phone"\n"City" = "field:City"\n',
                    encoding="utf-8")


def classify(method: str, target: str) -> str:
    parts = urlsplit(target)
    if method != "GET":
        return method
    if parts.path == "/api/contacts":
        limit = parse_qs(parts.query).get("page[limit]", ["15"])[0]
        return "list page" if int(limit) >= PAGE else "count"
    if parts.path == "/api/contacts/search":
        return "search"
    if parts.path.startswith("/api/contacts/") and parts.path.rsplit("/", 1)[-1].isdigit():
        return "contact GET"
    return "account"  # fields, groups


@contextmanager
def counting_emulator(seed: Path) -> Iterator[tuple[Emulator, Counter[str]]]:
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    with Emulator(seed=seed) as emu:
        inner: Callable[..., Any] = emu.api.handle

        def handle(method: str, target: str, body: bytes, auth: str | None) -> Any:
            with lock:
                counts[classify(method, target)] += 1
            return inner(method, target, body, auth)

        emu.api.handle = handle  # type: ignore[method-assign,assignment]
        yield emu, counts


def _run(emu: Emulator, counts: Counter[str], sheet: Path, mapping: Path, state: Path,
         **kw: Any) -> tuple[SyncOutcome, Counter[str], float]:
    opts = SyncOptions(sheet=sheet, mapping=mapping, state=state, api_url=emu.url,
                       report=sheet.with_suffix(".report.jsonl"), policy=RetryPolicy.fast(),
                       max_rps=None, concurrency=8, **kw)
    counts.clear()
    t0 = time.perf_counter()
    outcome = run_sync(opts, KEY)
    return outcome, Counter(counts), time.perf_counter() - t0


def _pull(emu: Emulator, state: Path) -> None:
    with BsgClient(emu.url, KEY, policy=RetryPolicy.fast()) as client, \
            StateStore(state) as store:
        pull_all(client, store)


def _listing_speed(seed: Path) -> tuple[float, float]:
    """Seconds to list the whole book one page at a time, and GET_WORKERS pages at a time."""
    from bench.bench_read import timed_pair
    from bench.bench_send import emulator

    with emulator(seed, latency_ms=50) as url:
        client = BsgClient(url, KEY, policy=RetryPolicy.fast())
        client.login()

        def listing(workers: int) -> None:
            assert sum(1 for _ in client.iter_contacts(page_limit=PAGE, workers=workers))

        return timed_pair(lambda: listing(1), lambda: listing(GET_WORKERS), repeat=2)


def main(argv: list[str]) -> None:
    logging.getLogger("bsg_sync").setLevel(logging.ERROR)
    book = int(argv[0]) if argv else 100_000
    pages = math.ceil(book / PAGE)
    DATA_DIR.mkdir(exist_ok=True)
    seed = DATA_DIR / f"refresh_seed_{book}.json"
    write_seed(seed, book)
    big_id, big_phone = (DATA_DIR / f"refresh_{book}_id.csv",
                        DATA_DIR / f"refresh_{PHONE_BOOK}_phone.csv")
    small_id, small_phone = DATA_DIR / "refresh_50_id.csv", DATA_DIR / "refresh_50_phone.csv"
    changed = DATA_DIR / f"refresh_{book}_changed.csv"
    write_sheet(big_id, range(book), with_id=True)
    write_sheet(big_phone, range(PHONE_BOOK), with_id=False)
    step = book // SMALL
    write_sheet(small_id, range(0, book, step), with_id=True)
    write_sheet(small_phone, range(0, book, step), with_id=False)
    write_sheet(changed, range(book), with_id=True, changed_every=100)
    m_id, m_phone = DATA_DIR / "refresh_id.toml", DATA_DIR / "refresh_phone.toml"
    write_mapping(m_id, with_id=True)
    write_mapping(m_phone, with_id=False)

    rows: list[list[object]] = []

    def line(figure: str, c: Counter[str], seconds: float, value: int, anchor: str,
             ideal: int, target: str, met: bool) -> None:
        ratio = f"{value / ideal:.2f}" if ideal else "-"
        detail = ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
        rows.append([figure, value, anchor, ratio, target, met, f"{seconds:.1f}", detail])

    with counting_emulator(seed) as (emu, counts), tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)

        _, c, s = _run(emu, counts, big_id, m_id, state / "a.sqlite3", dry_run=True)
        line(f"1 {book:,} rows by id, cold: list pages", c, s, c["list page"],
             f"ceil({book:,}/500) = {pages}", pages, f"<= {pages} (+1 count)",
             c["list page"] <= pages and c["count"] <= 1 and c["contact GET"] == 0)

        _, c, s = _run(emu, counts, small_id, m_id, state / "c.sqlite3", dry_run=True)
        gets = c["contact GET"] + c["list page"] + c["search"]
        line(f"3 {SMALL} rows by id vs {book:,}, cold: GETs", c, s, gets, f"{SMALL} rows",
             SMALL, f"<= {SMALL}", gets <= SMALL)

        _pull(emu, state / "d.sqlite3")
        _, c, s = _run(emu, counts, small_phone, m_phone, state / "d.sqlite3", dry_run=True)
        gets = c["contact GET"] + c["list page"] + c["search"]
        line(f"4 {SMALL} rows by phone after pull: GETs", c, s, gets, f"{SMALL} rows", SMALL,
             f"<= {SMALL}", gets <= SMALL)

        real, c, s = _run(emu, counts, changed, m_id, state / "e.sqlite3")
        ok = real.summary.counts[Status.OK.value]
        line(f"5a sync {book:,} rows, 1% changed: rows ok", c, s, ok, f"{book // 100} changed",
             book // 100, f"= {book // 100}", ok == book // 100)
        again, c, s = _run(emu, counts, changed, m_id, state / "e.sqlite3", dry_run=True)
        planned = again.summary.counts[Status.PLANNED.value]
        line("5b dry run right after: planned", c, s, planned, "0", 0, "= 0", planned == 0)

    phone_seed = DATA_DIR / f"refresh_seed_{PHONE_BOOK}.json"
    write_seed(phone_seed, PHONE_BOOK)
    phone_pages = math.ceil(PHONE_BOOK / PAGE)
    with counting_emulator(phone_seed) as (emu, counts), tempfile.TemporaryDirectory() as tmp:
        _, c, s = _run(emu, counts, big_phone, m_phone, Path(tmp) / "b.sqlite3", dry_run=True)
        gets = c["list page"] + c["search"] + c["contact GET"]
        line(f"2 {PHONE_BOOK:,} rows by phone vs {PHONE_BOOK:,}, cold: GETs", c, s, gets,
             f"ceil({PHONE_BOOK:,}/500) = {phone_pages}", phone_pages,
             f"<= {phone_pages} (+1 count)", gets <= phone_pages and c["count"] <= 1)
    one, parallel = _listing_speed(seed)
    rows.append([f"6 list {book:,} contacts at 50 ms, {GET_WORKERS} pages in flight (s)",
                 f"{parallel:.2f}", f"one page at a time {one:.2f}", f"{parallel / one:.2f}",
                 "<= 0.5", parallel / one <= 0.5, f"{one + parallel:.1f}", ""])
    rows.sort(key=lambda r: str(r[0]).split()[0])

    table = format_table(["figure", "value", "anchor", "ratio", "target", "met?", "seconds",
                          "requests by kind"], rows)
    print(table)
    append_results(f"bench_refresh (book of {book:,} contacts)", table)


if __name__ == "__main__":
    main(sys.argv[1:])
