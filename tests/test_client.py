"""Tests for bsg_sync.client: wire shapes, error flattening, and HTTP against the real emulator."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bsg_sync.cli import cli
from bsg_sync.client import (
    ApiError,
    AuthFailed,
    BsgClient,
    ModeForbidden,
    NotFound,
    RetryPolicy,
    ServerError,
    TransportError,
    ValidationFailed,
    _DuplicateGuard,
    _retry_after,
    check_base_url,
    contact_body,
    error_for,
    flatten_error,
    parse_contact,
)
from bsg_sync.errors import AuthError
from bsg_sync.models import Contact

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


def test_contact_body_sorts_and_types() -> None:
    contact = Contact(id=1, phone="447700900123", fields={9: "b", 3: "a"},
                      groups=frozenset({20, 10}))
    assert contact_body(contact) == {
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
                                           kind: type[ApiError], code: str) -> None:
    exc = error_for(status, {"message": message, "errors": []}, 2)
    assert type(exc) is kind
    assert (exc.code, exc.status, exc.attempts, exc.message) == (code, status, 2, message)


def test_auth_failed_is_a_run_refusal_with_exit_3() -> None:
    assert isinstance(AuthFailed("x"), AuthError)
    assert int(AuthFailed("x").exit_code) == 3


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
