"""The BSG v1 HLR (Number Verifier) client: X-API-KEY calls, 200-body error codes as exceptions.

Built on `BsgClient` (retries, deadlines, stops, pacing, secret scrubbing), pointed at the v1
host (`--hlr-url`) with `key_header="X-API-KEY"`: this module never imports requests.

Error codes (BSG sends them in an HTTP 200 body, as strings or integers):

* per item: 61 invalid phone (that number's failure, `HlrItemError`), 63 reference already used
  (the lookup exists: fetch it by reference), others (6, 62, 64-66) a bug of ours;
* whole request: 1 bad key (`HlrKeyRejected`), 8 not enough funds (`HlrNoFunds`) - the run's
  failure; 11 too many lookups in progress (`HlrBusy`: wait), 12 batch too large
  (`HlrBatchTooLarge`: send smaller batches); anything else `HlrRefused`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bsg_sync.client import BsgClient, RetryPolicy
from bsg_sync.errors import RunRefused

DEFAULT_HLR_URL = "https://api.bsg.world/rest"
KEY_HEADER = "X-API-KEY"


class HlrRefused(RunRefused):
    """The HLR API refused a whole request (exit 3)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class HlrKeyRejected(HlrRefused):
    """Error 1: the X-API-KEY is not valid."""


class HlrNoFunds(HlrRefused):
    """Error 8: the balance does not cover the lookups (nothing was created)."""


class HlrBusy(HlrRefused):
    """Error 11: too many lookups still in progress; wait for some to finish."""


class HlrBatchTooLarge(HlrRefused):
    """Error 12: more numbers in one create than the API takes."""


@dataclass(frozen=True)
class HlrItemError:
    """One number the create refused (per-item code), with BSG's text."""

    msisdn: str
    reference: str
    code: int
    text: str


@dataclass(frozen=True)
class Created:
    """One lookup the create accepted (it is paid for)."""

    msisdn: str
    reference: str
    id: str
    price: Decimal
    currency: str


@dataclass(frozen=True)
class HlrResult:
    """A lookup's state: `status` is BSG's string as given (`sent` until final)."""

    id: str
    msisdn: str
    reference: str
    status: str
    network: str
    country: str
    ported: bool
    roaming: bool
    checked_at: str
    price: Decimal
    currency: str


@dataclass(frozen=True)
class PriceRow:
    country: str  # ISO 3166 alpha-2
    mnc: str  # "0": the country's price
    price: Decimal
    currency: str


PENDING_STATUSES = frozenset({"sent", "pending", ""})
NOT_FOUND = 60
DUPLICATE_REFERENCE = 63
ITEM_CODES = frozenset({6, 61, 62, 63, 65, 66})  # about one number, not the request


def error_code(body: dict[str, Any]) -> int:
    """The body's `error` as an int (0 when absent or unreadable as a number)."""
    try:
        return int(str(body.get("error", "0")).strip() or "0")
    except ValueError:
        return -1


def raise_for_request(body: dict[str, Any], what: str) -> None:
    """The whole request's failure, as the exception its code means."""
    code = error_code(body)
    if code == 0:
        return
    text = str(body.get("errorDescription") or "no description")
    if code == 1:
        raise HlrKeyRejected(f"the HLR API did not accept the key ({text}); check "
                             "BSG_HLR_API_KEY or --hlr-api-key-file", code)
    if code == 8:
        raise HlrNoFunds(f"the HLR balance does not cover {what} ({text}); top up the account "
                         "or verify fewer numbers", code)
    if code == 11:
        raise HlrBusy(f"the HLR API has too many lookups in progress ({text}); wait and run "
                      "again", code)
    if code == 12:
        raise HlrBatchTooLarge(f"the HLR API refused the batch size ({text}); pass a smaller "
                               "--hlr-batch", code)
    raise HlrRefused(f"the HLR API refused {what} (error {code}: {text}); run again with -v and "
                     "report it if it persists", code)


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


def parse_result(body: dict[str, Any]) -> HlrResult:
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    assert isinstance(details, dict)
    return HlrResult(
        id=str(body.get("id") or ""), msisdn=str(body.get("msisdn") or ""),
        reference=str(body.get("reference") or ""), status=str(body.get("status") or ""),
        network=str(body.get("network") or ""), country=str(body.get("country_name") or ""),
        ported=_flag(details.get("ported")), roaming=_flag(details.get("roaming")),
        checked_at=str(body.get("statusDatetime") or ""), price=_money(body.get("price")),
        currency=str(body.get("currency") or ""),
    )


class HlrClient:
    """The v1 HLR endpoints over one keyed `BsgClient` (thread-safe)."""

    def __init__(self, base_url: str, api_key: str, *, policy: RetryPolicy | None = None,
                 allow_insecure_http: bool = False, pace: Callable[[], None] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.http = BsgClient(base_url.rstrip("/"), api_key, policy=policy,
                              allow_insecure_http=allow_insecure_http, pace=pace, stop=stop,
                              key_header=KEY_HEADER)

    def __enter__(self) -> HlrClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, what: str) -> dict[str, Any]:
        body = self.http.request_keyed("GET", path)
        raise_for_request(body, what)
        return body

    def prices(self, tariff: int = 0) -> list[PriceRow]:
        body = self._get(f"/hlr/prices/{int(tariff)}" if tariff else "/hlr/prices",
                         "the price list")
        rows = body.get("prices") if isinstance(body.get("prices"), list) else []
        assert isinstance(rows, list)
        return [PriceRow(str(r.get("country", "")).upper(), str(r.get("mnc", "0")),
                         _money(r.get("price")), str(r.get("currency", "")))
                for r in rows if isinstance(r, dict)]

    def balance(self) -> tuple[Decimal, str]:
        body = self._get("/hlr/balance", "the balance")
        return _money(body.get("amount")), str(body.get("currency") or "")

    def create(self, items: Sequence[tuple[str, str]], tariff: int = 0
               ) -> list[Created | HlrItemError]:
        """Create lookups for (msisdn, reference) pairs; one answer per item, in order."""
        payload = [{"msisdn": m, "reference": r, "tariff": tariff} for m, r in items]
        body = self.http.request_keyed("POST", "/hlr/create", payload)
        if "result" not in body:  # one item: its own answer, or the request's refusal
            if error_code(body) not in ITEM_CODES:
                raise_for_request(body, f"{len(items)} lookups")
            answers: list[Any] = [body]
        else:
            raw = body.get("result")
            answers = raw if isinstance(raw, list) else []
        if len(answers) != len(items):
            raise HlrRefused(f"the HLR API answered {len(answers)} results for {len(items)} "
                             "numbers; run again (lookups resume by reference)")
        currency = str(body.get("currency") or "")
        return [_created(item, a if isinstance(a, dict) else {}, currency)
                for item, a in zip(items, answers, strict=True)]

    def get(self, lookup_id: str) -> HlrResult:
        return parse_result(self._get(f"/hlr/{lookup_id}", "a lookup's result"))

    def by_reference(self, reference: str) -> HlrResult | None:
        """The lookup made with this reference, or None when there is none (error 60)."""
        body = self.http.request_keyed("GET", f"/hlr/reference/{reference}")
        if error_code(body) == NOT_FOUND:
            return None
        raise_for_request(body, "a lookup by reference")
        return parse_result(body)


def _created(item: tuple[str, str], answer: dict[str, Any], currency: str) -> Created | HlrItemError:
    msisdn, reference = item
    code = error_code(answer)
    if code != 0:
        if code in (1, 8, 11, 12):
            raise_for_request(answer, "the lookups")
        return HlrItemError(msisdn, reference, code, str(answer.get("errorDescription") or ""))
    return Created(msisdn, reference, str(answer.get("id") or ""), _money(answer.get("price")),
                   str(answer.get("currency") or currency))
