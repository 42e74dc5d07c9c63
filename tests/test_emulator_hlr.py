"""The emulator's BSG v1 HLR API under /rest/hlr/: auth, create/check/get, prices, balance, errors."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

import pytest
import requests
from kit import Emulators

from bsg_sync.emulator import Emulator, EmulatorConfig

TIMEOUT = 5
KEY = {"X-API-KEY": "hlr_key_1"}
GB = "447700900123"  # active (last digit 3), on EE (second-to-last 2: networks[2 % 3])
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@pytest.fixture
def emu(emulator: Emulators) -> Emulator:
    return emulator(hlr_delay=0.3)


def hlr(emu: Emulator, method: str, path: str, body: Any = None,
        headers: dict[str, str] | None = None, raw: bytes | None = None) -> requests.Response:
    url = f"{emu.url}/rest/hlr/{path}"
    hdrs = KEY if headers is None else headers
    if raw is not None:
        return requests.request(method, url, data=raw, headers=hdrs, timeout=TIMEOUT)
    return requests.request(method, url, json=body, headers=hdrs, timeout=TIMEOUT)


def ok(resp: requests.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def err(code: int, text: str) -> dict[str, str]:
    return {"error": str(code), "errorDescription": text}


def balance(emu: Emulator) -> Decimal:
    return Decimal(ok(hlr(emu, "GET", "balance"))["amount"])


# ---------------------------------------------------------------- auth
def test_any_non_empty_key_by_default_and_none_without_one(emu: Emulator) -> None:
    assert ok(hlr(emu, "GET", "balance"))["error"] == "0"
    for headers in ({}, {"X-API-KEY": ""}, {"Authorization": "Bearer abc.def.ghi"}):
        assert ok(hlr(emu, "GET", "balance", headers=headers)) == err(1, "Invalid API key")


def test_a_configured_key_is_the_only_one_and_differs_from_login() -> None:
    with Emulator(EmulatorConfig(api_key="live_login", hlr_api_key="v1secret")) as emu:
        wrong = hlr(emu, "GET", "balance", headers={"X-API-KEY": "live_login"})
        assert ok(wrong) == err(1, "Invalid API key")
        assert ok(hlr(emu, "GET", "balance", headers={"X-API-KEY": "v1secret"}))["error"] == "0"


# ---------------------------------------------------------------- create, then poll
def test_create_one_is_sent_then_final_and_charged(emu: Emulator) -> None:
    start = balance(emu)
    made = ok(hlr(emu, "POST", "create", [{"msisdn": GB, "reference": "ref1"}]))
    assert set(made) == {"error", "id", "price", "currency"} and made["error"] == "0"
    assert (made["currency"], balance(emu)) == ("EUR", start - Decimal(made["price"]))
    first = ok(hlr(emu, "GET", made["id"]))
    assert (first["status"], first["network"], first["imsi"]) == ("sent", None, None)
    assert first["statusDatetime"] == first["createdDatetime"]
    time.sleep(0.35)
    final = ok(hlr(emu, "GET", made["id"]))
    assert final == ok(hlr(emu, "GET", "reference/ref1"))
    assert final["status"] == "active" and final["msisdn"] == GB and final["reference"] == "ref1"
    assert final["country_name"] == "United Kingdom" and final["network"].startswith("234")
    assert final["details"] == {"ported": 0, "roaming": 0} and final["price"] == made["price"]
    assert STAMP.match(final["createdDatetime"]) and STAMP.match(final["statusDatetime"])


def test_create_several_answers_result_and_totalprice(emu: Emulator) -> None:
    start = balance(emu)
    items = [{"msisdn": "33601148802", "reference": "a1", "tariff": 2},
             {"msisdn": 491510000006, "reference": "a2", "callback_url": "https://x/cb"},
             {"msisdn": "12345", "reference": "a3"}]
    made = ok(hlr(emu, "PUT", "create", items))
    assert set(made) == {"result", "totalprice", "currency"}
    fr, de, bad = made["result"]
    assert (fr["error"], fr["msisdn"], fr["reference"], fr["tariff_code"]) == ("0", "33601148802",
                                                                             "a1", 2)
    assert de["error"] == "0" and de["id"] != fr["id"]
    assert bad == {**err(61, "Invalid MSISDN"), "msisdn": "12345", "reference": "a3"}
    total = Decimal(fr["price"]) + Decimal(de["price"])
    assert Decimal(made["totalprice"]) == total and balance(emu) == start - total
    assert emu.hlr_stats()["numbers"] == {"33601148802": 1, "491510000006": 1}


@pytest.mark.parametrize(("item", "code", "text"), [
    ({"msisdn": "44770090", "reference": "r"}, 61, "Invalid MSISDN"),  # 8 digits
    ({"msisdn": "99912345678", "reference": "r"}, 61, "Invalid MSISDN"),  # no such country
    ({"msisdn": "+447700900123", "reference": "r"}, 61, "Invalid MSISDN"),
    ({"msisdn": True, "reference": "r"}, 61, "Invalid MSISDN"),
    ({"msisdn": GB}, 62, "External ID absent"),
    ({"msisdn": GB, "reference": "used"}, 63, "External ID already exists"),
    ({"msisdn": GB, "reference": "r", "colour": "red"}, 64, "Invalid request payload"),
    ({"msisdn": GB, "reference": "r", "callback_url": 5}, 64, "Invalid request payload"),
    ({"msisdn": GB, "reference": "has space"}, 65, "Invalid External ID"),
    ({"msisdn": GB, "reference": "x" * 33}, 65, "Invalid External ID"),
    ({"msisdn": GB, "reference": "r", "tariff": 10}, 6, "Invalid price grid parameter"),
    ({"msisdn": GB, "reference": "r", "tariff": "x"}, 6, "Invalid price grid parameter"),
])
def test_create_item_errors(emu: Emulator, item: dict[str, Any], code: int, text: str) -> None:
    ok(hlr(emu, "POST", "create", [{"msisdn": "447700900120", "reference": "used"}]))
    start = balance(emu)
    assert ok(hlr(emu, "POST", "create", [item])) == err(code, text)
    several = ok(hlr(emu, "POST", "create", [item, {"msisdn": "447700900121", "reference": "z"}]))
    assert several["result"][0]["error"] == str(code) and several["result"][1]["error"] == "0"
    assert balance(emu) == start - Decimal(several["totalprice"])


def test_duplicates_inside_one_request(emu: Emulator) -> None:
    made = ok(hlr(emu, "POST", "create", [
        {"msisdn": GB, "reference": "d1"}, {"msisdn": GB, "reference": "d2"},
        {"msisdn": "447700900124", "reference": "d1"}]))
    assert [r["error"] for r in made["result"]] == ["0", "66", "63"]
    assert emu.hlr_stats()["numbers"] == {GB: 1}


@pytest.mark.parametrize("raw", [b"", b"{nope", b"[]", b"5", b'"x"', b"[5]"])
def test_bad_payloads_are_64(emu: Emulator, raw: bytes) -> None:
    resp = hlr(emu, "POST", "create", raw=raw, headers={**KEY, "Content-Type": "application/json"})
    body = ok(resp)
    expected = err(64, "Invalid request payload")
    assert body == expected or body["result"][0] == {**expected}


def test_a_bare_object_is_one_item(emu: Emulator) -> None:
    made = ok(hlr(emu, "POST", "create", {"msisdn": GB, "reference": "o1"}))
    assert made["error"] == "0" and "id" in made


def test_batch_size_limit_is_12_and_creates_nothing() -> None:
    with Emulator(EmulatorConfig(hlr_max_batch=3)) as emu:
        items = [{"msisdn": f"44770090012{i}", "reference": f"b{i}"} for i in range(4)]
        assert ok(hlr(emu, "POST", "create", items)) == err(12, "Exceeded batch size limit")
        assert emu.hlr_stats()["lookups"] == 0
        assert "result" in ok(hlr(emu, "POST", "create", items[:3]))


def test_simultaneous_limit_is_11_until_lookups_are_final() -> None:
    with Emulator(EmulatorConfig(hlr_max_pending=2, hlr_delay=0.3)) as emu:
        two = [{"msisdn": "447700900121", "reference": "s1"},
               {"msisdn": "447700900122", "reference": "s2"}]
        ok(hlr(emu, "POST", "create", two))
        third = hlr(emu, "POST", "create", [{"msisdn": "447700900124", "reference": "s3"}])
        assert ok(third) == err(11, "Exceeded limit for messages processed simultaneously")
        assert ok(hlr(emu, "POST", "check", {"msisdn": "447700900125"}))["error"] == "0"
        time.sleep(0.35)
        again = hlr(emu, "POST", "create", [{"msisdn": "447700900124", "reference": "s3"}])
        assert ok(again)["error"] == "0"


def test_not_enough_money_is_8_and_charges_nothing() -> None:
    with Emulator(EmulatorConfig(hlr_balance=0.012, hlr_delay=0)) as emu:
        items = [{"msisdn": f"44770090013{i}", "reference": f"m{i}"} for i in range(3)]  # O2
        assert ok(hlr(emu, "POST", "create", items)) == err(8, "Not enough money")
        assert ok(hlr(emu, "POST", "check", {"msisdn": "447700900129", "tariff": 9})  # EE
                  ) == err(8, "Not enough money")
        assert balance(emu) == Decimal("0.012") and emu.hlr_stats()["lookups"] == 0
        ok(hlr(emu, "POST", "create", items[:2]))
        assert balance(emu) == Decimal("0.002")


def test_unknown_ids_and_references_are_60(emu: Emulator) -> None:
    assert ok(hlr(emu, "GET", "999")) == err(60, "HLR not found")
    assert ok(hlr(emu, "GET", "reference/nope")) == err(60, "HLR not found")


@pytest.mark.parametrize(("method", "path"), [("GET", "create"), ("DELETE", "1"),
                                              ("GET", "a/b/c"), ("POST", "prices")])
def test_unknown_methods_are_4(emu: Emulator, method: str, path: str) -> None:
    assert ok(hlr(emu, method, path)) == err(4, "Invalid request or API method does not exist")


# ---------------------------------------------------------------- results chosen by the number
@pytest.mark.parametrize(("last", "status", "ported", "roaming"), [
    ("0", "active", 0, 0), ("4", "active", 0, 0), ("5", "active", 1, 0), ("6", "absent", 0, 0),
    ("7", "unknown", 0, 0), ("8", "failed", 0, 0), ("9", "active", 0, 1),
])
def test_check_gives_the_final_result_chosen_by_the_last_digit(
    emu: Emulator, last: str, status: str, ported: int, roaming: int
) -> None:
    msisdn = "49151000001" + last
    result = ok(hlr(emu, "POST", "check", {"msisdn": msisdn}))
    assert (result["status"], result["details"]) == (status, {"ported": ported,
                                                             "roaming": roaming})
    assert result["country_name"] == "Germany" and result["error"] == "0"
    assert (result["network"] is None) == (status in ("unknown", "failed"))
    assert (result["imsi"] is None) == (status != "active")
    assert ok(hlr(emu, "GET", result["id"])) == result  # stored like an async lookup


def test_check_takes_one_number(emu: Emulator) -> None:
    two = [{"msisdn": GB}, {"msisdn": "447700900124"}]
    assert ok(hlr(emu, "PUT", "check", two)) == err(64, "Invalid request payload")
    assert ok(hlr(emu, "POST", "check", {"msisdn": "1"})) == err(61, "Invalid MSISDN")


# ---------------------------------------------------------------- prices and balance
def test_prices_per_country_and_operator_and_tariff(emu: Emulator) -> None:
    rows = ok(hlr(emu, "GET", "prices"))["prices"]
    gb = {r["mnc"]: r["price"] for r in rows if r["country"] == "GB"}
    assert gb == {"0": "0.0050000", "30": "0.0070000"}
    assert all(set(r) == {"type", "country", "country_name", "mcc", "mnc", "price", "currency"}
               for r in rows)
    tariff3 = ok(hlr(emu, "GET", "prices/3"))["prices"]
    assert {r["mnc"]: r["price"] for r in tariff3 if r["country"] == "GB"}["0"] == "0.0065000"
    assert ok(hlr(emu, "GET", "prices/10")) == err(6, "Invalid price grid parameter")


def test_the_charge_is_the_operators_price(emu: Emulator) -> None:
    # GB networks are O2, Vodafone, EE: the second-to-last digit 2 picks EE (2 % 3)
    ee = ok(hlr(emu, "POST", "check", {"msisdn": "447700900121", "tariff": 1}))
    o2 = ok(hlr(emu, "POST", "check", {"msisdn": "447700900131"}))
    assert (ee["network"], ee["price"]) == ("23430", "0.0077000")  # EE's 0.0070 x tariff 1
    assert (o2["network"], o2["price"]) == ("23410", "0.0050000")


# ---------------------------------------------------------------- faults, throttle, stats
def test_faults_apply_to_the_hlr_api_too(emu: Emulator) -> None:
    emu.inject("503", "drop")
    assert hlr(emu, "GET", "balance").status_code == 503
    with pytest.raises(requests.ConnectionError):
        hlr(emu, "GET", "balance")
    assert ok(hlr(emu, "GET", "balance"))["error"] == "0"


def test_identical_creates_hit_the_duplicate_429() -> None:
    with Emulator(EmulatorConfig(dup_limit=2, dup_window=30)) as emu:
        body = [{"msisdn": GB, "reference": "t1"}]
        answers = [hlr(emu, "POST", "create", body) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[1].json() == err(63, "External ID already exists")
        assert answers[2].json() == {"message": "Too many duplicate request detected"}
        assert all(hlr(emu, "GET", "balance").status_code == 200 for _ in range(3))


def test_hlr_has_its_own_stats_and_reset_restores_the_balance(emu: Emulator) -> None:
    ok(hlr(emu, "POST", "create", [{"msisdn": GB, "reference": "st1"}]))
    ok(hlr(emu, "GET", "reference/st1"))
    ok(hlr(emu, "GET", "1"))
    stats = requests.get(f"{emu.url}/_emulator/hlr", timeout=TIMEOUT).json()
    assert stats["requests"] == {"create": 1, "reference": 1, "get": 1}
    assert stats["lookups"] == 1 and stats["numbers"] == {GB: 1}
    assert Decimal(stats["balance"]) < Decimal(10)
    assert emu.stats()["requests"] == {"GET": 0, "PUT": 0, "POST": 0, "DELETE": 0}
    requests.post(f"{emu.url}/_emulator/reset", timeout=TIMEOUT)
    assert balance(emu) == Decimal(10) and emu.hlr_stats()["lookups"] == 0


def test_a_lookup_does_not_change_the_contacts_hlr_status() -> None:
    seed = {"contacts": [{"id": 248400001, "phone": 447700900126}]}
    with Emulator(EmulatorConfig(hlr_delay=0), seed=seed) as emu:
        assert ok(hlr(emu, "POST", "check", {"msisdn": "447700900126"}))["status"] == "absent"
        assert emu.contacts()[0]["hlr_status"] == "unknown"


def test_an_emulator_bug_is_error_5_not_a_dropped_connection(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, Any]:
        raise KeyError("bug")

    monkeypatch.setattr(emu.hlr, "balance_wire", broken)
    assert ok(hlr(emu, "GET", "balance")) == err(5, "Unknown error")
