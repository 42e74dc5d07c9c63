"""BSG's v1 HLR (Number Verifier) API under ``/rest/hlr/``, as on ``https://api.bsg.world/rest/``.

Endpoints (``X-API-KEY`` header on every call; the emulator's ``hlr_api_key``, or any non-empty
key when that is None; the One-API bearer is not used here):

* ``POST|PUT /rest/hlr/create``: a JSON array of ``{msisdn, reference, tariff?, callback_url?}``
  (a bare object is taken as a one-item array). One item answers
  ``{"error": "0", "id", "price", "currency"}`` or ``{"error": "61", "errorDescription"}``;
  several answer ``{"result": [per item: error, id?, msisdn, reference, tariff_code?, price?,
  currency?, errorDescription?], "totalprice", "currency"}``. Each lookup is charged when
  created (whatever its result) and is ``sent`` until ``hlr_delay`` seconds have passed.
* ``POST|PUT /rest/hlr/check``: one ``{msisdn, tariff?, reference?}``; answers the final result.
* ``GET /rest/hlr/{id}``, ``GET /rest/hlr/reference/{reference}``: the result (``status``,
  ``network`` = MCC+MNC, ``brand``, ``brand_name``, ``country_name``, ``details{ported, roaming}``
  as 0/1, ``imsi``, ``createdDatetime``, ``statusDatetime``, ``price``, ``currency``).
* ``GET /rest/hlr/prices[/{tariff}]``: ``{"error": "0", "prices": [rows]}``; ``GET|POST
  /rest/hlr/balance``: ``{"error": "0", "amount", "currency", "limit"}``, going down per lookup.

Errors come in a **200** body ``{"error": "<code>", "errorDescription": "<text>"}`` (codes as
strings, as BSG's docs example shows; clients should accept integers too): 1 invalid key,
4 unknown method, 6 bad tariff, 8 not enough money (nothing created), 11 more than
``hlr_max_pending`` lookups still ``sent``, 12 more than ``hlr_max_batch`` items, 60 not found,
61 invalid MSISDN, 62 reference absent, 63 reference already used, 64 bad payload, 65 bad
reference (1-32 of [a-zA-Z0-9]), 66 MSISDN twice in one request. Codes 6/61-66 are per item in a
multi-item create (the other items are created); 1/4/8/11/12 and a payload that is not a list of
objects refuse the whole request. Callbacks are accepted and never called. A lookup never
changes a One-API contact's ``hlr_status`` (BSG does not document that it does; reference §6).
Results, operators and prices: see ``hlr_data``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from bsg_sync.emulator import hlr_data
from bsg_sync.emulator.config import EmulatorConfig

log = logging.getLogger(__name__)
Body = dict[str, Any]
REFERENCE = re.compile(r"[a-zA-Z0-9]{1,32}")
ITEM_KEYS = frozenset({"msisdn", "reference", "tariff", "callback_url"})
ERRORS = {
    1: "Invalid API key", 4: "Invalid request or API method does not exist", 5: "Unknown error",
    6: "Invalid price grid parameter", 8: "Not enough money",
    11: "Exceeded limit for messages processed simultaneously",
    12: "Exceeded batch size limit", 60: "HLR not found", 61: "Invalid MSISDN",
    62: "External ID absent", 63: "External ID already exists", 64: "Invalid request payload",
    65: "Invalid External ID", 66: "MSISDN already present in request",
}


class HlrError(Exception):
    """A v1 error answer (HTTP 200, code in the body)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"{code} {ERRORS[code]}")
        self.code = code

    def body(self) -> Body:
        return {"error": str(self.code), "errorDescription": ERRORS[self.code]}


@dataclass
class Lookup:
    """One HLR request: what was asked, what it cost, when its result is final."""

    id: str
    msisdn: str
    reference: str | None
    tariff: int
    price: Decimal
    created: float
    final_at: float


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


class HlrService:
    """The account's HLR side: balance, lookups, and the v1 endpoints over them."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.balance = hlr_data.money(Decimal(str(self.config.hlr_balance)))
        self.lookups: dict[str, Lookup] = {}
        self.by_reference: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self.created: Counter[str] = Counter()  # msisdn -> lookups paid for
        self._next_id = 1

    # ------------------------------------------------------------ routing
    def handle(self, method: str, path: str, body: bytes, api_key: str | None) -> Body:
        """One `/rest/hlr/...` request -> its 200 body (errors included)."""
        try:
            self._check_key(api_key)
            with self.lock:
                return self._route(method, path.rstrip("/"), body)
        except HlrError as err:
            return err.body()
        except Exception:  # a bug: answer like BSG's "Unknown error" and leave a trace
            log.exception("emulator HLR bug on %s %s", method, path)
            return HlrError(5).body()

    def _check_key(self, key: str | None) -> None:
        wanted = self.config.hlr_api_key
        if not key or not key.strip() or (wanted is not None and key != wanted):
            raise HlrError(1)

    def _route(self, method: str, path: str, body: bytes) -> Body:
        name = path.removeprefix("/rest/hlr/")
        if name in ("create", "check") and method in ("POST", "PUT"):
            self.requests[name] += 1
            return self.create(body) if name == "create" else self.check(body)
        if name == "balance" and method in ("GET", "POST"):
            self.requests[name] += 1
            return self.balance_wire()
        if method != "GET" or name in ("create", "check"):
            raise HlrError(4)
        return self._route_get(name)

    def _route_get(self, name: str) -> Body:
        prices = re.fullmatch(r"prices(?:/(\w+))?", name)
        if prices:
            self.requests["prices"] += 1
            return self.prices(prices.group(1))
        if name.startswith("reference/"):
            self.requests["reference"] += 1
            lookup_id = self.by_reference.get(name.removeprefix("reference/"))
            return self.result_wire(self._lookup(lookup_id))
        if re.fullmatch(r"[A-Za-z0-9]{1,40}", name):
            self.requests["get"] += 1
            return self.result_wire(self._lookup(name))
        raise HlrError(4)

    def _lookup(self, lookup_id: str | None) -> Lookup:
        found = self.lookups.get(lookup_id or "")
        if found is None:
            raise HlrError(60)
        return found

    # ------------------------------------------------------------ create / check
    def create(self, raw: bytes) -> Body:
        items, single = _items(raw)
        if len(items) > self.config.hlr_max_batch:
            raise HlrError(12)
        planned = self._plan(items, reference_required=True)
        made = [p for p in planned if isinstance(p, Lookup)]
        pending = sum(1 for lk in self.lookups.values() if time.time() < lk.final_at)
        if made and pending + len(made) > self.config.hlr_max_pending:
            raise HlrError(11)
        self._charge(made)
        if single:
            return _created_single(planned[0])
        total = hlr_data.money(sum((lk.price for lk in made), Decimal(0)))
        return {"result": [_created_item(item, p) for item, p in zip(items, planned, strict=True)],
                "totalprice": hlr_data.money_text(total), "currency": hlr_data.CURRENCY}

    def check(self, raw: bytes) -> Body:
        items, _ = _items(raw)
        if len(items) != 1:
            raise HlrError(64)
        planned = self._plan(items, reference_required=False)[0]
        if isinstance(planned, HlrError):
            raise planned
        planned.final_at = planned.created  # synchronous: final at once
        self._charge([planned])
        return self.result_wire(planned)

    def _plan(self, items: list[Any], *, reference_required: bool) -> list[Lookup | HlrError]:
        """A Lookup (not yet stored) or the HlrError for each item, in order."""
        seen_refs: set[str] = set()
        seen_numbers: set[str] = set()
        planned: list[Lookup | HlrError] = []
        for item in items:
            try:
                lookup = self._lookup_for(item, reference_required)
                if lookup.reference in seen_refs:
                    raise HlrError(63)
                if lookup.msisdn in seen_numbers:
                    raise HlrError(66)
            except HlrError as err:
                planned.append(err)
                continue
            if lookup.reference:
                seen_refs.add(lookup.reference)
            seen_numbers.add(lookup.msisdn)
            planned.append(lookup)
        return planned

    def _lookup_for(self, item: Any, reference_required: bool) -> Lookup:
        if not isinstance(item, dict) or set(item) - ITEM_KEYS:
            raise HlrError(64)
        msisdn = _msisdn(item.get("msisdn"))
        reference = _reference(item.get("reference"), reference_required)
        if reference is not None and reference in self.by_reference:
            raise HlrError(63)
        tariff = _tariff(item.get("tariff", 0))
        if "callback_url" in item and not isinstance(item["callback_url"], str):
            raise HlrError(64)
        country = hlr_data.country_of(msisdn)
        if country is None:
            raise HlrError(61)
        price = hlr_data.price_of(country, hlr_data.network_of(msisdn, country), tariff)
        now = time.time()
        return Lookup("", msisdn, reference, tariff, price, now, now + self.config.hlr_delay)

    def _charge(self, made: list[Lookup]) -> None:
        """Store and pay for every lookup, or none of them (error 8)."""
        total = sum((lk.price for lk in made), Decimal(0))
        if total > self.balance:
            raise HlrError(8)
        self.balance = hlr_data.money(self.balance - total)
        for lookup in made:
            lookup.id = str(self._next_id)
            self._next_id += 1
            self.lookups[lookup.id] = lookup
            if lookup.reference:
                self.by_reference[lookup.reference] = lookup.id
            self.created[lookup.msisdn] += 1

    # ------------------------------------------------------------ answers
    def result_wire(self, lookup: Lookup) -> Body:
        country = hlr_data.country_of(lookup.msisdn)
        assert country is not None  # only valid numbers become lookups
        network = hlr_data.network_of(lookup.msisdn, country)
        final = time.time() >= lookup.final_at
        outcome = hlr_data.outcome_of(lookup.msisdn) if final else hlr_data.Outcome("sent")
        reached = outcome.status in ("active", "absent")
        mccmnc = f"{country.mcc}{network.mnc}"
        return {
            "error": "0", "id": lookup.id, "msisdn": lookup.msisdn,
            "reference": lookup.reference, "status": outcome.status,
            "network": mccmnc if reached else None,
            "brand": network.brand if reached else None,
            "brand_name": network.brand_name if reached else None,
            "country_name": country.name,
            "details": {"ported": int(outcome.ported), "roaming": int(outcome.roaming)},
            "imsi": f"{mccmnc}XXXXX{lookup.msisdn[-4:]}" if outcome.status == "active" else None,
            "createdDatetime": stamp(lookup.created),
            "statusDatetime": stamp(lookup.final_at if final else lookup.created),
            "price": hlr_data.money_text(lookup.price), "currency": hlr_data.CURRENCY,
        }

    def prices(self, tariff_text: str | None) -> Body:
        tariff = 0 if tariff_text is None else _tariff(tariff_text)
        return {"error": "0", "prices": hlr_data.price_rows(tariff)}

    def balance_wire(self) -> Body:
        return {"error": "0", "amount": hlr_data.money_text(self.balance), "currency": hlr_data.CURRENCY,
                "limit": hlr_data.money_text(Decimal(0))}

    def stats(self) -> Body:
        with self.lock:
            return {"requests": dict(self.requests), "lookups": len(self.lookups),
                    "numbers": dict(self.created), "balance": hlr_data.money_text(self.balance)}


def _items(raw: bytes) -> tuple[list[Any], bool]:
    """(items, answer in the single shape?) from a create/check body; 64 if it is not one."""
    try:
        body = json.loads(raw or b"null")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise HlrError(64) from exc
    if isinstance(body, dict):
        return [body], True
    if not isinstance(body, list) or not body:
        raise HlrError(64)
    return body, len(body) == 1


def _msisdn(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise HlrError(61)
    text = str(value)
    if not hlr_data.MSISDN.fullmatch(text):
        raise HlrError(61)
    return text


def _reference(value: object, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise HlrError(62)
        return None
    if not isinstance(value, str) or not REFERENCE.fullmatch(value):
        raise HlrError(65)
    return value


def _tariff(value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in hlr_data.TARIFFS:
        raise HlrError(6)
    return value


def _created_single(planned: Lookup | HlrError) -> Body:
    if isinstance(planned, HlrError):
        return planned.body()
    return {"error": "0", "id": planned.id, "price": hlr_data.money_text(planned.price),
            "currency": hlr_data.CURRENCY}


def _created_item(item: Any, planned: Lookup | HlrError) -> Body:
    echo = {k: item.get(k) for k in ("msisdn", "reference")} if isinstance(item, dict) else {}
    if isinstance(planned, HlrError):
        return {**planned.body(), **echo}
    return {"error": "0", "id": planned.id, "msisdn": planned.msisdn,
            "reference": planned.reference, "tariff_code": planned.tariff,
            "price": hlr_data.money_text(planned.price), "currency": hlr_data.CURRENCY}
