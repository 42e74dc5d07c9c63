"""Number verification: choose numbers, price them, guard the cost, create-then-poll, journal.

A *verification* is one paid pass over a set of numbers. It is journalled in the state store
before each create (number + reference), so a run killed at any point resumes by reference on
the next run: a number is never paid for twice in one verification. Final results are cached
(`hlr_cache`), and a cached result younger than `max_age_days` is never looked up again.
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phonenumbers import region_code_for_country_code

from bsg_sync.errors import ErrorCode, Interrupted, RunRefused
from bsg_sync.hlr import (
    DUPLICATE_REFERENCE,
    PENDING_STATUSES,
    Created,
    HlrBatchTooLarge,
    HlrBusy,
    HlrClient,
    HlrItemError,
    HlrResult,
    PriceRow,
)
from bsg_sync.models import Action, Desired, Known, RowResult, Status
from bsg_sync.state import StateStore

if TYPE_CHECKING:
    from bsg_sync.client import BsgClient
    from bsg_sync.mapping import MappedRows
    from bsg_sync.sync import SyncOptions

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE_DAYS = 30.0
DEFAULT_BATCH = 50  # BSG documents no maximum per create; the emulator's default is 100
DEFAULT_POLL_INTERVAL = 2.0  # seconds between polls of a lookup still `sent`
DEFAULT_POLL_TIMEOUT = 600.0  # give up waiting for a result after this long
UNREACHABLE = frozenset({"absent", "failed", "undeliverable"})
NOT_CACHED = frozenset({"invalid-number", "pending"})
_ALNUM = string.ascii_letters + string.digits


class Mode(str, Enum):
    NEW = "new"  # numbers new to the book
    CHANGED = "changed"  # and numbers the sheet changes
    STALE = "stale"  # and numbers never verified or verified longer ago than max age
    ALL = "all"  # every valid number of the sheet


class VerifyCostRefused(RunRefused):
    """The lookups would cost more than --max-verify-cost or the balance (exit 3)."""

    def __init__(self, message: str, quote: Quote | None = None) -> None:
        super().__init__(message)
        self.quote = quote  # what was refused (the web page still shows the price)


@dataclass(frozen=True)
class Verified:
    """A number's verification, as the report shows it."""

    msisdn: str
    status: str  # BSG's status (active/absent/unknown/failed/...), or invalid-number/pending
    network: str = ""
    country: str = ""
    ported: bool = False
    roaming: bool = False
    verified_at: str = ""
    cost: Decimal = Decimal(0)
    currency: str = ""
    cached: bool = False

    @property
    def unreachable(self) -> bool:
        return self.status in UNREACHABLE


@dataclass(frozen=True)
class Quote:
    """What verifying the chosen numbers would cost."""

    numbers: tuple[str, ...]
    total: Decimal
    currency: str
    balance: Decimal
    unpriced: tuple[str, ...] = ()

    def sentence(self) -> str:
        return f"{len(self.numbers)} lookups for {self.total} {self.currency}"


@dataclass(frozen=True)
class VerifyOptions:
    mode: Mode = Mode.STALE
    max_age_days: float = DEFAULT_MAX_AGE_DAYS
    max_cost: Decimal | None = None
    dry_run: bool = False
    batch: int = DEFAULT_BATCH
    tariff: int = 0
    poll_interval: float = DEFAULT_POLL_INTERVAL
    poll_timeout: float = DEFAULT_POLL_TIMEOUT
    concurrency: int = 4
    only: frozenset[str] | None = None  # look up none but these (the web: rows Apply sends)


@dataclass
class VerifyOutcome:
    quote: Quote
    results: dict[str, Verified] = field(default_factory=dict)
    created: int = 0
    polls: int = 0
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.results.values():
            out[v.status] = out.get(v.status, 0) + 1
        return dict(sorted(out.items()))

    def cost(self) -> Decimal:
        return sum((v.cost for v in self.results.values() if not v.cached), Decimal(0))


# ---------------------------------------------------------------- choosing (pure)

def parse_time(text: str | None) -> datetime | None:
    """A stored or BSG time (`2025-03-01 10:00:00`, ISO); naive times are taken as UTC."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def choose_numbers(desired: Sequence[Desired], known: Mapping[int, Known],
                   cached_at: Mapping[str, str], mode: Mode, max_age_days: float,
                   now: datetime) -> list[str]:
    """The sheet's numbers that need a lookup, each once, in sheet order.

    A number cached by bsg-sync within `max_age_days` is never chosen (a re-run is free)."""
    cutoff = now - timedelta(days=max_age_days)
    chosen: dict[str, None] = {}
    for d in desired:
        if not d.phone or d.phone in chosen:
            continue
        mine = parse_time(cached_at.get(d.phone))
        if mine is not None and mine >= cutoff:
            continue
        k = known.get(d.contact_id) if d.contact_id is not None else None
        if d.contact_id is not None and k is None:
            continue  # an id BSG does not have: the row is not_found, nothing will be sent
        if _wanted(d.phone, k, mode, cutoff):
            chosen[d.phone] = None
    return list(chosen)


def _wanted(phone: str, k: Known | None, mode: Mode, cutoff: datetime) -> bool:
    if mode is Mode.ALL or k is None:
        return True
    if k.seen.phone != phone:
        return mode is not Mode.NEW
    if mode is not Mode.STALE:
        return False
    theirs = parse_time(k.seen.hlr_last_check)
    return theirs is None or theirs < cutoff


def country_of(msisdn: str) -> str | None:
    """ISO country of international digits by calling code (the operator is not known yet)."""
    for size in (1, 2, 3):
        region = region_code_for_country_code(int(msisdn[:size]))
        if region not in ("ZZ", "001"):
            return str(region)
    return None


def quote(numbers: Sequence[str], prices: Sequence[PriceRow], balance: Decimal,
          balance_currency: str) -> Quote:
    """Price each number at its country's highest price (before the lookup the operator is
    unknown); numbers of a country without a price are left out (`unpriced`)."""
    top: dict[str, Decimal] = {}
    currency = balance_currency
    for row in prices:
        top[row.country] = max(top.get(row.country, Decimal(0)), row.price)
        currency = currency or row.currency
    priced, unpriced, total = [], [], Decimal(0)
    for n in numbers:
        price = top.get(country_of(n) or "")
        if price is None:
            unpriced.append(n)
            continue
        priced.append(n)
        total += price
    return Quote(tuple(priced), total, currency, balance, tuple(unpriced))


def check_cost(q: Quote, max_cost: Decimal | None) -> None:
    """Refuse (exit 3, nothing created) beyond the cap or the balance."""
    if max_cost is not None and q.total > max_cost:
        raise VerifyCostRefused(
            f"verifying would cost {q.total} {q.currency} for {len(q.numbers)} numbers, over "
            f"--max-verify-cost {max_cost}; raise the cap or verify fewer numbers", q)
    if q.total > q.balance:
        raise VerifyCostRefused(
            f"verifying would cost {q.total} {q.currency} for {len(q.numbers)} numbers, more than "
            f"the HLR balance of {q.balance} {q.currency}; top up or verify fewer numbers", q)


def cached_results(rows: Mapping[str, tuple[Any, ...]]) -> dict[str, Verified]:
    return {m: Verified(m, r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6], Decimal(r[7]), r[8],
                        cached=True) for m, r in rows.items()}


# ---------------------------------------------------------------- paying (side effects)

def new_token() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(8))


@dataclass
class _Verification:
    hlr: HlrClient
    store: StateStore
    vid: int
    token: str
    opts: VerifyOptions
    stop: threading.Event
    on_progress: Callable[[int, int], None]
    ids: dict[str, str] = field(default_factory=dict)  # msisdn -> lookup id
    refs: dict[str, str] = field(default_factory=dict)  # msisdn -> reference
    done: dict[str, Verified] = field(default_factory=dict)
    created: int = 0
    polls: int = 0

    def reference(self, msisdn: str) -> str:
        return f"{self.token}{msisdn}"[:32]


def verify_numbers(hlr: HlrClient, store: StateStore, numbers: Sequence[str],
                   opts: VerifyOptions, *, stop: threading.Event | None = None,
                   on_progress: Callable[[int, int], None] = lambda _d, _t: None
                   ) -> VerifyOutcome:
    """Price, guard, then (unless a dry run) create and poll every number; results cached."""
    balance, currency = hlr.balance()
    vid, token = store.open_verification(new_token())
    journal = {row[0]: row for row in store.journalled_lookups(vid)}
    unpaid = [n for n in numbers if n not in journal]
    q = quote(unpaid, hlr.prices(opts.tariff), balance, currency)
    check_cost(q, opts.max_cost)
    outcome = VerifyOutcome(q, dry_run=opts.dry_run)
    if opts.dry_run:
        return outcome
    run = _Verification(hlr, store, vid, token, opts, stop or threading.Event(), on_progress)
    _resume(run, journal.values())
    _create_all(run, list(q.numbers))
    _poll_all(run)
    store.save_verified(_cache_row(v) for v in run.done.values() if v.status not in NOT_CACHED)
    if not any(v.status == "pending" for v in run.done.values()):
        store.end_verification(vid)
    wanted = set(numbers)
    outcome.results = {m: v for m, v in run.done.items() if m in wanted}
    outcome.created, outcome.polls = run.created, run.polls
    return outcome


def _resume(run: _Verification, rows: Iterable[tuple[str, str, str | None, str | None,
                                                    str | None]]) -> None:
    """Journalled numbers: those with an id are polled; those without (killed between the
    journal and the answer) are found by reference, or created again with that reference."""
    lost = []
    for msisdn, reference, lookup_id, _status, error in rows:
        run.refs[msisdn] = reference
        if error:
            run.done[msisdn] = Verified(msisdn, "invalid-number")
        elif lookup_id:
            run.ids[msisdn] = lookup_id
        else:
            lost.append(msisdn)
    for msisdn in lost:
        found = run.hlr.by_reference(run.refs[msisdn])
        if found is None:
            _create_batch(run, [msisdn], journal=False)
        else:
            _remember(run, msisdn, found.id, found.price, found.currency)
    if run.refs:
        log.info("resuming verification %d: %d numbers already journalled", run.vid,
                 len(run.refs))


def _create_all(run: _Verification, numbers: list[str]) -> None:
    size = max(1, run.opts.batch)
    busy_since: float | None = None
    i = 0
    while i < len(numbers):
        _check_stop(run)
        batch = numbers[i:i + size]
        try:
            _create_batch(run, batch, journal=True)
        except HlrBatchTooLarge:
            if size == 1:
                raise
            size = max(1, size // 2)
            log.info("the HLR API refused the batch size; trying %d numbers per create", size)
            continue
        except HlrBusy:  # error 11: let some lookups finish (one poll round), then go on
            busy_since = busy_since if busy_since is not None else time.monotonic()
            if time.monotonic() - busy_since > run.opts.poll_timeout:
                raise
            log.info("the HLR API has too many lookups in progress; polling before more")
            _poll_until_one_is_final(run)
            continue
        busy_since = None
        i += len(batch)
        run.on_progress(len(run.ids) + len(run.done), len(numbers) + len(run.refs))


def _create_batch(run: _Verification, batch: list[str], *, journal: bool) -> None:
    refs = [(m, run.refs.get(m) or run.reference(m)) for m in batch]
    if journal:  # before paying: a kill after this resumes by reference
        run.store.journal_lookups(run.vid, refs)
        run.refs.update(refs)
    for answer in run.hlr.create(refs, run.opts.tariff):
        if isinstance(answer, Created):
            run.created += 1
            _remember(run, answer.msisdn, answer.id, answer.price, answer.currency)
        else:
            _refused_item(run, answer)


def _refused_item(run: _Verification, err: HlrItemError) -> None:
    if err.code == DUPLICATE_REFERENCE:  # created before (a retried request): fetch it
        found = run.hlr.by_reference(err.reference)
        if found is not None:
            _remember(run, err.msisdn, found.id, found.price, found.currency)
            return
    log.info("the HLR API refused %s (error %d: %s)", err.msisdn, err.code, err.text)
    run.store.record_lookup(run.vid, err.msisdn, error=f"{err.code} {err.text}")
    run.done[err.msisdn] = Verified(err.msisdn, "invalid-number")


def _remember(run: _Verification, msisdn: str, lookup_id: str, price: Decimal,
              currency: str) -> None:
    run.store.record_lookup(run.vid, msisdn, lookup_id=lookup_id, price=str(price),
                            currency=currency)
    run.ids[msisdn] = lookup_id


def _poll_all(run: _Verification) -> None:
    """Poll every lookup not yet final until it is, or until the poll timeout."""
    give_up = time.monotonic() + run.opts.poll_timeout
    while _pending(run):
        if time.monotonic() > give_up:
            pending = _pending(run)
            for m, _i in pending:
                run.done[m] = Verified(m, "pending")
            log.warning("%d lookups were still pending after %g s", len(pending),
                        run.opts.poll_timeout)
            return
        _poll_round(run)


def _poll_until_one_is_final(run: _Verification) -> None:
    """After error 11: the same create is sent again only once a lookup has finished (an
    identical request repeated at once would meet BSG's duplicate throttle)."""
    before = len(_pending(run))
    give_up = time.monotonic() + run.opts.poll_timeout
    _poll_round(run)
    while before and len(_pending(run)) == before and time.monotonic() < give_up:
        _poll_round(run)


def _pending(run: _Verification) -> list[tuple[str, str]]:
    return [(m, i) for m, i in run.ids.items() if m not in run.done]


def _poll_round(run: _Verification) -> None:
    """Wait the poll interval, then ask once for each lookup not yet final."""
    if run.stop.wait(run.opts.poll_interval):
        _check_stop(run)
    pending = _pending(run)
    if not pending:
        return
    with ThreadPoolExecutor(max_workers=max(1, run.opts.concurrency)) as pool:
        answers = list(pool.map(lambda p: run.hlr.get(p[1]), pending))
    run.polls += len(pending)
    for (msisdn, _i), result in zip(pending, answers, strict=True):
        if result.status.lower() not in PENDING_STATUSES:
            _final(run, msisdn, result)
    run.on_progress(len(run.done), len(run.ids))


def _final(run: _Verification, msisdn: str, r: HlrResult) -> None:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    run.store.record_lookup(run.vid, msisdn, status=r.status)
    run.done[msisdn] = Verified(msisdn, r.status, r.network, r.country, r.ported, r.roaming,
                                now, r.price, r.currency)


def _check_stop(run: _Verification) -> None:
    if run.stop.is_set():
        raise Interrupted("verification stopped; run again to resume (nothing is paid twice)")


def _cache_row(v: Verified) -> tuple[Any, ...]:
    return (v.msisdn, v.status, v.network, v.country, int(v.ported), int(v.roaming),
            v.verified_at, str(v.cost), v.currency, "")


# ---------------------------------------------------------------- the sheet's numbers

def sheet_numbers(opts: SyncOptions, client: BsgClient | None, store: StateStore,
                  vopts: VerifyOptions) -> tuple[list[str], dict[str, Verified]]:
    """Read and map the sheet as sync does, refresh (or, offline, read) known state, and
    return the numbers to look up and the cached results of the others."""
    desired, known = read_known(opts, client, store)
    phones = [d.phone for d in desired if d.phone]
    cache = store.load_verified(phones)
    cached_at = {m: str(r[6]) for m, r in cache.items()}
    now = datetime.now(timezone.utc)
    chosen = choose_numbers(desired, known, cached_at, vopts.mode, vopts.max_age_days, now)
    if vopts.only is not None:
        chosen = [m for m in chosen if m in vopts.only]
    return chosen, cached_results({m: r for m, r in cache.items() if m not in chosen})


def read_known(opts: SyncOptions, client: BsgClient | None, store: StateStore
               ) -> tuple[Sequence[Desired], Mapping[int, Known]]:
    from bsg_sync import mapping as mapping_mod
    from bsg_sync import refresh
    from bsg_sync.isolate import read_sheet_isolated
    from bsg_sync.sync import current_account, header_row_of, resolve_mapping_path

    mapping_path = resolve_mapping_path(opts)
    raw = mapping_mod.load_mapping(mapping_path)
    sheet = read_sheet_isolated(opts.sheet, sheet=opts.sheet_name, encoding=opts.encoding,
                                header_row=header_row_of(raw, mapping_path))
    account = current_account(client, store)
    columns = mapping_mod.resolve_mapping(raw, sheet.headers, account)
    mapped = mapping_mod.map_rows(sheet, columns, account)
    if client is None:
        return refresh.resolve_offline(store, mapped.desired)
    desired, known = refresh.refresh_known(client, store, mapped.desired)
    return desired, known


# ---------------------------------------------------------------- the whole command

def run_verify(opts: SyncOptions, vopts: VerifyOptions, api_key: str | None, hlr_url: str,
               hlr_key: str, *, stop: threading.Event | None = None,
               on_progress: Callable[[int, int], None] = lambda _d, _t: None) -> VerifyOutcome:
    """`bsg-sync verify`: the sheet's numbers chosen, priced, guarded, looked up, cached."""
    return _run_verify(opts, vopts, api_key, hlr_url, hlr_key, stop, on_progress)


def _run_verify(opts: SyncOptions, vopts: VerifyOptions, api_key: str | None, hlr_url: str,
                hlr_key: str, stop: threading.Event | None,
                on_progress: Callable[[int, int], None]) -> VerifyOutcome:
    from bsg_sync.ratelimit import RateLimiter
    from bsg_sync.sync import make_client

    client = None if opts.offline else make_client(opts, api_key, stop)
    limiter = RateLimiter(opts.max_rps) if opts.max_rps is not None else None
    try:
        with StateStore(opts.state) as store, make_hlr_client(
                hlr_url, hlr_key, opts, limiter.pace if limiter else None, stop) as hlr:
            store.acquire_lock()
            try:
                numbers, cached = sheet_numbers(opts, client, store, vopts)
                outcome = verify_numbers(hlr, store, numbers, vopts, stop=stop,
                                         on_progress=on_progress)
            finally:
                store.release_lock()
    finally:
        if client is not None:
            client.close()
    outcome.results = {**cached, **outcome.results}
    return outcome


def make_hlr_client(hlr_url: str, hlr_key: str, opts: SyncOptions,
                    pace: Callable[[], None] | None, stop: threading.Event | None) -> HlrClient:
    from bsg_sync.errors import UsageError

    try:
        return HlrClient(hlr_url, hlr_key, policy=opts.policy,
                         allow_insecure_http=opts.allow_insecure_http, pace=pace, stop=stop)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def summary_lines(o: VerifyOutcome, report: Path | None = None) -> list[str]:
    """The warnings, then one sentence (with the per-number report's path, if written)."""
    lines = _summary_lines(o)
    if report is not None:
        lines[-1] += f" — report: {report}"
    return lines


def _summary_lines(o: VerifyOutcome) -> list[str]:
    q = o.quote
    lines = []
    if q.unpriced:
        lines.append(f"warning: {len(q.unpriced)} numbers have no HLR price (unknown country) "
                     "and were not verified")
    if o.dry_run:
        return [*lines, f"dry run: would verify {q.sentence()}; nothing paid "
                        f"(balance {q.balance} {q.currency})"]
    counts = ", ".join(f"{n} {s}" for s, n in o.counts().items()) or "none"
    if not o.created:
        return [*lines, f"no number needs verifying ({len(o.results)} results from the cache: "
                        f"{counts}); 0 lookups"]
    return [*lines, f"verified {len(o.results)} numbers ({counts}); {o.created} lookups for "
                    f"{o.cost()} {q.currency}"]


def summary_json(o: VerifyOutcome) -> dict[str, Any]:
    return {"numbers": len(o.results) or len(o.quote.numbers), "lookups": o.created,
            "quoted": str(o.quote.total), "cost": str(o.cost()), "currency": o.quote.currency,
            "balance": str(o.quote.balance), "counts": o.counts(), "polls": o.polls,
            "dry_run": o.dry_run,
            "results": [result_record(v) for v in o.results.values()]}


# ---------------------------------------------------------------- acting on the result (pure)

UNREACHABLE_CODE = ErrorCode.NUMBER_UNREACHABLE


def unreachable_numbers(results: Mapping[str, Verified]) -> frozenset[str]:
    return frozenset(m for m, v in results.items() if v.unreachable)


def skip_unreachable(mapped: MappedRows, unreachable: frozenset[str]) -> MappedRows:
    """Rows whose phone the HLR check found dead become `invalid` (`number-unreachable`)."""
    if not unreachable:
        return mapped
    from bsg_sync.mapping import MappedRows

    keep = [d for d in mapped.desired if d.phone not in unreachable]
    dead = [RowResult(row=d.row, contact_id=d.contact_id, phone=d.phone, action=Action.SKIP,
                      status=Status.INVALID, error_code=UNREACHABLE_CODE,
                      error=f"Phone {d.phone} is not reachable (HLR check); fix or remove it.")
            for d in mapped.desired if d.phone in unreachable]
    return MappedRows(keep, sorted([*mapped.results, *dead], key=lambda r: r.row))


def cached_unreachable(opts: SyncOptions, max_age_days: float) -> frozenset[str]:
    """Numbers that earlier verifications (within max age) found unreachable."""
    cutoff = datetime.now(timezone.utc) - timedelta(days=max_age_days)
    with StateStore(opts.state) as store:
        rows = store.verified_with_status(sorted(UNREACHABLE))
    return frozenset(m for m, at in rows if (parse_time(at) or cutoff) > cutoff)


# ---------------------------------------------------------------- the per-number report

RESULT_FORMATS = (".csv", ".jsonl")


def default_results_path(sheet: Path) -> Path:
    """`bsg-sync verify`'s own per-number report: `<sheet stem>.verify.csv` beside the sheet."""
    return sheet.with_name(f"{sheet.stem}.verify.csv")


def check_results_path(path: Path, sheet: Path) -> None:
    """Refuse (exit 2, before anything is paid) a report path that cannot be written."""
    from bsg_sync.errors import UsageError
    from bsg_sync.report import check_output_path, probe_output

    if path.suffix.lower() not in RESULT_FORMATS:
        raise UsageError(f"--report {path}: write the verification report as .csv or .jsonl")
    check_output_path(path, sheet, "--report", RESULT_FORMATS)
    probe_output(path, "--report")


RESULT_COLUMNS = ("msisdn", "verify_status", "network", "country", "ported", "roaming",
                  "verified_at", "verify_cost", "cached")


def result_record(v: Verified) -> dict[str, Any]:
    return {"msisdn": v.msisdn, "verify_status": v.status, "network": v.network,
            "country": v.country, "ported": int(v.ported), "roaming": int(v.roaming),
            "verified_at": v.verified_at, "verify_cost": "0" if v.cached else str(v.cost),
            "cached": int(v.cached)}


def write_results(path: Path, results: Iterable[Verified]) -> None:
    """One row per number (.csv with a BOM for Excel, or .jsonl), written atomically."""
    import csv
    import io
    import json
    import os

    from bsg_sync.errors import OutputError
    from bsg_sync.report import neutralise

    records = [result_record(v) for v in results]
    if path.suffix.lower() == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(RESULT_COLUMNS)
        writer.writerows([neutralise(r[c]) for c in RESULT_COLUMNS] for r in records)
        text = "\ufeff" + buf.getvalue()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write the verification report {path}: {exc.strerror}; "
                          "fix the folder or pass another --report (nothing is paid twice)"
                          ) from None


# ---------------------------------------------------------------- results in the sync's report

def verified_row(v: Verified) -> tuple[Any, ...]:
    """A run's record of one number's check (`StateStore.record_run_verified`)."""
    return (v.msisdn, v.status, v.network, v.country, int(v.ported), int(v.roaming),
            v.verified_at, "0" if v.cached else str(v.cost), v.currency, int(v.cached))


def verified_from_row(r: Sequence[Any]) -> Verified:
    """The inverse of `verified_row` (a cached result's cost is what the run paid: 0)."""
    return Verified(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6], Decimal(r[7]), r[8],
                    cached=bool(r[9]))


def verify_cells(v: Verified) -> tuple[Any, ...]:
    """A check as the report's verify_* cells (RowResult's last seven fields, in order)."""
    return (v.status, v.network, v.country, int(v.ported), int(v.roaming), v.verified_at,
            "0" if v.cached else str(v.cost))


def with_verified(r: RowResult, cells: tuple[Any, ...] | None) -> RowResult:
    """The report row with its phone's check (`verify_cells`) in the verify_* columns.

    Built positionally, not with dataclasses.replace: a sheet may have a million rows."""
    if cells is None:
        return r
    return RowResult(r.row, r.contact_id, r.phone, r.action, r.status, r.error_code, r.error,
                     r.changes, r.attempts, r.http_status, r.hlr_status, r.hlr_last_check,
                     *cells)


def attach_verified(store: StateStore, run_id: int, results: Sequence[RowResult],
                    fresh: Mapping[str, Verified]) -> tuple[list[RowResult], dict[str, Verified]]:
    """Each row's phone's check - this run's (`fresh`), else the cache's - recorded with the
    run and written into the rows; the checks of the run's numbers are returned too."""
    phones = {r.phone for r in results if r.phone}
    used = {m: v for m, v in fresh.items() if m in phones}
    missing = phones - used.keys()
    if missing and store.has_verified():
        used.update(cached_results(store.load_verified(missing)))
    if not used:
        return list(results), {}
    store.record_run_verified(run_id, (verified_row(v) for v in used.values()))
    cells = {m: verify_cells(v) for m, v in used.items()}
    return [with_verified(r, cells.get(r.phone or "")) for r in results], used


def run_summary(checks: Iterable[Verified]) -> dict[str, Any]:
    """What the run's report says of its numbers' checks: counts per status, what this run
    paid (lookups and cost) and how many came from the cache."""
    every = list(checks)
    paid = [v for v in every if not v.cached]
    counts: dict[str, int] = {}
    for v in every:
        counts[v.status] = counts.get(v.status, 0) + 1
    currency = next((v.currency for v in every if v.currency), "")
    return {"numbers": len(every), "counts": dict(sorted(counts.items())),
            "looked_up": len(paid), "from_cache": len(every) - len(paid),
            "cost": str(sum((v.cost for v in paid), Decimal(0))), "currency": currency}


def run_sentence(summary: Mapping[str, Any]) -> str | None:
    """E.g. "HLR check of 6 numbers: 3 active, 1 absent; 5 looked up for 0.025 EUR, 1 from the
    cache"; None when no number of the run has a check."""
    if not summary.get("numbers"):
        return None
    counts = ", ".join(f"{n} {s}" for s, n in summary["counts"].items())
    paid = (f"{summary['looked_up']} looked up for {summary['cost']} {summary['currency']}"
            if summary["looked_up"] else "none looked up")
    cache = f", {summary['from_cache']} from the cache" if summary["from_cache"] else ""
    numbers = "number" if summary["numbers"] == 1 else "numbers"
    return f"HLR check of {summary['numbers']} {numbers}: {counts}; {paid}{cache}"
