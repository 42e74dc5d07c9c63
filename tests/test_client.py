"""Tests for bsg_sync.client and bsg_sync.wire: wire shapes, error text, HTTP against the emulator."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kit import Emulators

from bsg_sync.cli import cli
from bsg_sync.client import BsgClient, RetryPolicy, _DuplicateGuard, _retry_after, check_base_url
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.errors import (
    ApiCallError,
    AuthFailed,
    ExitCode,
    ModeForbidden,
    NotFound,
    ServerError,
    TransportError,
    Unreachable,
    ValidationFailed,
)
from bsg_sync.models import Contact
from bsg_sync.wire import decode_success, error_for, flatten_error, parse_contact, write_body

KEY = "live_s3cr3t-key-value-0123456789"
FIELD_NAME, FIELD_CITY = 387714, 387715
GROUP_NEWS, GROUP_VIP = 1864618, 1864619

SEED: dict[str, Any] = {
    "fields": [
        {"id": FIELD_NAME, "name": "first_name", "type": "text"},
        {"id": FIELD_CITY, "name": "City", "type": "text"},
    ],
    "groups": [{"id": GROUP_NEWS, "name": "Newsletter"}, {"id": GROUP_VIP, "name": "VIP"}],
    "contacts": [
        {"id": 101, "phone": 447700900123, "fields": {str(FIELD_NAME): "Jane"},
         "groups": [GROUP_NEWS]},
        {"id": 102, "phone": 447700900124, "fields": [], "groups": []},
    ],
}


# ---------------------------------------------------------------- pure: wire shapes


@pytest.mark.parametrize(
    ("raw_fields", "expected"),
    [
        ({"387714": "Jane", "387715": "London"}, {387714: "Jane", 387715: "London"}),
        ([], {}),
        (None, {}),
        ([{"id": 387714, "value": "Jane"}, {"id": "387715", "value": None}],
         {387714: "Jane", 387715: ""}),
        ({"5": 42}, {5: "42"}),
    ],
)
def test_parse_contact_normalises_fields(raw_fields: Any, expected: dict[int, str]) -> None:
    contact = parse_contact({"id": 7, "phone": 447700900123, "fields": raw_fields})
    assert dict(contact.fields) == expected


@pytest.mark.parametrize(
    ("raw_groups", "expected"),
    [
        ([{"id": 1, "name": "A"}, {"id": "2", "name": "B"}], {1, 2}),
        ([3, "4"], {3, 4}),
        ([], set()),
        (None, set()),
    ],
)
def test_parse_contact_normalises_groups(raw_groups: Any, expected: set[int]) -> None:
    contact = parse_contact({"id": "7", "phone": "+44 7700 900123", "groups": raw_groups})
    assert contact.groups == frozenset(expected)
    assert contact.id == 7
    assert contact.phone == "447700900123"


def test_parse_contact_keeps_hlr_and_rejects_non_contacts() -> None:
    c = parse_contact({"id": 1, "phone": 447700900123.0, "hlr_status": "active",
                       "hlr_last_check": "2025-03-01 09:15:00"})
    assert (c.phone, c.hlr_status, c.hlr_last_check) == ("447700900123", "active",
                                                         "2025-03-01 09:15:00")
    with pytest.raises(ValueError):
        parse_contact({"phone": 447700900123})


def test_write_body_sorts_and_types() -> None:
    contact = Contact(id=1, phone="447700900123", fields={9: "b", 3: "a"},
                      groups=frozenset({20, 10}))
    assert write_body(contact) == {
        "phone": 447700900123,
        "fields": [{"id": 3, "value": "a"}, {"id": 9, "value": "b"}],
        "groups": [10, 20],
    }


# ---------------------------------------------------------------- pure: errors


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"message": "The given data was invalid.",
          "errors": {"phone": ["This value is too long. It should have 15 characters or less."]}},
         "The given data was invalid: phone: This value is too long. It should have 15 "
         "characters or less."),
        ({"message": "Invalid contact id", "errors": []}, "Invalid contact id"),
        ({"message": "Unknown error",
          "errors": {"search.value": ["The search.value must be between 9 and 15 digits"]}},
         "search.value: The search.value must be between 9 and 15 digits"),
        ({"message": "An internal error occurred", "errors": {"text": "API Key not found"}},
         "API Key not found"),
        ({"message": "The given data was invalid.",
          "any_field": ["The value you selected is not a valid choice."]},
         "The given data was invalid: The value you selected is not a valid choice."),
        ({"code": 401, "message": "Expired JWT Token"}, "Expired JWT Token"),
        ({"errors": {"contacts0": ["This value should be of type integer."],
                     "groups": ["A", "B"]}},
         "contacts0: This value should be of type integer.; groups: A; groups: B"),
        ({"message": "Unknown error"}, "Unknown error"),
        ({}, "HTTP 502 Bad Gateway"),
        ("plain text", "plain text"),
    ],
)
def test_flatten_error_reads_as_one_sentence(payload: Any, expected: str) -> None:
    assert flatten_error(payload, 502) == expected


@pytest.mark.parametrize(
    ("status", "message", "kind", "code"),
    [
        (422, "Invalid contact id", NotFound, "not-found"),
        (422, "Contact group is not found", NotFound, "not-found"),
        (404, "Not Found", NotFound, "not-found"),
        (403, "This action is unauthorized for your mode", ModeForbidden, "test-mode"),
        (422, "Phone number is already exist in contact book", ValidationFailed, "http-422"),
        (400, "Request body is empty.", ValidationFailed, "http-400"),
        (401, "Invalid JWT Token", AuthFailed, "auth"),
        (503, "Service Unavailable", ServerError, "retries-exhausted"),
    ],
)
def test_error_for_maps_status_and_message(status: int, message: str,
                                           kind: type[ApiCallError], code: str) -> None:
    exc = error_for(status, {"message": message, "errors": []}, 2)
    assert type(exc) is kind
    assert (exc.code, exc.status, exc.attempts, exc.message) == (code, status, 2, message)


def test_auth_failed_is_a_run_refusal_with_exit_3() -> None:
    assert int(AuthFailed("x").exit_code) == int(ExitCode.REFUSED) == 3
    assert str(AuthFailed("BSG did not accept the API key")) == "BSG did not accept the API key"


@pytest.mark.parametrize(
    ("header", "cap", "expected"),
    [("3", 60.0, 3.0), ("120", 60.0, 60.0), ("0.5", 60.0, 0.5), (None, 60.0, None),
     ("garbage", 60.0, None), ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0, 0.0)],
)
def test_retry_after_parsing(header: str | None, cap: float, expected: float | None) -> None:
    assert _retry_after(header, cap) == expected


@pytest.mark.parametrize("url", ["http://one-api.bsg.world", "http://10.0.0.5:8080",
                                 "ftp://127.0.0.1", "one-api.bsg.world"])
def test_refuses_plain_http_to_remote_hosts(url: str) -> None:
    with pytest.raises(ValueError, match=r"https|plain http"):
        check_base_url(url, allow_insecure_http=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "http://localhost", "http://[::1]:9",
                                 "https://one-api.bsg.world"])
def test_accepts_https_and_loopback(url: str) -> None:
    assert check_base_url(url, allow_insecure_http=False) == url.rstrip("/")


def test_insecure_http_allowed_on_request() -> None:
    assert check_base_url("http://10.0.0.5", allow_insecure_http=True) == "http://10.0.0.5"


def test_duplicate_guard_spaces_the_fourth_identical_write() -> None:
    now = [100.0]
    guard = _DuplicateGuard(10.0, lambda: now[0])
    assert [guard.reserve("PUT /a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert guard.reserve("PUT /a") == pytest.approx(10.0)
    assert guard.reserve("PUT /b") == 0.0
    now[0] += 11.0
    assert guard.reserve("PUT /a") == pytest.approx(0.0)


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(backoff_initial=1.0, backoff_max=4.0)
    assert 0.5 <= policy.backoff(1) <= 1.0
    assert 2.0 <= policy.backoff(3) <= 4.0
    assert 2.0 <= policy.backoff(10) <= 4.0
    assert RetryPolicy.fast().backoff(5) == 0.0


def test_repr_and_errors_never_show_the_key() -> None:
    client = BsgClient("http://127.0.0.1:9", KEY)
    assert KEY not in repr(client)
    assert KEY not in repr(vars(client))
    client.close()


# ---------------------------------------------------------------- against the real emulator

def _config(**overrides: Any) -> Any:
    return EmulatorConfig(**{"random_seed": 1, **overrides})


@pytest.fixture(scope="module")
def emu(module_emulator: Emulators) -> Emulator:
    return module_emulator(SEED, random_seed=1)


@pytest.fixture
def live(emu: Any) -> Any:
    emu.reset()
    return emu


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _client(url: str, sleeps: list[float] | None = None, **policy: Any) -> BsgClient:
    base = RetryPolicy.fast()
    fields = {**base.__dict__, **policy}
    record = sleeps.append if sleeps is not None else (lambda _s: None)
    return BsgClient(url, KEY, policy=RetryPolicy(**fields), sleep=record)


def _put(cid: int = 101, phone: int = 447700900123, city: str = "Leeds") -> tuple[Contact, Contact]:
    """(target, before) for update_contact: set City and list News on contact `cid`."""
    before = Contact(cid, str(phone), {}, frozenset())
    return Contact(cid, str(phone), {FIELD_CITY: city}, frozenset({GROUP_NEWS})), before


def test_update_retries_503_twice_then_succeeds(live: Any) -> None:
    with _client(live.url) as client:
        client.login()
        live.inject("503", "503")
        result = client.update_contact(*_put(101))
    assert (result.attempts, result.http_status) == (3, 200)
    assert result.contact.fields[FIELD_CITY] == "Leeds"
    assert result.contact.fields[FIELD_NAME] == "Jane"
    assert client.retries == 2
    assert client.requests_sent == 4  # login + 3 PUTs
    assert live.stats()["requests"]["PUT"] == 3


def test_server_errors_exhaust_attempts(live: Any) -> None:
    with _client(live.url, max_attempts=3) as client:
        client.login()
        live.inject("500", "502", "503")
        with pytest.raises(ServerError) as info:
            client.update_contact(*_put(101))
    assert (info.value.attempts, info.value.status, info.value.code) == (3, 503,
                                                                         "retries-exhausted")


def test_timeout_is_retried(live: Any) -> None:
    with _client(live.url, timeout=0.5) as client:
        client.login()
        live.inject("timeout:2")
        started = time.monotonic()
        contact = client.get_contact(101)
    assert contact is not None and contact.phone == "447700900123"
    assert client.retries == 1
    assert time.monotonic() - started < 1.9  # gave up on the slow answer, did not wait it out


def test_timeout_exhausted_is_a_transport_error(live: Any) -> None:
    with _client(live.url, timeout=0.3, max_attempts=2) as client:
        client.login()
        live.inject("timeout:1", "timeout:1")
        with pytest.raises(TransportError, match="timeout") as info:
            client.get_contact(101)
    assert info.value.attempts == 2


def test_429_honours_retry_after_up_to_the_cap(live: Any, sleeps: list[float]) -> None:
    with _client(live.url, sleeps, retry_after_cap=0.25) as client:
        client.login()
        live.inject("429")
        contact = client.get_contact(102)
    assert contact is not None
    assert client.retries == 1
    assert [s for s in sleeps if s > 0] == [0.25]


def test_429_waits_the_retry_after_when_under_the_cap(live: Any, sleeps: list[float]) -> None:
    with _client(live.url, sleeps, retry_after_cap=3600.0) as client:
        client.login()
        live.inject("429")
        client.list_fields()
    waits = [s for s in sleeps if s > 0]
    assert len(waits) == 1 and 0 < waits[0] < 3600.0


def test_dropped_connection_is_retried(live: Any) -> None:
    with _client(live.url) as client:
        client.login()
        live.inject("drop")
        fields = client.list_fields()
    assert {f.name for f in fields} == {"first_name", "City"}
    assert client.retries == 1


def test_422_is_not_retried_and_its_message_is_surfaced(live: Any) -> None:
    with _client(live.url) as client, pytest.raises(ValidationFailed) as info:
        client.update_contact(*_put(101, phone=4477009001231234))
    exc = info.value
    assert (exc.status, exc.attempts, exc.code) == (422, 1, "http-422")
    assert "phone" in exc.message and "too long" in exc.message
    assert live.stats()["requests"]["PUT"] == 1


def test_unknown_contact_is_none_and_not_found_on_update(live: Any) -> None:
    with _client(live.url) as client:
        assert client.get_contact(999_999) is None
        with pytest.raises(NotFound):
            client.update_contact(*_put(999_999))


def test_identical_write_retries_are_spaced_by_the_duplicate_window(sleeps: list[float]) -> None:
    with Emulator(_config(dup_limit=100), seed=SEED) as server, \
            _client(server.url, sleeps, duplicate_window=10.0) as client:
        client.login()
        server.inject("503", "503", "503")
        result = client.update_contact(*_put(101))
    assert result.attempts == 4
    assert [round(s) for s in sleeps if s > 0] == [10]


def test_expired_token_logs_in_once_more(sleeps: list[float]) -> None:
    with Emulator(_config(token_ttl=0.3), seed=SEED) as server, \
            _client(server.url) as client:
        client.login()
        time.sleep(0.35)
        contact = client.get_contact(101)
    assert contact is not None
    assert client.logins == 2


def test_concurrent_workers_share_one_relogin() -> None:
    with Emulator(_config(token_ttl=0.6), seed=SEED) as server, \
            _client(server.url) as client:
        client.login()
        time.sleep(0.65)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                client.list_fields()
            except BaseException as exc:  # surfaced by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
    assert errors == []
    assert client.logins == 2


def test_second_401_is_auth_failed() -> None:
    with Emulator(_config(token_ttl=0), seed=SEED) as server, \
            _client(server.url) as client, pytest.raises(AuthFailed) as info:
        client.list_fields()
    assert info.value.status == 401
    assert "Expired JWT Token" in info.value.message
    assert client.logins == 2


def test_rejected_key_is_auth_failed_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Emulator(_config(api_key="live_the-only-good-key"), seed=SEED) as server, \
            _client(server.url) as client, pytest.raises(AuthFailed) as info:
        client.list_groups()
    exc = info.value
    assert exc.status == 422 and "API Key not found" in exc.message
    for text in (str(exc), repr(exc), exc.message, repr(exc.args), caplog.text, repr(client)):
        assert KEY not in text


def test_paging_returns_each_of_1234_contacts_once() -> None:
    seed = {**SEED, "contacts": [
        {"id": 1000 + i, "phone": 447700000000 + i, "fields": [], "groups": []}
        for i in range(1234)]}
    with Emulator(_config(), seed=seed) as server, _client(server.url) as client:
        ids = [c.id for c in client.iter_contacts()]
        gets = server.stats()["requests"]["GET"]
        total = client.count_contacts()
    assert sorted(ids) == [1000 + i for i in range(1234)]
    assert gets == 3
    assert total == 1234


def _book(n: int) -> dict[str, Any]:
    return {**SEED, "contacts": [
        {"id": 1000 + i, "phone": 447700000000 + i, "fields": [], "groups": []}
        for i in range(n)]}


@pytest.mark.parametrize("size", [15, 16, 44, 45, 46, 1234])
def test_paging_with_workers_returns_what_one_page_at_a_time_does(size: int) -> None:
    """Four pages in flight: the same contacts in the same order, one GET a page (a book that
    is an exact number of pages costs no extra request)."""
    with Emulator(_config(), seed=_book(size)) as server, _client(server.url) as client:
        client.login()
        before = server.stats()["requests"]["GET"]
        one = [c.id for c in client.iter_contacts(page_limit=15)]
        middle = server.stats()["requests"]["GET"]
        four = [c.id for c in client.iter_contacts(page_limit=15, workers=4)]
        after = server.stats()["requests"]["GET"]
    assert one == four == [1000 + i for i in range(size)]
    pages = -(-size // 15)
    assert middle - before == after - middle == pages


def test_paging_with_workers_asks_for_pages_on_other_threads_and_stops_when_left() -> None:
    """The pages after the first are fetched by the pool's threads, at most 2 x workers ahead
    of the reader; a reader that stops early leaves no thread behind."""
    with Emulator(_config(), seed=_book(40 * 15)) as server, _client(server.url) as client:
        client.login()
        before = server.stats()["requests"]["GET"]
        contacts = client.iter_contacts(page_limit=15, workers=3)
        assert isinstance(contacts, Generator)
        first = [next(contacts).id for _ in range(20)]  # into the second page
        fetching = [t.name for t in threading.enumerate() if t.name.startswith("bsg-pages")]
        contacts.close()
        asked = server.stats()["requests"]["GET"] - before
    assert first == [1000 + i for i in range(20)]
    assert fetching, "no page was fetched by a worker thread"
    assert asked <= 1 + 2 * 3 + 1  # the first page, the read-ahead, the one that replaced it
    assert not [t for t in threading.enumerate() if t.name.startswith("bsg-pages")]


@pytest.mark.parametrize(("fault", "words"), [("truncated", "not valid JSON"),
                                              ("empty200", "empty body"), ("huge", "5 MB")])
def test_garbage_bodies_are_transport_errors(live: Any, fault: str, words: str) -> None:
    with _client(live.url, max_attempts=1) as client:
        client.login()
        live.inject(fault)
        with pytest.raises(TransportError) as info:
            client.list_fields()
    assert info.value.code == "retries-exhausted"
    assert words in info.value.message
    assert KEY not in info.value.message


def test_html_error_page_reads_as_its_status(live: Any) -> None:
    with _client(live.url, max_attempts=1) as client:
        client.login()
        live.inject("html")
        with pytest.raises(ServerError) as info:
            client.list_fields()
    assert (info.value.status, info.value.message) == (502, "HTTP 502 Bad Gateway")


@pytest.mark.parametrize("raw", [b"<html>ok</html>", b"[1, 2]", b"   "])
def test_a_2xx_that_is_not_a_json_object_is_a_transport_error(raw: bytes) -> None:
    with pytest.raises(TransportError, match="HTTP 200"):
        decode_success(200, raw)


@pytest.mark.parametrize("fault", ["html", "truncated", "empty200", "huge"])
def test_garbage_bodies_are_retried(live: Any, fault: str) -> None:
    with _client(live.url) as client:
        client.login()
        live.inject(fault)
        assert len(client.list_fields()) == 2
    assert client.retries == 1


def test_search_create_and_membership(live: Any) -> None:
    with _client(live.url) as client:
        found = client.find_by_phone("+44 7700 900124")
        assert found is not None and found.id == 102
        assert client.find_by_phone("447700900999") is None
        created = client.create_contact(Contact(0, "447700900999", {FIELD_NAME: "Zoe"},
                                                frozenset({GROUP_VIP})))
        assert created.http_status == 201
        assert created.contact.groups == frozenset({GROUP_VIP})
        assert client.attach([101, 102], [GROUP_VIP]) == 1
        live.inject("503")
        assert client.detach([101, 101], [GROUP_NEWS, GROUP_VIP]) == 2  # one call, one retry
        assert client.get_contact(101) == parse_contact(
            {"id": 101, "phone": 447700900123, "fields": {str(FIELD_NAME): "Jane"},
             "groups": [], "hlr_status": client.get_contact(101).hlr_status,  # type: ignore[union-attr]
             "hlr_last_check": None})
        assert {g.name for g in client.list_groups()} == {"Newsletter", "VIP"}


def test_membership_is_chunked_to_200_contacts_and_20_lists() -> None:
    group_ids = [5000 + i for i in range(21)]
    contact_ids = [1 + i for i in range(201)]
    seed = {"fields": [], "groups": [{"id": g, "name": f"List {g}"} for g in group_ids],
            "contacts": [{"id": c, "phone": 447700000000 + c, "fields": [], "groups": []}
                         for c in contact_ids]}
    with Emulator(_config(), seed=seed) as server, _client(server.url) as client:
        attempts = client.attach(contact_ids, group_ids)
        posts = server.stats()["requests"]["POST"]
        members = {len(c["groups"]) for c in server.contacts()}
    assert attempts == 4
    assert posts == 1 + 4  # login + 2 contact chunks x 2 list chunks
    assert members == {21}


# ---------------------------------------------------------------- CLI: fields / lists


@pytest.fixture
def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2 keeps stderr apart already
        return CliRunner()


def test_cli_fields_prints_an_aligned_table(live: Any, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["fields", "--api-url", live.url], env={"BSG_API_KEY": KEY})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "    id  name        type",
        f"{FIELD_NAME}  first_name  text",
        f"{FIELD_CITY}  City        text",
    ]


def test_cli_lists_json(live: Any, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["lists", "--json"],
                           env={"BSG_API_KEY": KEY, "BSG_API_URL": live.url})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"id": GROUP_NEWS, "name": "Newsletter"},
                                         {"id": GROUP_VIP, "name": "VIP"}]


def test_cli_without_key_is_usage_error(live: Any, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["fields", "--api-url", live.url], env={"BSG_API_KEY": ""})
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "BSG_API_KEY" in result.stderr


def test_cli_rejected_key_exits_3_with_one_sentence(tmp_path: Path, runner: CliRunner) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o644)
    with Emulator(_config(api_key="live_other"), seed=SEED) as server:
        result = runner.invoke(cli, ["lists", "--api-url", server.url,
                                     "--api-key-file", str(key_file)], env={"BSG_API_KEY": ""})
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert "readable by other users" in lines[0]
    assert lines[-1].startswith("bsg-sync: ") and "API Key not found" in lines[-1]
    assert KEY not in result.stderr


def test_cli_key_file_private_gives_no_warning(live: Any, tmp_path: Path,
                                                runner: CliRunner) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    os.chmod(key_file, 0o600)
    result = runner.invoke(cli, ["lists", "--api-url", live.url, "--api-key-file",
                                 str(key_file)], env={"BSG_API_KEY": ""})
    assert result.exit_code == 0
    assert result.stderr == ""
    assert "Newsletter" in result.stdout


def test_cli_refuses_plain_http_to_a_remote_host(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["fields", "--api-url", "http://one-api.bsg.world"],
                           env={"BSG_API_KEY": KEY})
    assert result.exit_code == 2
    assert "plain http" in result.stderr


def test_unreachable_api_is_a_transport_error_after_the_attempts() -> None:
    with _client("http://127.0.0.1:9", max_attempts=2) as client, \
            pytest.raises(TransportError, match=r"could not connect to 127\.0\.0\.1:9") as info:
        client.list_fields()
    assert info.value.attempts == 2
    assert client.requests_sent == 2


def test_pace_is_called_before_every_request_retries_and_login_included(live: Any) -> None:
    paced: list[int] = []
    policy = RetryPolicy.fast()
    with BsgClient(live.url, KEY, policy=policy, pace=lambda: paced.append(1)) as client:
        assert client.paced
        live.inject("503", "drop")
        client.update_contact(*_put(101))
        assert len(paced) == client.requests_sent == 4  # login + 503 + drop + 200


def test_a_refused_connection_before_any_answer_gives_up_after_two_attempts() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=6, backoff_initial=0.5)
    client = BsgClient("http://127.0.0.1:1", KEY, policy=policy, sleep=sleeps.append)
    with client, pytest.raises(Unreachable) as info:
        client.login()
    assert info.value.attempts == 2
    assert len(sleeps) == 1
    assert "could not connect to 127.0.0.1:1" in info.value.message


def test_a_refused_connection_after_the_api_answered_is_retried_fully(live: Any) -> None:
    sleeps: list[float] = []
    with _client(live.url, sleeps, max_attempts=4) as client:
        client.login()
        client.base_url = "http://127.0.0.1:1"  # the service went away mid-run
        with pytest.raises(TransportError) as info:
            client.get_contact(101)
    assert info.value.attempts == 4


def test_open_client_is_the_one_factory_and_refuses_what_cannot_work() -> None:
    from bsg_sync.client import NO_KEY, open_client
    from bsg_sync.errors import UsageError

    with pytest.raises(UsageError, match="no API key: set BSG_API_KEY") as info:
        open_client("https://one-api.bsg.world", "")
    assert str(info.value) == NO_KEY and info.value.exit_code == ExitCode.USAGE
    with pytest.raises(UsageError, match=r"refusing plain http to example\.com"):
        open_client("http://example.com", KEY)
    with open_client("http://127.0.0.1:9", KEY, max_rps=5.0) as paced, \
            open_client("http://localhost:9", KEY) as unpaced:
        assert (paced.paced, unpaced.paced) == (True, False)
