"""The emulated HLR world (pure): countries, operators, prices and each number's result.

Results are chosen by the number itself, so tests pick them by the last digit of the MSISDN:

====== =========================================
digit  final result
====== =========================================
0-4    ``active``
5      ``active``, ``details.ported = 1``
6      ``absent``
7      ``unknown``
8      ``failed``
9      ``active``, ``details.roaming = 1``
====== =========================================

The operator is the country's network number ``second-to-last digit % len(networks)``.
A number outside the country table (by longest prefix) is an invalid MSISDN (error 61).
Prices are per country (``mnc "0"``) with some operator overrides (``mnc`` set), in EUR for
tariff 0; tariff ``t`` (0-9) costs ``(10 + t) / 10`` times that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

CURRENCY = "EUR"
PLACES = Decimal("0.0000001")  # prices carry 7 decimals, as BSG's v1 spec says
MSISDN = re.compile(r"[1-9]\d{8,14}")
TARIFFS = range(10)


@dataclass(frozen=True)
class Network:
    mnc: str
    brand: str
    brand_name: str
    price: Decimal | None = None  # an operator override of the country price


@dataclass(frozen=True)
class Country:
    prefix: str
    iso: str
    name: str
    mcc: str
    price: Decimal
    networks: tuple[Network, ...]


@dataclass(frozen=True)
class Outcome:
    status: str
    ported: bool = False
    roaming: bool = False


def _c(prefix: str, iso: str, name: str, mcc: str, price: str, *nets: Network) -> Country:
    return Country(prefix, iso, name, mcc, Decimal(price), nets)


N = Network
COUNTRIES: tuple[Country, ...] = (
    _c("1", "US", "United States", "310", "0.0040",
       N("260", "T-Mobile", "T-Mobile USA"), N("410", "AT&T", "AT&T Mobility")),
    _c("31", "NL", "Netherlands", "204", "0.0060",
       N("04", "Vodafone", "Vodafone Libertel"), N("08", "KPN", "KPN Mobile")),
    _c("33", "FR", "France", "208", "0.0060",
       N("01", "Orange", "Orange France"), N("10", "SFR", "Societe Francaise du Radiotelephone")),
    _c("34", "ES", "Spain", "214", "0.0060",
       N("07", "Movistar", "Telefonica Moviles Espana"), N("01", "Vodafone", "Vodafone Spain")),
    _c("39", "IT", "Italy", "222", "0.0060",
       N("01", "TIM", "Telecom Italia"), N("10", "Vodafone", "Vodafone Italia")),
    _c("44", "GB", "United Kingdom", "234",  "0.0050",
       N("10", "O2", "Telefonica UK"), N("15", "Vodafone", "Vodafone UK"),
       N("30", "EE", "EE Limited", Decimal("0.0070"))),
    _c("48", "PL", "Poland", "260", "0.0055",
       N("02", "T-Mobile", "T-Mobile Polska"), N("03", "Orange", "Orange Polska")),
    _c("49", "DE", "Germany", "262", "0.0055",
       N("01", "Telekom", "Telekom Deutschland"), N("02", "Vodafone", "Vodafone GmbH"),
       N("03", "O2", "Telefonica Germany", Decimal("0.0065"))),
    _c("55", "BR", "Brazil", "724", "0.0070", N("05", "Claro", "Claro S.A.")),
    _c("61", "AU", "Australia", "505", "0.0080",
       N("01", "Telstra", "Telstra Corporation"), N("03", "Vodafone", "Vodafone Australia")),
    _c("86", "CN", "China", "460", "0.0050", N("00", "China Mobile", "China Mobile")),
    _c("91", "IN", "India", "404", "0.0030", N("45", "Airtel", "Bharti Airtel")),
    _c("380", "UA", "Ukraine", "255", "0.0045",
       N("01", "Vodafone", "PrJSC VF Ukraine"), N("03", "Kyivstar", "Kyivstar JSC")),
)
OUTCOMES = {
    "5": Outcome("active", ported=True), "6": Outcome("absent"), "7": Outcome("unknown"),
    "8": Outcome("failed"), "9": Outcome("active", roaming=True),
}


def country_of(msisdn: str) -> Country | None:
    """The country of a well-formed MSISDN by longest prefix; None if invalid or unknown."""
    if not MSISDN.fullmatch(msisdn):
        return None
    matches = [c for c in COUNTRIES if msisdn.startswith(c.prefix)]
    return max(matches, key=lambda c: len(c.prefix), default=None)


def network_of(msisdn: str, country: Country) -> Network:
    return country.networks[int(msisdn[-2]) % len(country.networks)]


def outcome_of(msisdn: str) -> Outcome:
    return OUTCOMES.get(msisdn[-1], Outcome("active"))


def price_of(country: Country, network: Network, tariff: int) -> Decimal:
    base = network.price if network.price is not None else country.price
    return money(base * (10 + tariff) / 10)


def money(value: Decimal) -> Decimal:
    return value.quantize(PLACES)


def money_text(value: Decimal) -> str:
    """`0.0050000`: 7 decimals, never an exponent (`str(Decimal)` can give `0E-7`)."""
    return f"{money(value):.7f}"


def price_rows(tariff: int) -> list[dict[str, str]]:
    """`GET /hlr/prices[/{tariff}]` rows: each country (mnc "0"), then operator overrides."""
    rows = []
    for country in COUNTRIES:
        rows.append(_row(country, "0", country.price, tariff))
        rows += [_row(country, n.mnc, n.price, tariff) for n in country.networks if n.price]
    return rows


def _row(country: Country, mnc: str, base: Decimal, tariff: int) -> dict[str, str]:
    return {"type": "hlr", "country": country.iso, "country_name": country.name,
            "mcc": country.mcc, "mnc": mnc, "price": money_text(base * (10 + tariff) / 10),
            "currency": CURRENCY}
