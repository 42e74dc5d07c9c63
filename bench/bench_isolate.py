"""Cost of reading in a child process and of the pre-parse checks: `python -m bench.bench_isolate`.

Prints (does not append to RESULTS.md) the 100k x 12 XLSX figures: read_sheet in-process vs
read_sheet_isolated (child start-up + transport), the transport alone (pack, pickle, unpickle,
unpack), and filecheck.check_xlsx alone next to calamine alone.
"""

from __future__ import annotations

import pickle
import time
import zipfile
from pathlib import Path

from bench.bench_read import XLSX_ROWS, calamine_alone, make_xlsx, timed_pair
from bench.common import DATA_DIR, format_table


def _transport(sheet: object) -> None:
    from bsg_sync.isolate import _pack, _unpack_sheet

    _unpack_sheet(pickle.loads(pickle.dumps(_pack(sheet), protocol=pickle.HIGHEST_PROTOCOL)))


def _check(path: Path) -> None:
    from bsg_sync.filecheck import check_xlsx

    with zipfile.ZipFile(path) as zf:
        check_xlsx(path, zf)


def main() -> None:
    from bsg_sync.isolate import read_sheet_isolated
    from bsg_sync.reader import read_sheet

    DATA_DIR.mkdir(exist_ok=True)
    xlsx = DATA_DIR / "read_100k.xlsx"
    make_xlsx(xlsx, XLSX_ROWS)
    t_direct, t_isolated = timed_pair(lambda: read_sheet(xlsx), lambda: read_sheet_isolated(xlsx))
    sheet = read_sheet(xlsx)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        _transport(sheet)
        best = min(best, time.perf_counter() - start)
    t_check, t_cal = timed_pair(lambda: _check(xlsx), lambda: calamine_alone(xlsx))
    rows = [
        ["100k×12 XLSX read_sheet_isolated (s)", f"{t_isolated:.2f}",
         f"read_sheet {t_direct:.2f}", f"{t_isolated / t_direct:.2f}"],
        ["  of which transport (s)", f"{best:.2f}", f"read_sheet {t_direct:.2f}",
         f"{best / t_direct:.2f}"],
        ["100k×12 XLSX filecheck.check_xlsx (s)", f"{t_check:.2f}",
         f"calamine alone {t_cal:.2f}", f"{t_check / t_cal:.2f}"],
    ]
    print(format_table(["figure", "value", "anchor", "ratio"], rows))


if __name__ == "__main__":
    main()
