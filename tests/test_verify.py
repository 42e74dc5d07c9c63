"""`bsg-sync verify` against the real emulator (One-API and v1 HLR on one loopback port):
which numbers are chosen, the cost guard, the HLR error codes, resume, the key scrub."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kit import Emulators

from bsg_sync.cli import cli
from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.errors import ApiCallError, Throttled
from bsg_sync.hlr import (
    HlrBatchTooLarge,
    HlrBusy,
    HlrClient,
    HlrItemError,
    HlrKeyRejected,
    HlrNoFunds,
    HlrRefused,
    raise_for_request,
)
from bsg_sync.state import StateStore
from bsg_sync.verify import Mode, VerifyOptions, verify_numbers

KEY = "live_verify_tests"
HLR_KEY = "hlrSecretKey0123456789"
RECENT = (datetime.now(timezone.utc) - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
OLD = (datetime.now(timezone.utc) - timedelta(days=90)).strftime("%Y-%m-%d %H:%M:%S")
# 447700900101: in the book, checked 2 days ago; ...102: in the book, checked 90 days ago;
# ...103: in the book, the sheet gives it a new number (...116); ...104/105/106/107/108 new
SEED = {
    "fields": [{"id": 387714, "name": "Name", "type": "text"}],
    "groups": [],
    "contacts": [
        {"id": 1001, "phone": 447700900101, "fields": {"387714": "A"},
         "hlr_status": "active", "hlr_last_check": RECENT},
        {"id": 1002, "phone": 447700900102, "fields": {"387714": "B"},
         "hlr_status": "active", "hlr_last_check": OLD},
        {"id": 1003, "phone": 447700900103, "fields": {"387714": "C"}},
    ],
}
SHEET = """id,phone,Name
,447700900101,A
,447700900102,B
1003,447700900116,C
,447700900104,D
,447700900105,E
,447700900106,F
,447700900117,G
,447700900108,H
,447700900104,D
"""
NEW = ["447700900104", "447700900105", "447700900106", "447700900117", "447700900108"]
MAPPING = '[columns]\n"id" = "id"\n"phone" = "phone"\n"Name" = "field:Name"\n'


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seed") / "seed.json"
    path.write_text(json.dumps(SEED))
    return path


@pytest.fixture(scope="module")
def emu(seed_file: Path, module_emulator: Emulators) -> Emulator:
    return module_emulator(seed_file, hlr_api_key=HLR_KEY, hlr_delay=0.15, hlr_balance=1.0)


@pytest.fixture()
def work(emu: Emulator, tmp_path: Path) -> Path:
    emu.reset()
    (tmp_path / "sheet.csv").write_text(SHEET)
    (tmp_path / "sheet.toml").write_text(MAPPING)
    return tmp_path


def _verify(emu: Emulator, work: Path, *extra: str, hlr_key: str = HLR_KEY) -> Result:
    env = {"BSG_API_KEY": KEY, "BSG_HLR_API_KEY": hlr_key, "BSG_STATE": "",
           "BSG_API_URL": "", "BSG_HLR_URL": ""}
    args = ["verify", str(work / "sheet.csv"), "--state", str(work / "state.sqlite3"),
            "--api-url", emu.url, "--hlr-url", emu.url + "/rest", "--hlr-poll-interval", "0.05",
            "--max-rps", "1000", *extra]
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def _numbers(emu: Emulator) -> dict[str, int]:
    return dict(emu.hlr_stats()["numbers"])


def _json(result: Result) -> dict[str, object]:
    return json.loads(result.stdout)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- choice of numbers

def test_new_verifies_only_numbers_new_to_the_book(emu: Emulator, work: Path) -> None:
    result = _verify(emu, work, "--verify", "new", "--json")
    assert result.exit_code == 0, result.stderr
    assert _numbers(emu) == dict.fromkeys(NEW, 1)  # the repeated ...104 once
    body = _json(result)
    assert body["counts"] == {"absent": 1, "active": 2, "failed": 1, "unknown": 1}
    assert body["lookups"] == 5


def test_changed_adds_the_number_the_sheet_changes(emu: Emulator, work: Path) -> None:
    assert _verify(emu, work, "--verify", "changed").exit_code == 0
    assert set(_numbers(emu)) == {*NEW, "447700900116"}


def test_stale_adds_numbers_checked_longer_ago_than_max_age(emu: Emulator, work: Path) -> None:
    assert _verify(emu, work, "--verify", "stale").exit_code == 0
    assert set(_numbers(emu)) == {*NEW, "447700900116", "447700900102"}
    emu.reset()
    assert _verify(emu, work, "--verify", "stale", "--verify-max-age", "1").exit_code == 0
    # the cache of the first run is fresh: only the book's 2-day-old check is now stale
    assert set(_numbers(emu)) == {"447700900101"}


def test_all_verifies_every_number(emu: Emulator, work: Path) -> None:
    assert _verify(emu, work, "--verify", "all").exit_code == 0
    assert set(_numbers(emu)) == {*NEW, "447700900116", "447700900102", "447700900101"}


def test_a_second_run_is_served_from_the_cache(emu: Emulator, work: Path) -> None:
    assert _verify(emu, work, "--verify", "all").exit_code == 0
    paid = emu.hlr_stats()["lookups"]
    again = _verify(emu, work, "--verify", "all", "--json")
    assert again.exit_code == 0, again.stderr
    assert emu.hlr_stats()["lookups"] == paid  # 0 new lookups
    body = _json(again)
    assert body["lookups"] == 0 and len(body["results"]) == 8  # type: ignore[arg-type]
    assert "no number needs verifying" in again.stderr


# ---------------------------------------------------------------- cost guard

def test_dry_run_shows_count_and_price_and_pays_nothing(emu: Emulator, work: Path) -> None:
    result = _verify(emu, work, "--verify", "new", "--dry-run")
    assert result.exit_code == 0, result.stderr
    # GB's highest price (EE 0.0070) for each of the 5 numbers: the operator is not known yet
    assert result.stderr.strip().splitlines()[-1] == (
        "dry run: would verify 5 lookups for 0.0350000 EUR; nothing paid "
        "(balance 1.0000000 EUR)")
    assert emu.hlr_stats()["lookups"] == 0


def test_over_the_cap_refuses_before_any_lookup(emu: Emulator, work: Path) -> None:
    result = _verify(emu, work, "--verify", "new", "--max-verify-cost", "0.03")
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "bsg-sync: verifying would cost 0.0350000 EUR for 5 numbers, over --max-verify-cost "
        "0.03; raise the cap or verify fewer numbers")
    assert emu.hlr_stats()["lookups"] == 0


def test_over_the_balance_refuses_before_any_lookup(seed_file: Path, tmp_path: Path) -> None:
    config = EmulatorConfig(hlr_api_key=HLR_KEY, hlr_delay=0.05, hlr_balance=0.02)
    (tmp_path / "sheet.csv").write_text(SHEET)
    (tmp_path / "sheet.toml").write_text(MAPPING)
    with Emulator(config, seed=seed_file) as poor:
        result = _verify(poor, tmp_path, "--verify", "new")
        assert result.exit_code == 3
        assert result.stderr.strip() == (
            "bsg-sync: verifying would cost 0.0350000 EUR for 5 numbers, more than the HLR "
            "balance of 0.0200000 EUR; top up or verify fewer numbers")
        assert poor.hlr_stats()["lookups"] == 0


# ---------------------------------------------------------------- the key

def test_bad_hlr_key_is_exit_3_and_never_shown(emu: Emulator, work: Path) -> None:
    result = _verify(emu, work, "--verify", "new", "-vv", hlr_key="wrongKey987654321")
    assert result.exit_code == 3
    assert "did not accept the key" in result.stderr
    assert "wrongKey987654321" not in result.stderr + result.stdout


def test_hlr_key_not_in_output_logs_or_state(emu: Emulator, work: Path) -> None:
    result = _verify(emu, work, "--verify", "all", "-vv", "--json")
    assert result.exit_code == 0, result.stderr
    assert HLR_KEY not in result.stderr + result.stdout
    assert HLR_KEY.encode() not in (work / "state.sqlite3").read_bytes()
    assert "X-API-KEY" not in result.stderr


def test_no_hlr_key_is_a_usage_error(emu: Emulator, work: Path) -> None:
    result = _verify(emu, work, hlr_key="")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "bsg-sync: no HLR API key: set BSG_HLR_API_KEY or pass --hlr-api-key-file PATH")


# ---------------------------------------------------------------- error codes, by the client

def _hlr(emu: Emulator, key: str = HLR_KEY) -> HlrClient:
    return HlrClient(emu.url + "/rest", key, policy=RetryPolicy.fast())


def test_error_1_bad_key(emu: Emulator) -> None:
    with _hlr(emu, "nope1234") as hlr, pytest.raises(HlrKeyRejected) as info:
        hlr.balance()
    assert info.value.exit_code == 3


def test_error_8_not_enough_funds(seed_file: Path) -> None:
    config = EmulatorConfig(hlr_api_key=HLR_KEY, hlr_balance=0.001)
    with Emulator(config, seed=seed_file) as poor, _hlr(poor) as hlr:
        with pytest.raises(HlrNoFunds):
            hlr.create([("447700900104", "r1")])
        assert poor.hlr_stats()["lookups"] == 0


def test_error_11_busy_and_12_batch_too_large(seed_file: Path) -> None:
    config = EmulatorConfig(hlr_api_key=HLR_KEY, hlr_max_batch=2, hlr_max_pending=3,
                            hlr_delay=30)
    with Emulator(config, seed=seed_file) as emu, _hlr(emu) as hlr:
        with pytest.raises(HlrBatchTooLarge):
            hlr.create([("447700900104", "a1"), ("447700900105", "a2"), ("447700900106", "a3")])
        hlr.create([("447700900104", "b1"), ("447700900105", "b2")])
        with pytest.raises(HlrBusy):
            hlr.create([("447700900106", "b3"), ("447700900107", "b4")])


def test_error_61_is_the_numbers_failure_and_63_means_fetch(emu: Emulator) -> None:
    emu.reset()
    with _hlr(emu) as hlr:
        first = hlr.create([("447700900104", "ref1"), ("999", "ref2")])
        assert isinstance(first[1], HlrItemError) and first[1].code == 61
        again = hlr.create([("447700900104", "ref1")])
        assert isinstance(again[0], HlrItemError) and again[0].code == 63
        found = hlr.by_reference("ref1")
        assert found is not None and found.msisdn == "447700900104"
        assert hlr.by_reference("nosuchref") is None  # 60


def test_verify_halves_batches_on_12_and_waits_on_11(seed_file: Path, tmp_path: Path) -> None:
    config = EmulatorConfig(hlr_api_key=HLR_KEY, hlr_max_batch=2, hlr_max_pending=3,
                            hlr_delay=0.1)
    with Emulator(config, seed=seed_file) as emu, _hlr(emu) as hlr, \
            StateStore(tmp_path / "s.sqlite3") as store:
        opts = VerifyOptions(mode=Mode.ALL, batch=10, poll_interval=0.03)
        out = verify_numbers(hlr, store, NEW, opts)
        assert _numbers(emu) == dict.fromkeys(NEW, 1)
        assert sorted(out.results) == sorted(NEW)
        # each paid at its operator's price (O2/Vodafone 0.005), not the quote's EE 0.007
        assert out.cost() == Decimal("0.0250000") and out.quote.total == Decimal("0.035")


def test_invalid_number_is_that_numbers_result(emu: Emulator, tmp_path: Path) -> None:
    emu.reset()
    with _hlr(emu) as hlr, StateStore(tmp_path / "s.sqlite3") as store:
        out = verify_numbers(hlr, store, ["447700900104", "9990001112223"],
                             VerifyOptions(poll_interval=0.03))
        assert out.results["447700900104"].status == "active"
        assert out.quote.unpriced == ("9990001112223",)  # no price, so never sent


def test_faults_on_create_and_poll_are_retried_and_pay_once(emu: Emulator, tmp_path: Path
                                                            ) -> None:
    emu.reset()
    emu.inject("drop", "503", "429", "html", "truncated")
    with _hlr(emu) as hlr, StateStore(tmp_path / "s.sqlite3") as store:
        out = verify_numbers(hlr, store, NEW, VerifyOptions(poll_interval=0.03))
        assert _numbers(emu) == dict.fromkeys(NEW, 1)
        assert {v.status for v in out.results.values()} == {"active", "absent", "unknown",
                                                            "failed"}
        assert hlr.http.retries >= 5


def test_report_has_one_row_per_number_with_the_verify_columns(emu: Emulator, work: Path
                                                               ) -> None:
    result = _verify(emu, work, "--verify", "new", "--report", str(work / "v.csv"))
    assert result.exit_code == 0, result.stderr
    lines = (work / "v.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == ("msisdn,verify_status,network,country,ported,roaming,verified_at,"
                        "verify_cost,cached")
    by_number = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    assert sorted(by_number) == sorted(NEW)
    active, ported = by_number["447700900104"], by_number["447700900105"]
    assert active[1:6] == ["active", "23410", "United Kingdom", "0", "0"]
    assert ported[1:6] == ["active", "23410", "United Kingdom", "1", "0"]
    assert active[7:] == ["0.0050000", "0"]
    assert by_number["447700900106"][1:3] == ["absent", "23410"]


def test_report_with_another_extension_is_refused_before_paying(emu: Emulator, work: Path
                                                                ) -> None:
    result = _verify(emu, work, "--verify", "new", "--report", str(work / "v.xlsx"))
    assert result.exit_code == 2
    assert "as .csv or .jsonl" in result.stderr
    assert emu.hlr_stats()["lookups"] == 0


def test_error_64_bad_payload_refuses_the_run(emu: Emulator) -> None:
    with _hlr(emu) as hlr:
        body = hlr.http.request_keyed("POST", "/hlr/create", [{"msisdn": "447700900104",
                                                               "unexpected": 1}])
        assert body["error"] == "64"
        with pytest.raises(HlrRefused) as info:
            raise_for_request(body, "the lookups")
        assert info.value.code == 64 and info.value.exit_code == 3


def test_a_429_that_persists_is_the_clients_throttled_error(emu: Emulator) -> None:
    emu.reset()
    emu.inject(*["429"] * 6)
    with _hlr(emu) as hlr, pytest.raises(Throttled):
        hlr.create([("447700900104", "t429")])
    assert emu.hlr_stats()["lookups"] == 0


def test_a_redirect_never_carries_the_hlr_key_elsewhere() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str | None] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("X-API-KEY"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"error": "0", "amount": "1", "currency": "EUR"}')

        def log_message(self, *args: object) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirect(Elsewhere):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{other.server_port}/hlr/balance")
            self.send_header("Content-Length", "0")
            self.end_headers()

    first = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for server in (other, first):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with HlrClient(f"http://127.0.0.1:{first.server_port}", HLR_KEY,
                       policy=RetryPolicy.fast()) as hlr, pytest.raises(ApiCallError):
            hlr.balance()
        assert seen == []
    finally:
        for server in (other, first):
            server.shutdown()
            server.server_close()
