"""Fuzzing the emulator's request validation: random queries and bodies never give a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bsg_sync.emulator import Emulator, EmulatorConfig

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
def emu() -> Iterator[Emulator]:
    seed = {"fields": [{"id": 387714, "name": "City", "type": "number"}],
            "groups": [{"id": 1864618, "name": "News"}],
            "contacts": [{"id": 248400001, "phone": 447700900123, "groups": [1864618]}]}
    with Emulator(EmulatorConfig(dup_limit=10_000), seed=seed) as emulator:
        yield emulator


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
