"""Scale bench: Excel's full size in bounded memory, and the 100k dry run against pandas.

    .venv/bin/python -m bench.bench_scale [ROWS_1M] [ROWS_100K]

1. `bsg-sync sync --dry-run` of a ROWS_1M-row x 12-column XLSX (default 1,048,575 data rows
   under the header: Excel's 1,048,576 rows), phone-only mapping, against an emulator (in its
   own process, not measured) holding a 1,000-contact book: peak RSS of the whole process tree
   (the CLI and its isolated reader child), sampled from /proc every 50 ms. Target < 1 GiB.
   Then a real sync of the same sheet, same mapping, against a book of SYNC_BOOK contacts
   whose phones are those of every (rows / SYNC_BOOK)-th row and whose fields are empty: those
   rows are written (a fresh GET and a PUT each), the rest are not found. Same target.
2. `run_sync` dry run of a ROWS_100K-row x 12-column XLSX (contact id, phone and fields, 1%
   changed) against a ROWS_100K-contact book, end to end with the rate cap off, vs pandas +
   openpyxl merely reading the same file (`pandas.read_excel(engine="openpyxl")`), alternated
   in the same run, best of 2 each. Target <= 0.75x.
The sheets and seeds are generated once into bench/data/ (git-ignored).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_read import HEADERS, make_xlsx
from bench.bench_send import emulator
from bench.common import DATA_DIR, append_results, format_table

ROWS_1M, ROWS_100K, SMALL_BOOK, SYNC_BOOK = 1_048_575, 100_000, 1000, 1000
FIRST_ID = 7_000_000
FIELDS = {"First name": 11, "Last name": 12, "City": 13, "Email": 14, "Zip": 15}
KEY = "live_bench_scale"
SAMPLE_S = 0.05


# --------------------------------------------------------------------------- data


def _phone(n: int) -> int:
    return 447700000000 + n


def _fields(n: int) -> dict[str, str]:
    return {"First name": f"First{n}", "Last name": f"Last{n % 977}", "City": f"City {n % 5000}",
            "Email": f"p{n}@example.com", "Zip": f"{n % 100000:05d}"}


def write_seed(path: Path, book: int) -> None:
    if path.exists():
        return
    contacts = [{"id": FIRST_ID + n, "phone": _phone(n),
                 "fields": {str(FIELDS[k]): v for k, v in _fields(n).items()}, "groups": []}
                for n in range(book)]
    seed = {"fields": [{"id": i, "name": name, "type": "text"} for name, i in FIELDS.items()],
            "groups": [], "contacts": contacts}
    path.write_text(json.dumps(seed), encoding="utf-8")


def make_book_xlsx(path: Path, rows: int) -> None:
    """The book's contacts as a 12-column sheet (Ref = contact id), every 100th City changed."""
    import openpyxl

    if path.exists():
        return
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Contacts")
    ws.append(HEADERS)
    rng = random.Random(5)
    for n in range(rows):
        f = _fields(n)
        city = f"Moved {n}" if n % 100 == 0 else f["City"]
        ws.append([f"+{_phone(n)}", f["First name"], f["Last name"], city, f["Email"],
                   "", f["Zip"], rng.random() * 100, "2024-01-01", "note", "GB", FIRST_ID + n])
    wb.save(path)


def write_mapping(path: Path, *, with_id: bool) -> None:
    ident = '"Ref" = "id"\n' if with_id else ""
    fields = "".join(f'"{name}" = "field:{name}"\n' for name in FIELDS)
    path.write_text(f'[columns]\n{ident}"Mobile" = "phone"\n{fields}\n[options]\n'
                    'default_country = "GB"\n', encoding="utf-8")


# --------------------------------------------------------------------------- 1. peak RSS


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and every descendant, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += [p for p, parent in parents.items() if parent == pid]
    return total


def peak_tree_rss(command: list[str], env: dict[str, str]) -> tuple[int, float, int]:
    """(peak RSS of the process tree, seconds, exit code) of one command."""
    t0 = time.perf_counter()
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE) as proc:
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(SAMPLE_S)
        err = proc.stderr.read() if proc.stderr else b""
    if proc.returncode not in (0, 1):
        sys.stderr.write(err.decode("utf-8", "replace")[-2000:])
    return peak, time.perf_counter() - t0, proc.returncode


def full_size_dry_run(rows: int) -> tuple[float, float, int]:
    """(peak RSS MiB, seconds, exit code) of a dry run of the full sheet (JSONL report)."""
    seed = DATA_DIR / f"scale_seed_{SMALL_BOOK}.json"
    write_seed(seed, SMALL_BOOK)
    peak, seconds, code, _ = _full_size_run(rows, seed, dry_run=True)
    return peak, seconds, code


def _full_size_run(rows: int, seed: Path, *, dry_run: bool) -> tuple[float, float, int, int]:
    """(peak RSS MiB, seconds, exit code, rows ok) of `bsg-sync sync` of the full sheet,
    phone and fields mapped, against `seed`'s book in an emulator (not measured)."""
    sheet = DATA_DIR / ("scale_1m.xlsx" if rows == ROWS_1M else f"scale_{rows}.xlsx")
    make_xlsx(sheet, rows)
    with tempfile.TemporaryDirectory() as tmp, emulator(seed) as url:
        mapping = Path(tmp) / "m.toml"
        write_mapping(mapping, with_id=False)
        report = Path(tmp) / ("r.jsonl" if dry_run else "r.csv")
        command = [sys.executable, "-m", "bsg_sync", "sync", str(sheet), "--mapping", str(mapping),
                   *(["--dry-run"] if dry_run else []), "--state", str(Path(tmp) / "s.db"),
                   "--report", str(report), "--api-url", url, "--no-rate-limit", "-q"]
        env = {**os.environ, "BSG_API_KEY": KEY}
        peak, seconds, code = peak_tree_rss(command, env)
        ok = 0
        if not dry_run:
            with report.open(encoding="utf-8-sig", newline="") as fh:
                ok = sum(1 for r in csv.DictReader(fh) if r["status"] == "ok")
    return peak / 2**20, seconds, code, ok


def write_sync_seed(path: Path, rows: int, book: int) -> None:
    """`book` contacts holding the phones of about every (rows / book)-th row of make_xlsx's
    sheet (its generator replayed), each a phone that no other row has, with no field values:
    a sync of the sheet writes each of them once."""
    from collections import Counter

    from bench.bench_read import _row
    from bsg_sync.phones import PhoneNormaliser

    if path.exists():
        return
    rng, cells = random.Random(1), []
    for i in range(rows):
        cells.append(str(_row(rng, i)[0]))
    # the sheet's three phone styles: +44 7xxx xxxxxx, 07xxx xxxxxx, 447xxxxxxxxx
    digits = ["44" + d[1:] if d.startswith("0") else d
              for d in ("".join(ch for ch in c if ch.isdigit()) for c in cells)]
    once = Counter(digits)
    normalise, step, phones = PhoneNormaliser("GB"), max(1, rows // book), []
    for i in range(0, rows):
        if len(phones) == book:
            break
        if (i % step == 0 or len(phones) < i // step) and once[digits[i]] == 1 \
                and normalise(cells[i]).digits == digits[i]:
            phones.append(digits[i])
    contacts = [{"id": FIRST_ID + n, "phone": int(p), "fields": {}, "groups": []}
                for n, p in enumerate(phones)]
    seed = {"fields": [{"id": i, "name": name, "type": "text"} for name, i in FIELDS.items()],
            "groups": [], "contacts": contacts}
    path.write_text(json.dumps(seed), encoding="utf-8")


def full_size_sync(rows: int) -> tuple[float, float, int, int]:
    """(peak RSS MiB, seconds, exit code, rows written) of a real sync of the full sheet."""
    seed = DATA_DIR / f"scale_sync_seed_{rows}_{SYNC_BOOK}.json"
    write_sync_seed(seed, rows, SYNC_BOOK)
    return _full_size_run(rows, seed, dry_run=False)


# --------------------------------------------------------------------------- 2. 100k dry run


def dry_run_100k(sheet: Path, mapping: Path, url: str) -> None:
    from bsg_sync.client import RetryPolicy
    from bsg_sync.sync import SyncOptions, run_sync

    with tempfile.TemporaryDirectory() as tmp:
        opts = SyncOptions(sheet=sheet, mapping=mapping, state=Path(tmp) / "s.db", api_url=url,
                           report=Path(tmp) / "r.jsonl", dry_run=True, max_rps=None,
                           concurrency=8, policy=RetryPolicy.fast())
        outcome = run_sync(opts, KEY)
    assert outcome.aborted is None, outcome.aborted


def pandas_read(sheet: Path) -> None:
    import pandas as pd

    pd.read_excel(sheet, engine="openpyxl")


def hundred_k(rows: int) -> tuple[float, float]:
    from bench.bench_read import timed_pair

    sheet = DATA_DIR / f"scale_book_{rows}.xlsx"
    make_book_xlsx(sheet, rows)
    seed = DATA_DIR / f"scale_seed_{rows}.json"
    write_seed(seed, rows)
    with tempfile.TemporaryDirectory() as tmp, emulator(seed) as url:
        mapping = Path(tmp) / "m.toml"
        write_mapping(mapping, with_id=True)
        return timed_pair(lambda: dry_run_100k(sheet, mapping, url),
                          lambda: pandas_read(sheet), repeat=2)


def main(argv: list[str]) -> None:
    logging.getLogger("bsg_sync").setLevel(logging.ERROR)
    big = int(argv[0]) if argv else ROWS_1M
    small = int(argv[1]) if len(argv) > 1 else ROWS_100K
    DATA_DIR.mkdir(exist_ok=True)
    t_ours, t_pandas = hundred_k(small)
    peak, seconds, code = full_size_dry_run(big)
    s_peak, s_seconds, s_code, written = full_size_sync(big)
    rows = [
        [f"{big + 1:,}-row x 12 XLSX dry run, peak RSS of the tree (MiB)", f"{peak:.0f}",
         "1024 MiB", f"{peak / 1024:.2f}", "< 1", peak < 1024 and code in (0, 1)],
        [f"{big + 1:,}-row dry run, seconds (exit {code})", f"{seconds:.1f}", "-", "-",
         "report", "n/a"],
        [f"{big + 1:,}-row x 12 XLSX real sync ({written:,} rows written), peak RSS (MiB)",
         f"{s_peak:.0f}", "1024 MiB", f"{s_peak / 1024:.2f}", "< 1",
         s_peak < 1024 and s_code in (0, 1) and written == SYNC_BOOK],
        [f"{big + 1:,}-row real sync, seconds (exit {s_code})", f"{s_seconds:.1f}", "-", "-",
         "report", "n/a"],
        [f"{small:,}-row XLSX dry run vs {small:,} book, end to end (s)", f"{t_ours:.2f}",
         f"pandas+openpyxl read {t_pandas:.2f}", f"{t_ours / t_pandas:.2f}", "<= 0.75",
         t_ours / t_pandas <= 0.75],
    ]
    table = format_table(["figure", "value", "anchor", "ratio", "target", "met?"], rows)
    print(table)
    append_results("bench_scale", table)


if __name__ == "__main__":
    main(sys.argv[1:])
