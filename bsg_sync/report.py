"""Report, errors-file and run-summary writers (XLSX / CSV / JSONL), formula-safe and 0600."""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from bsg_sync import xlsxwrite
from bsg_sync.errors import UsageError
from bsg_sync.models import REPORT_COLUMNS, Action, RowResult, RowResults, Sheet, Status

if TYPE_CHECKING:
    from bsg_sync.state import RunInfo

log = logging.getLogger(__name__)

REPORT_FORMATS = (".xlsx", ".csv", ".jsonl")
ERRORS_FORMATS = (".csv", ".xlsx")
ERROR_STATUSES = frozenset({Status.INVALID, Status.NOT_FOUND, Status.FAILED})
QUIET_HLR = frozenset({"", "active", "unknown"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A value made only of digits and phone punctuation cannot call a function or DDE.
_PLAIN_NUMBER = re.compile(r"[+-]?[\d\s().-]*\d[\d\s().-]*")
_ERROR_COLUMNS = ("error_code", "error")
STATUS_COLOURS: Mapping[str, str] = {
    Status.OK.value: "C6EFCE",  # green
    Status.UNCHANGED.value: "E7E6E6",  # grey
    Status.PLANNED.value: "DDEBF7",  # blue
    Status.INVALID.value: "FFEB9C",  # amber
    Status.NOT_FOUND.value: "FFD966",  # darker amber
    Status.FAILED.value: "FF7C80",  # red
    Status.NOT_SENT.value: "FCE4D6",  # light red
    Status.SKIPPED.value: "FFF2CC",  # pale yellow
}
#: the XLSX report's headings, for people (CSV and JSONL keep the machine names)
REPORT_HEADINGS: Mapping[str, str] = {
    "row": "Row", "contact_id": "Contact ID", "phone": "Phone", "action": "Action",
    "status": "Status", "error_code": "Error code", "error": "Problem", "changes": "Changes",
    "attempts": "Attempts", "http_status": "HTTP status", "hlr_status": "HLR status",
    "hlr_last_check": "HLR checked", "verify_status": "Number check", "network": "Network",
    "country": "Country", "ported": "Ported", "roaming": "Roaming",
    "verified_at": "Number checked at", "verify_cost": "Check cost",
}
_REPORT_WIDTHS = (7, 12, 16, 9, 11, 22, 50, 50, 9, 11, 12, 20, 13, 10, 9, 8, 8, 20, 11)
_PHONE_COL = REPORT_COLUMNS.index("phone")
_STATUS_COL = REPORT_COLUMNS.index("status")
_STATUS_XF = {status: xlsxwrite.fill_style(i) for i, status in enumerate(STATUS_COLOURS)}


@dataclass(frozen=True)
class RunSummary:
    """Everything a run's summary shows: counts, timings, paths and options."""

    run_id: int | None
    sheet: Path
    sheet_sha256: str
    report_path: Path | None
    errors_path: Path | None
    dry_run: bool
    started_at: str
    finished_at: str
    duration_s: float
    options: Mapping[str, str]
    counts: Mapping[str, int]
    error_codes: Mapping[str, int]
    hlr: Mapping[str, int]
    requests: int
    retries: int
    rows: int
    ok_actions: Mapping[str, int] = field(default_factory=dict)  # ok rows per action


# --------------------------------------------------------------------------- summary


def summarise(
    results: Sequence[RowResult],
    *,
    run_id: int | None,
    sheet: Path,
    sheet_sha256: str,
    report_path: Path | None,
    errors_path: Path | None,
    dry_run: bool,
    started_at: str,
    finished_at: str,
    duration_s: float,
    options: Mapping[str, str],
    requests: int,
    retries: int,
) -> RunSummary:
    """Count the results per status (all present), per error code and per HLR status."""
    tally = _Tally.of(results)
    codes, hlr = tally.codes, tally.hlr
    return RunSummary(
        run_id=run_id,
        sheet=sheet,
        sheet_sha256=sheet_sha256,
        report_path=report_path,
        errors_path=errors_path,
        dry_run=dry_run,
        started_at=started_at,
        finished_at=finished_at,
        duration_s=duration_s,
        options=dict(options),
        counts=_every_status(tally.statuses),
        error_codes=dict(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))),
        hlr=dict(sorted(hlr.items(), key=lambda kv: (-kv[1], kv[0]))),
        requests=requests,
        retries=retries,
        rows=tally.rows,
        ok_actions=dict(tally.ok_actions),
    )


@dataclass
class _Tally:
    """What the summary counts, in one pass over the results (a million rows made as they
    are read are made once, not once per count): the rows counted per (status, error code,
    HLR status, action) by Counter in C, then the few distinct combinations added up."""

    rows: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    hlr: Counter[str] = field(default_factory=Counter)
    ok_actions: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, results: Iterable[RowResult]) -> _Tally:
        t = cls()
        combos = Counter(map(_TALLIED, results))  # in the order each combination first shows
        for (status, code, hlr, action), n in combos.items():
            t.rows += n
            t.statuses[_status_text(status)] += n
            if code:
                t.codes[code] += n
            if hlr:
                t.hlr[hlr] += n
            if status is Status.OK:
                t.ok_actions[_action_text(action)] += n
        return t


_TALLIED = attrgetter("status", "error_code", "hlr_status", "action")


class _HasStatus(Protocol):
    @property
    def status(self) -> Status | str: ...


def count_statuses(rows: Iterable[_HasStatus]) -> dict[str, int]:
    """Rows per status text, every status present (0 when none): the one place that counts
    them, for the summary, the pages and the progress."""
    return _every_status(Counter(_status_text(r.status) for r in rows))


def _every_status(statuses: Mapping[str, int]) -> dict[str, int]:
    return {s.value: statuses.get(s.value, 0) for s in Status}


def summary_of_run(info: RunInfo, results: Sequence[RowResult], report_path: Path | None,
                   sheet: Path | None = None) -> RunSummary:
    """The summary of a run from the state store (`bsg-sync show RUN --report`, the web page's
    History): the store's UTC times shown local like a run's own report, and the duration
    between them; `sheet`: the name to show instead of the recorded path."""
    return summarise(
        results, run_id=info.id, sheet=sheet or Path(info.sheet), sheet_sha256=info.sha256,
        report_path=report_path, errors_path=None, dry_run=info.dry_run,
        started_at=local_time(info.started_at), finished_at=local_time(info.ended_at or ""),
        duration_s=_seconds_between(info.started_at, info.ended_at), options=info.options,
        requests=0, retries=0)


def parse_store_time(text: str) -> datetime | None:
    """A state store time (ISO) as an aware datetime; None when it is not one."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.astimezone()


def local_time(text: str) -> str:
    """A state store time (ISO, UTC) as a run's own report writes it (local, to the second)."""
    when = parse_store_time(text)
    return text if when is None else when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _seconds_between(started: str, ended: str | None) -> float:
    a, b = parse_store_time(started), parse_store_time(ended or "")
    return 0.0 if a is None or b is None else max((b - a).total_seconds(), 0.0)


def summary_json(summary: RunSummary) -> dict[str, Any]:
    """The `--json` object: run id, counts, error codes, HLR counts, requests, paths."""
    return {
        "run_id": summary.run_id,
        "rows": summary.rows,
        "dry_run": summary.dry_run,
        "counts": dict(summary.counts),
        "error_codes": dict(summary.error_codes),
        "hlr": dict(summary.hlr),
        "requests": summary.requests,
        "retries": summary.retries,
        "ok_actions": dict(summary.ok_actions),
        "duration_s": round(summary.duration_s, 3),
        "started_at": summary.started_at,
        "finished_at": summary.finished_at,
        "sheet": str(summary.sheet),
        "sheet_sha256": summary.sheet_sha256,
        "report_path": _path_text(summary.report_path),
        "errors_path": _path_text(summary.errors_path),
    }


def summary_sentence(summary: RunSummary) -> str:
    """One line: "412 rows: 380 unchanged, 29 updated, 3 invalid — report: x.report.xlsx"."""
    parts = _count_phrases(summary.counts, summary.ok_actions)
    rows = f"{summary.rows} row" + ("" if summary.rows == 1 else "s")
    text = f"{rows}: {', '.join(parts)}" if parts else rows
    if summary.dry_run:
        text += " (dry run, nothing sent)"
    tails = []
    if summary.report_path is not None:
        tails.append(f"report: {summary.report_path}")
    if summary.errors_path is not None:
        tails.append(f"errors: {summary.errors_path}")
    return f"{text} — {', '.join(tails)}" if tails else text


def hlr_sentence(summary: RunSummary) -> str | None:
    """E.g. "7 numbers absent, 2 failed HLR"; None when every number is active/unknown."""
    parts = [
        _hlr_phrase(status, n)
        for status, n in summary.hlr.items()
        if n and status.strip().lower() not in QUIET_HLR
    ]
    return ", ".join(parts) if parts else None


def ok_actions(results: Iterable[RowResult]) -> dict[str, int]:
    """Counts of `ok` rows per action, for `summary_sentence`."""
    return dict(Counter(_action_text(r.action) for r in results if r.status is Status.OK))


def _count_phrases(counts: Mapping[str, int], ok_split: Mapping[str, int]) -> list[str]:
    phrases: list[str] = []
    # unchanged first: "380 unchanged, 29 updated, 3 invalid" reads from the bulk to the exceptions
    order = [Status.UNCHANGED, *(s for s in Status if s is not Status.UNCHANGED)]
    for status in order:
        n = counts.get(status.value, 0)
        if status is Status.OK:
            phrases.extend(_ok_phrases(n, ok_split))
        elif n:
            phrases.append(f"{n} {status.value.replace('_', ' ')}")
    return phrases


def _ok_phrases(n: int, ok_split: Mapping[str, int]) -> list[str]:
    updated = ok_split.get(Action.UPDATE.value, 0)
    created = ok_split.get(Action.CREATE.value, 0)
    deleted = ok_split.get(Action.DELETE.value, 0)
    other = n - updated - created - deleted
    named = [(updated, "updated"), (created, "created"), (deleted, "deleted"), (other, "ok")]
    return [f"{count} {word}" for count, word in named if count > 0]


def _hlr_phrase(status: str, n: int) -> str:
    numbers = "number" if n == 1 else "numbers"
    if status == "failed":
        return f"{n} failed HLR"
    if status == "sent":
        return f"{n} HLR {'check' if n == 1 else 'checks'} pending"
    return f"{n} {numbers} {status}"


# --------------------------------------------------------------------------- cells


def neutralise(value: object) -> str:
    """Cell text a spreadsheet will not run as a formula: "'=1+2" for "=1+2"; None -> ""."""
    if value is None:
        return ""
    if isinstance(value, Status | Action):
        return str(value.value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _neutralise_input(value: str) -> str:
    """Like `neutralise`, but keeps plain numbers ("+44 7700 900123") so a re-run reads them."""
    return value if _PLAIN_NUMBER.fullmatch(value) else neutralise(value)


def _status_text(status: Status | str) -> str:
    return status.value if isinstance(status, Status) else str(status)


def _action_text(action: Action | str) -> str:
    return action.value if isinstance(action, Action) else str(action)


def _path_text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def report_record(result: RowResult, *, csv_safe: bool = False) -> dict[str, Any]:
    """A result as a report row: ints stay ints, None stays None, enums become their text;
    `csv_safe` neutralises text a spreadsheet would run (only CSV needs it: an XLSX text
    cell never runs, and JSON is not a spreadsheet)."""
    cell = _csv_cell if csv_safe else _report_cell
    return dict(zip(REPORT_COLUMNS, map(cell, _REPORT_VALUES(result)), strict=True))


_REPORT_VALUES = attrgetter(*REPORT_COLUMNS)


def _report_cell(value: object) -> Any:
    kind = type(value)
    if value is None or kind is str or kind is int:  # nearly every cell: as it is
        return value
    if isinstance(value, Status | Action):
        return value.value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return str(value)


def _csv_cell(value: object) -> Any:
    if isinstance(value, Status | Action):
        return value.value
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return neutralise(value)


# --------------------------------------------------------------------------- paths


def check_output_path(path: Path, sheet: Path, option: str, formats: Sequence[str]) -> None:
    """Refuse an unknown extension, the input sheet itself, or a missing directory."""
    suffix = path.suffix.lower()
    if suffix not in formats:
        names = ", ".join(formats[:-1]) + f" or {formats[-1]}"
        raise UsageError(f"{option} must end in {names} (got {path.name!r})")
    if _same_file(path, sheet):
        raise UsageError(f"{option} would overwrite the input sheet; choose another path")
    if not path.resolve().parent.is_dir():
        raise UsageError(f"{option}: directory {path.parent} does not exist")


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temp files a killed run left beside `path` (`.<name>.*.tmp`)."""
    removed = []
    for tmp in path.resolve().parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            tmp.unlink()
        except OSError as exc:
            log.warning("could not remove %s, left by an earlier run: %s", tmp, exc.strerror)
            continue
        log.info("removed %s, left by an earlier run", tmp)
        removed.append(tmp)
    return removed


def probe_output(path: Path, option: str) -> None:
    """Create and remove a temp file where the writer will put its own, so that a read-only
    or foreign folder is refused before anything is sent (exit 2), not after."""
    directory = path.resolve().parent
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as exc:
        raise UsageError(
            f"{option}: cannot write in {directory} ({exc.strerror}); choose a folder you can "
            "write to"
        ) from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a.resolve() == b.resolve()


@contextmanager
def _private_file(path: Path, mode: str) -> Iterator[tuple[IO[Any], Path]]:
    """A 0600 temp file beside `path`, moved over it only when writing succeeded."""
    fd, tmp = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp_path = Path(tmp)
    try:
        os.fchmod(fd, 0o600)
        kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": "utf-8-sig", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle, tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- report


def write_report(path: Path, results: Iterable[RowResult], summary: RunSummary) -> None:
    """Write one row per result, sorted by row, as .xlsx, .csv or .jsonl (by extension);
    RowResults are in row order already and are streamed, not copied."""
    check_output_path(path, summary.sheet, "--report", REPORT_FORMATS)
    ordered: Sequence[RowResult] = (
        results if isinstance(results, RowResults) else sorted(results, key=lambda r: r.row))
    writers: dict[str, Callable[[Path, Sequence[RowResult], RunSummary], None]] = {
        ".xlsx": _write_report_xlsx,
        ".csv": _write_report_csv,
        ".jsonl": _write_report_jsonl,
    }
    writers[path.suffix.lower()](path, ordered, summary)
    log.info("report: %d rows written to %s", len(ordered), path)


def _write_report_csv(path: Path, results: Sequence[RowResult], summary: RunSummary) -> None:
    with _private_file(path, "w") as (handle, _tmp):
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        for r in results:
            record = report_record(r, csv_safe=True)
            writer.writerow(["" if v is None else v for v in record.values()])


def _write_report_jsonl(path: Path, results: Sequence[RowResult], summary: RunSummary) -> None:
    with _private_file(path, "wb") as (handle, _tmp):
        for r in results:
            handle.write(report_json_line(r).encode("utf-8"))


def _write_report_xlsx(path: Path, results: Sequence[RowResult], summary: RunSummary) -> None:
    """The report on "Report" (then "Report (2)", ... past Excel's row limit), then
    "Summary"."""
    body = _report_rows(results)
    heading = next(body)
    reports = xlsxwrite.split_sheets("Report", heading, body, len(results),
                                     widths=_REPORT_WIDTHS)
    summary_sheet = xlsxwrite.XlsxSheet(
        "Summary", _summary_sheet_rows(summary), widths=(28, 66), freeze_header=False
    )
    with _private_file(path, "wb") as (handle, _tmp):
        xlsxwrite.write_workbook(handle, [*reports, summary_sheet], list(STATUS_COLOURS.values()))


def _report_rows(results: Iterable[RowResult]) -> Iterator[list[xlsxwrite.Cell]]:
    """The heading in people's words, then each result as exact text (text cells never run)."""
    yield [(REPORT_HEADINGS[name], xlsxwrite.BOLD) for name in REPORT_COLUMNS]
    for r in results:
        record = report_record(r)
        row: list[xlsxwrite.Cell] = [(v, xlsxwrite.PLAIN) for v in record.values()]
        row[_PHONE_COL] = (record["phone"], xlsxwrite.TEXT)
        row[_STATUS_COL] = (record["status"], _STATUS_XF.get(record["status"], xlsxwrite.PLAIN))
        yield row


def _summary_sheet_rows(summary: RunSummary) -> Iterator[list[xlsxwrite.Cell]]:
    for row in _summary_rows(summary):
        if len(row) == 1:
            yield [(row[0], xlsxwrite.BOLD)]
        else:
            yield [(v, xlsxwrite.PLAIN) for v in row]


def _summary_rows(summary: RunSummary) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [("Run",)]
    rows += [
        ("run id", summary.run_id),
        ("dry run", "yes" if summary.dry_run else "no"),
        ("sheet", str(summary.sheet)),
        ("sheet sha256", summary.sheet_sha256),
        ("started", summary.started_at),
        ("finished", summary.finished_at),
        ("duration (s)", round(summary.duration_s, 3)),
        ("rows", summary.rows),
        ("requests", summary.requests),
        ("retries", summary.retries),
    ]
    rows += [(), ("Rows per status",), *summary.counts.items()]
    rows += [(), ("Rows per error code",), *summary.error_codes.items()]
    rows += [(), ("Rows per HLR status",), *summary.hlr.items()]
    rows += [(), ("Options",), *summary.options.items()]
    return rows


# Characters that str.splitlines() (and old JavaScript) treat as line ends, though JSON lets
# them stand raw inside a string: escaped, so each record stays on one line for every reader.
_LINE_BREAKS_IN_JSON = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028",
                                      "\u2029": "\\u2029"})


_LINE_BREAK_IN_JSON = re.compile("[\x85\u2028\u2029]")


def _json_line(record: Mapping[str, object]) -> str:
    return json.dumps(record, ensure_ascii=False).translate(_LINE_BREAKS_IN_JSON) + "\n"


_JSON_KEYS = tuple(json.dumps(c) + ": " for c in REPORT_COLUMNS)
_json_text = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses


def report_json_line(result: RowResult) -> str:
    """`_json_line(report_record(result))`, the same text, built without the dict and the
    encoder's set-up for each row (the JSONL report of a million rows spent half its time
    there): keys are fixed, and nearly every value is None, an int or a str."""
    parts = []
    for key, value in zip(_JSON_KEYS, _REPORT_VALUES(result), strict=True):
        kind = type(value)
        if value is None:
            parts.append(key + "null")
        elif kind is str:
            parts.append(key + _json_text(value))  # type: ignore[arg-type]
        elif kind is int:
            parts.append(key + int.__repr__(value))  # type: ignore[arg-type]
        elif kind is Status or kind is Action:
            parts.append(key + _json_text(value.value))  # type: ignore[union-attr]
        else:
            parts.append(key + json.dumps(_report_cell(value), ensure_ascii=False))
    line = "{" + ", ".join(parts) + "}"
    if _LINE_BREAK_IN_JSON.search(line) is not None:
        line = line.translate(_LINE_BREAKS_IN_JSON)
    return line + "\n"


# --------------------------------------------------------------------------- errors file


def write_errors(path: Path, sheet: Sheet, results: Sequence[RowResult]) -> int:
    """Write the invalid/not_found/failed rows in the input's own columns plus error_code/error.

    A re-run of an errors file keeps one `error_code`/`error` pair (replaced, not duplicated).
    Returns the number of rows written.
    """
    check_output_path(path, sheet.path, "--errors", ERRORS_FORMATS)
    headers, rows = errors_table(sheet, results)
    if path.suffix.lower() == ".csv":
        with _private_file(path, "w") as (handle, _tmp):
            writer = csv.writer(handle)
            writer.writerow(headers)
            writer.writerows([_neutralise_input(v) for v in row] for row in rows)
    else:
        _write_text_workbook(path, headers, rows)
    log.info("errors file: %d rows written to %s", len(rows), path)
    return len(rows)


def errors_table(sheet: Sheet, results: Sequence[RowResult]) -> tuple[list[str], list[list[str]]]:
    """The errors file as plain text: header and rows (input columns + error_code, error)."""
    keep = [i for i, h in enumerate(sheet.headers) if h.strip().lower() not in _ERROR_COLUMNS]
    headers = [sheet.headers[i] for i in keep] + list(_ERROR_COLUMNS)
    failing = {r.row: r for r in results if r.status in ERROR_STATUSES}
    by_row = {r.row: r.values for r in sheet.rows if r.row in failing}  # not every row's cells
    rows = []
    for number in sorted(failing):
        values = by_row.get(number)
        if values is None:
            log.warning("errors file: row %d is not in the sheet; its cells are left blank", number)
            values = ()
        cells = [values[i] if i < len(values) else "" for i in keep]
        result = failing[number]
        rows.append([*cells, result.error_code, result.error])
    return headers, rows


def _write_text_workbook(path: Path, headers: list[str], rows: list[list[str]]) -> None:
    """Every cell a text cell with its exact value (a text cell never runs as a formula);
    past Excel's row limit the rows go on in "Errors (2)", ..."""
    body = ([(v, xlsxwrite.TEXT) for v in row] for row in rows)
    widths = [min(60, max(10, len(h) + 4)) for h in headers]
    sheets = xlsxwrite.split_sheets("Errors", [(h, xlsxwrite.BOLD) for h in headers], body,
                                    len(rows), widths=widths, filtered=False)
    with _private_file(path, "wb") as (handle, _tmp):
        xlsxwrite.write_workbook(handle, sheets)
