"""Fuzzing the emulator's request validation: random queries and bodies never give a 5xx."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import Emulators

from bsg_sync.emulator import Emulator

ENDPOINTS = [
    ("GET", "/api/contacts"), ("GET", "/api/contacts/search"), ("POST", "/api/contacts"),
    ("GET", "/api/contacts/248400001"), ("PUT", "/api/contacts/248400001"),
    ("DELETE", "/api/contacts/248400099"), ("POST", "/api/contacts/delete"),
    ("GET", "/api/groups"), ("POST", "/api/groups"), ("GET", "/api/groups/search"),
    ("PUT", "/api/groups/1864618"), ("POST", "/api/groups/attach"),
    ("POST", "/api/groups/detach"), ("GET", "/api/contacts/fields"),
    ("POST", "/api/contacts/fields"), ("PATCH", "/api/contacts/fields/387714"),
    ("POST", "/api/contacts/fields/delete"), ("POST", "/api/auth/login"),
]
KEYS = st.sampled_from([
    "page[limit]", "page[offset]", "groups[]", "sort", "way", "search[field]",
    "search[operator]", "search[value]", "search_fields[0][field]", "search_fields[1][value]",
    "contact_ids[]", "group_ids[]", "per[offset]", "x",
])
VALUES = st.one_of(st.sampled_from(["", "0", "-1", "15", "501", "id", "phone", "like", "=",
                                    ">=", "387714", "1864618", "447700900123", "2025-01-01",
                                    "asc", "desc", "created_at", "group_id"]), st.text(max_size=8))
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=10))
JSON = st.recursive(JSON_LEAF, lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=8)
BODY_KEYS = st.sampled_from(["phone", "groups", "fields", "name", "type", "description",
                             "default", "is_visible", "contacts", "ids", "api_key", "id", "value"])
BODIES = st.one_of(JSON, st.dictionaries(BODY_KEYS, st.one_of(
    JSON, st.lists(st.one_of(st.integers(-2, 1864620), st.fixed_dictionaries(
        {"id": st.integers(-1, 387716), "value": JSON})), max_size=3)), max_size=4))


@pytest.fixture(scope="module")
def emu(module_emulator: Emulators) -> Emulator:
    seed = {"fields": [{"id": 387714, "name": "City", "type": "number"}],
            "groups": [{"id": 1864618, "name": "News"}],
            "contacts": [{"id": 248400001, "phone": 447700900123, "groups": [1864618]}]}
    return module_emulator(seed, dup_limit=10_000)


@pytest.fixture(scope="module")
def session(emu: Emulator) -> requests.Session:
    s = requests.Session()
    token = s.post(f"{emu.url}/api/auth/login", json={"api_key": "live_f"}, timeout=5)
    s.headers["Authorization"] = f"Bearer {token.json()['bearer']}"
    return s


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(ENDPOINTS), query=st.lists(st.tuples(KEYS, VALUES), max_size=4),
       body=st.one_of(st.none(), BODIES))
def test_random_requests_never_get_a_5xx(
    emu: Emulator, session: requests.Session, endpoint: tuple[str, str],
    query: list[tuple[str, str]], body: Any,
) -> None:
    method, path = endpoint
    resp = session.request(method, emu.url + path, params=query, json=body, timeout=5)
    assert resp.status_code < 500, (method, path, query, body, resp.text)
    if resp.status_code != 204:
        assert isinstance(resp.json(), dict)


HLR_PATHS = st.sampled_from(["create", "check", "balance", "prices", "prices/3", "prices/x",
                             "reference/r1", "1", "nope/x", ""])
HLR_ITEM = st.fixed_dictionaries({}, optional={
    "msisdn": st.one_of(st.sampled_from(["447700900123", "33601148802", "1", "+4477"]),
                        st.integers(-1, 10**16), st.text(max_size=16), st.none()),
    "reference": st.one_of(st.text(max_size=40), st.sampled_from(["r1", "r2"]), st.integers()),
    "tariff": st.one_of(st.integers(-2, 12), st.text(max_size=2)),
    "callback_url": JSON, "x": JSON})
HLR_BODIES = st.one_of(JSON, HLR_ITEM, st.lists(HLR_ITEM, max_size=4))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]), path=HLR_PATHS,
       body=st.one_of(st.none(), HLR_BODIES))
def test_random_hlr_requests_answer_a_200_body_with_an_error_code(
    emu: Emulator, method: str, path: str, body: Any
) -> None:
    resp = requests.request(method, f"{emu.url}/rest/hlr/{path}", json=body, timeout=5,
                            headers={"X-API-KEY": "k"})
    assert resp.status_code == 200, (method, path, body, resp.text)
    answer = resp.json()
    assert isinstance(answer, dict) and ("error" in answer or "result" in answer)
    for item in answer.get("result", [answer]):
        assert isinstance(item["error"], str) and item["error"].isdigit()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.from_regex(r"[A-Z]{3,9}", fullmatch=True), endpoint=st.sampled_from(ENDPOINTS))
def test_any_method_on_any_api_path_gets_json(
    emu: Emulator, session: requests.Session, method: str, endpoint: tuple[str, str]
) -> None:
    resp = session.request(method, emu.url + endpoint[1], timeout=5)
    assert resp.status_code < 500, (method, endpoint, resp.text)
    if resp.status_code == 405:
        assert resp.headers["Allow"] and resp.json() == {"message": "Method Not Allowed"}
    elif method != "HEAD" and resp.status_code != 204:
        assert isinstance(resp.json(), dict)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(framing=st.lists(st.one_of(st.binary(max_size=12), st.sampled_from(
    [b"\r\n", b"0\r\n\r\n", b"5\r\n", b"ffff\r\n", b";x=1", b'{"api_key":"live_z"}'])),
    max_size=6))
def test_any_chunked_framing_gets_an_http_answer(emu: Emulator, framing: list[bytes]) -> None:
    host, port = emu.url.removeprefix("http://").split(":")
    head = (b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head + b"".join(framing))
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.1 ") else b""
    assert status in (b"200", b"400", b"413", b"422"), answer[:200]


HOOK_SPECS = st.one_of(JSON, st.dictionaries(
    st.sampled_from(["next", "edit_before_put", "edit_before_get", "edit_after_get",
                     "wrong_id_answers", "nope"]),
    st.one_of(JSON, st.dictionaries(
        st.sampled_from(["id", "fields", "groups_add", "groups_remove", "phone", "nth"]),
        st.one_of(JSON, st.integers(-1, 248400002), st.lists(st.integers(-1, 1864619))),
        max_size=4)), max_size=3))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=HOOK_SPECS)
def test_any_hook_request_is_queued_or_refused(
    emu: Emulator, session: requests.Session, spec: Any
) -> None:
    resp = requests.post(f"{emu.url}/_emulator/faults", json=spec, timeout=5)
    assert resp.status_code in (200, 400), (spec, resp.text)
    emu.faults.clear()
    put = session.put(f"{emu.url}/api/contacts/248400001", json={"phone": 447700900123},
                      timeout=5)
    assert put.status_code < 500


def test_a_deeply_nested_hook_request_is_a_400(emu: Emulator) -> None:
    resp = requests.post(f"{emu.url}/_emulator/faults", data=b"[" * 100_000, timeout=5)
    assert resp.status_code == 400
