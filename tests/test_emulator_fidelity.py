"""The emulator against BSG's own artefacts: its OpenAPI file and its official Python SDK."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import bsg_api
import pytest
import requests
import yaml
from bsg_api.models import ContactUpdateRequest, LoginRequest
from kit import Emulators
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from bsg_sync.emulator import Emulator

DATA = Path(__file__).parent / "data"
SPEC = DATA / "emulator_bsg-one-api-openapi.yaml"
C1, CITY, NEWS, VIP = 248400001, 387714, 1864618, 1864619
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")

# Where BSG's reference (/work/shared/reference/bsg-one-api.md) says the OpenAPI file is wrong,
# the emulator follows the reference. Each deviation is named here with its justification and
# a function that rewrites a response into what the spec claims, so the REST is still validated.
DEVIATIONS: dict[str, str] = {
    "fields-object": "§3 table and §11 #1: contact `fields` is an object keyed by id, or []",
    "timestamps": "§0 Timestamps: `Y-m-d H:i:s`, not ISO-8601 date-time as the spec types it",
    "empty-204": "§3.6, §3.7, §5.4, §11 #22: 204 has no body although the spec names a schema",
    "undocumented-status": "§8.1: 400/401/403/404/422/429 bodies the spec does not list "
                           "for an operation are checked against the §8.1 table instead",
}


def _spec_loader() -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        """The spec has a bare `=` enum value (YAML's `value` tag): read it as the string."""

    def as_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
        assert isinstance(node, yaml.ScalarNode)
        return str(loader.construct_scalar(node))

    Loader.add_constructor("tag:yaml.org,2002:value", as_string)
    return Loader


@pytest.fixture(scope="module")
def emu(module_emulator: Emulators) -> Emulator:
    return module_emulator(DATA / "emulator_seed.json")


@pytest.fixture(scope="module")
def spec(emu: Emulator) -> OpenAPI:
    document = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=_spec_loader())
    document["servers"] = [{"url": emu.url}]
    # the file's non-contact parts carry PCRE patterns the validator rejects; skip spec checks
    return OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))


def _to_spec_shape(value: Any) -> Any:
    """Apply the named deviations in reverse: what the spec would have said."""
    if isinstance(value, dict):
        out = {k: _to_spec_shape(v) for k, v in value.items()}
        if isinstance(value.get("fields"), dict) and "phone" in value:  # fields-object
            out["fields"] = [{k: v} for k, v in value["fields"].items()]
        return out
    if isinstance(value, list):
        return [_to_spec_shape(v) for v in value]
    if isinstance(value, str) and STAMP.match(value):  # timestamps
        return value.replace(" ", "T") + "Z"
    return value


class _Rewritten(RequestsOpenAPIResponse):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(response)
        self._data = json.dumps(_to_spec_shape(response.json())).encode()

    @property
    def data(self) -> bytes:
        return self._data


SECTION_8_1 = {400: {"message"}, 401: {"code", "message"}, 403: {"message", "errors"},
               404: {"message"}, 422: {"message", "errors"}, 429: {"message"}}


def _documented(spec: OpenAPI, resp: requests.Response) -> bool:
    path = re.sub(r"/\d+$", "/{id}", resp.request.path_url.split("?")[0])
    operation = spec.spec / "paths" / path / str(resp.request.method).lower()
    with (operation / "responses").open() as responses:
        return str(resp.status_code) in responses


def check(spec: OpenAPI, resp: requests.Response) -> None:
    """Validate one emulator response against the spec, modulo the named DEVIATIONS."""
    if resp.status_code == 204:  # empty-204
        assert resp.content == b""
        return
    if not _documented(spec, resp):  # undocumented-status
        assert set(resp.json()) == SECTION_8_1[resp.status_code], resp.text
        return
    spec.validate_response(RequestsOpenAPIRequest(resp.request), _Rewritten(resp))


def test_every_deviation_is_justified_by_the_reference() -> None:
    reference = Path("/work/shared/reference/bsg-one-api.md")
    assert all(re.search(r"§\d", why) for why in DEVIATIONS.values())
    if reference.exists():
        text = reference.read_text(encoding="utf-8")
        assert "an empty array `[]`" in text and "`Y-m-d H:i:s`" in text


CALLS: list[tuple[str, str, Any]] = [
    ("POST", "/api/auth/refresh", None),
    ("GET", "/api/contacts?page[limit]=15", None),
    ("GET", f"/api/contacts?groups[]={NEWS}", None),
    ("GET", f"/api/contacts/{C1}", None),
    ("GET", "/api/contacts/1", None),
    ("GET", "/api/contacts/search?search[field]=phone&search[value]=447700900123", None),
    ("GET", "/api/contacts/search", None),
    ("POST", "/api/contacts", {"phone": 61401629754, "groups": [NEWS],
                               "fields": [{"id": CITY, "value": "Perth"}]}),
    ("POST", "/api/contacts", {"phone": 61401629754}),
    ("PUT", f"/api/contacts/{C1}", {"phone": 447700900123, "fields": [{"id": CITY, "value": "x"}]}),
    ("PUT", "/api/contacts/1", {"phone": 447700900123}),
    ("GET", "/api/groups", None),
    ("GET", "/api/groups/search?search[field]=name&search[value]=VIP", None),
    ("POST", "/api/groups", {"name": "Fidelity list", "description": "d", "default": False}),
    ("POST", "/api/groups", {"name": "Fidelity list"}),
    ("GET", f"/api/groups/{NEWS}", None),
    ("PUT", f"/api/groups/{VIP}", {"name": "VIP 2"}),
    ("POST", "/api/groups/attach", {"contacts": [C1], "groups": [VIP]}),
    ("POST", "/api/groups/detach", {"contacts": [C1], "groups": [VIP]}),
    ("GET", "/api/contacts/fields", None),
    ("POST", "/api/contacts/fields", {"name": "Fidelity", "type": "text", "description": "d"}),
    ("PATCH", f"/api/contacts/fields/{CITY}", {"name": "Town"}),
    ("GET", "/api/contacts?page[limit]=5", None),
    ("GET", "/api/contacts", "no-token"),
    ("POST", "/api/contacts/delete?contact_ids[]=248400003", None),
    ("DELETE", "/api/contacts/248400002", None),
]


def test_responses_match_the_openapi_spec(emu: Emulator, spec: OpenAPI) -> None:
    session = requests.Session()
    login = session.post(f"{emu.url}/api/auth/login", json={"api_key": "live_x"}, timeout=5)
    check(spec, login)
    session.headers["Authorization"] = f"Bearer {login.json()['bearer']}"
    for method, path, body in CALLS:
        headers = {"Authorization": ""} if body == "no-token" else {}
        payload = None if body == "no-token" else body
        resp = session.request(method, emu.url + path, json=payload, headers=headers, timeout=5)
        assert resp.status_code < 500
        check(spec, resp)


def test_validator_rejects_a_wrong_shape(emu: Emulator, spec: OpenAPI) -> None:
    session = requests.Session()
    token = session.post(f"{emu.url}/api/auth/login", json={"api_key": "live_x"}, timeout=5)
    resp = requests.get(f"{emu.url}/api/groups", timeout=5,
                        headers={"Authorization": f"Bearer {token.json()['bearer']}"})
    resp._content = b'{"data": [{"id": "not an int"}], "total": 1}'
    with pytest.raises(Exception, match=r"InvalidData|not valid"):
        check(spec, resp)


def _sdk(emu: Emulator) -> tuple[bsg_api.ApiClient, bsg_api.Configuration]:
    config = bsg_api.Configuration(host=emu.url)
    client = bsg_api.ApiClient(config)
    config.access_token = bsg_api.AuthApi(client).login(LoginRequest(api_key="live_sdk")).bearer
    return client, config


def test_official_sdk_logs_in_reads_and_updates(emu: Emulator) -> None:
    # The SDK's ContactSchema types `fields` as a list, so its models cannot parse BSG's real
    # object-shaped `fields` (reference §10/§11 #1); we use its raw-response calls instead.
    client, _ = _sdk(emu)
    contacts = bsg_api.ContactApi(client)
    read = contacts.contact_without_preload_content(C1)
    assert read.status == 200 and json.loads(read.data)["data"]["id"] == C1
    update = ContactUpdateRequest.from_dict({
        "phone": 447700900123, "fields": [{"id": CITY, "value": "SDK city"}],
        "groups": [{"id": NEWS, "name": "Newsletter"}]})
    assert update is not None
    sent = contacts.contact_update_without_preload_content(C1, update)
    data = json.loads(sent.data)["data"]
    assert sent.status == 200 and data["fields"][str(CITY)] == "SDK city"
    assert NEWS in [g["id"] for g in data["groups"]]
    listed = bsg_api.ContactFieldApi(client).contact_fields()
    assert CITY in [f.id for f in listed.data or []]


# ---------------------------------------------------------------- documented error cases
# Cases a schema-based fuzzer and BSG's SDK found where the emulator differed from the
# reference (/work/shared/reference/bsg-one-api.md); each cites the section it follows.
INVALID = "The given data was invalid."
MISSING = {"message": INVALID, "errors": {"any_field": ["This field is missing."]}}
UNEXPECTED = {"message": INVALID, "errors": {"any_field": ["This field was not expected."]}}
BAD_CHOICE = {"message": INVALID,
              "errors": {"any_field": ["The value you selected is not a valid choice."]}}


@pytest.fixture
def fresh(emulator: Emulators) -> Emulator:
    return emulator(DATA / "emulator_seed.json", dup_limit=2, dup_window=30)


def _session(emu: Emulator) -> requests.Session:
    s = requests.Session()
    token = s.post(f"{emu.url}/api/auth/login", json={"api_key": "live_f"}, timeout=5)
    s.headers["Authorization"] = f"Bearer {token.json()['bearer']}"
    return s


@pytest.mark.parametrize(("method", "path", "body", "expected"), [
    ("POST", "/api/auth/login", {}, MISSING),  # §1.2
    ("POST", "/api/auth/login", {"api_key": "live_1", "x": 1}, UNEXPECTED),
    ("POST", "/api/contacts", {"groups": []}, MISSING),  # §3.4: missing `phone`
    ("POST", "/api/contacts", {"phone": 447700900125, "name": "x"}, UNEXPECTED),
    ("PUT", f"/api/contacts/{C1}", {"fields": []}, MISSING),  # §3.5: same rules
    ("PUT", f"/api/contacts/{C1}", {"phone": 447700900123, "hlr_status": "x"}, UNEXPECTED),
    ("POST", "/api/contacts", {"phone": 447700900125, "fields": [{"id": CITY}]}, MISSING),
    ("POST", "/api/contacts", {"phone": 447700900125,
                               "fields": [{"id": CITY, "value": "x", "v": 1}]}, UNEXPECTED),
    ("POST", "/api/groups", {"description": "d"}, MISSING),
    ("PUT", f"/api/groups/{NEWS}", {"name": "News", "items": 3}, UNEXPECTED),
    ("POST", "/api/groups/attach", {"contacts": [C1]}, MISSING),
    ("POST", "/api/groups/detach", {"contacts": [C1], "groups": [NEWS], "x": 1}, UNEXPECTED),
    ("POST", "/api/contacts/fields", {"name": "Town"}, MISSING),
    ("PATCH", f"/api/contacts/fields/{CITY}", {}, MISSING),
    ("PATCH", f"/api/contacts/fields/{CITY}", {"type": "text"}, UNEXPECTED),
    ("POST", "/api/contacts/fields/delete", {}, MISSING),
    ("POST", "/api/auth/refresh", {"x": 1}, UNEXPECTED),
])
def test_missing_or_unexpected_body_keys_are_any_field(
    fresh: Emulator, method: str, path: str, body: Any, expected: dict[str, Any]
) -> None:
    resp = _session(fresh).request(method, fresh.url + path, json=body, timeout=5)
    assert (resp.status_code, resp.json()) == (422, expected)


def test_query_keys_keep_their_flattened_names(fresh: Emulator) -> None:
    # §3.1: the unexpected *query* key is named (`per`), unlike body keys
    resp = _session(fresh).get(f"{fresh.url}/api/contacts?per[offset]=1", timeout=5)
    assert resp.json() == {"message": INVALID,
                           "errors": {"per": ["This field was not expected."]}}


def test_duplicate_throttle_covers_posts_and_contact_puts_only(fresh: Emulator) -> None:
    # §8.4: all POST except login, and PUT /api/contacts/{id}; dup_limit=2 here
    s = _session(fresh)

    def codes(method: str, path: str, body: Any = None, times: int = 3) -> list[int]:
        return [s.request(method, fresh.url + path, json=body, timeout=5).status_code
                for _ in range(times)]

    assert codes("PUT", f"/api/contacts/{C1}", {"phone": 447700900123}) == [200, 200, 429]
    attach = {"contacts": [C1], "groups": [VIP]}
    assert codes("POST", "/api/groups/attach", attach) == [200, 200, 429]
    assert codes("PUT", f"/api/groups/{VIP}", {"name": "VIP 2"}) == [200, 200, 200]
    assert codes("PATCH", f"/api/contacts/fields/{CITY}", {"name": "Town"}) == [200, 200, 200]
    assert codes("DELETE", "/api/contacts/248400003") == [204, 422, 422]
    assert codes("DELETE", "/api/groups/1864619") == [204, 422, 422]


@pytest.mark.parametrize("offset", ["1000000000", "99999999999999999999999", "0"])
def test_page_offset_accepts_any_non_negative_integer(fresh: Emulator, offset: str) -> None:
    s = _session(fresh)
    for path in ("/api/contacts", "/api/groups", "/api/contacts/search", "/api/groups/search"):
        resp = s.get(f"{fresh.url}{path}?page[offset]={offset}", timeout=5)
        assert resp.status_code == 200, (path, resp.text)
        assert (resp.json()["data"] == []) == (offset != "0")


def test_huge_page_limit_is_out_of_range_not_a_bad_number(fresh: Emulator) -> None:
    resp = _session(fresh).get(f"{fresh.url}/api/contacts?page[limit]=10000000000", timeout=5)
    assert resp.json() == {"message": INVALID,
                           "errors": {"pagelimit": ["This value should be between 15 and 500."]}}


@pytest.mark.parametrize("query", ["sort=", "way=", "sort=&way=asc", "sort=id&way=", "sort=nope"])
def test_empty_sort_or_way_is_a_bad_choice(fresh: Emulator, query: str) -> None:
    s = _session(fresh)
    for path in ("/api/contacts/search", "/api/groups/search"):
        resp = s.get(f"{fresh.url}{path}?{query}", timeout=5)
        assert (resp.status_code, resp.json()) == (422, BAD_CHOICE), path


def _raw(emu: Emulator, request: bytes, *, half_close: bool = False) -> bytes:
    host, port = emu.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


@pytest.mark.parametrize(("chunks", "half_close"), [
    (b"zz\r\n{}\r\n0\r\n\r\n", False),  # size not hex
    (b"-5\r\nhello\r\n0\r\n\r\n", False),  # negative size
    (b"2\r\n{}XX0\r\n\r\n", False),  # no CRLF after the chunk data
    (b"20\r\n{\"api_key\"", True),  # the client stops in the middle of a chunk
    (b"fffffffffffffffffff\r\n{}\r\n0\r\n\r\n", False),  # absurd size
])
def test_malformed_chunked_body_is_a_400(
    fresh: Emulator, capfd: pytest.CaptureFixture[str], chunks: bytes, half_close: bool
) -> None:
    head = (b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    answer = _raw(fresh, head + chunks, half_close=half_close)
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 400 Bad Request", answer[:200]
    assert b"Connection: close" in rest
    assert rest.split(b"\r\n\r\n", 1)[1] == b'{"message": "Could not decode request body."}'
    assert "Traceback" not in capfd.readouterr().err


def test_well_formed_chunked_body_is_read(fresh: Emulator) -> None:
    head = (b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    body = b'{"api_key": "live_chunk"}'
    answer = _raw(fresh, head + b"5;ext=1\r\n" + body[:5] + b"\r\n"
                  + f"{len(body) - 5:x}".encode() + b"\r\n" + body[5:] + b"\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK") and b'"bearer"' in answer


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/api/contacts", "GET, HEAD, POST"),
    ("PATCH", f"/api/groups/{NEWS}", "DELETE, GET, HEAD, PUT"),
    ("GET", "/api/auth/login", "POST"),
    ("PUT", "/api/contacts/fields/delete", "POST"),
    ("OPTIONS", f"/api/contacts/{C1}", "DELETE, GET, HEAD, PUT"),
    ("TRACE", "/api/contacts", "GET, HEAD, POST"),
    ("PROPFIND", "/api/groups", "GET, HEAD, POST"),
])
def test_405_is_json_and_carries_allow(fresh: Emulator, method: str, path: str, allow: str
                                       ) -> None:
    resp = _session(fresh).request(method, fresh.url + path, timeout=5)
    assert (resp.status_code, resp.headers.get("Allow")) == (405, allow)
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"message": "Method Not Allowed"}


def test_trace_on_an_unknown_path_is_the_json_404(fresh: Emulator) -> None:
    resp = requests.request("TRACE", f"{fresh.url}/api/nothing", timeout=5)
    assert (resp.status_code, resp.json()) == (404, {"message": "Not Found"})


def test_head_answers_like_get_without_a_body(fresh: Emulator) -> None:
    s = _session(fresh)
    head = s.head(f"{fresh.url}/api/contacts/{C1}", timeout=5)
    get = s.get(f"{fresh.url}/api/contacts/{C1}", timeout=5)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == get.headers["Content-Length"]


@pytest.mark.parametrize(("length", "sent", "status", "message"), [
    ("100000000000", b"{}", b"413", "Request Entity Too Large"),  # never allocated
    ("50", b'{"api_key": "live_1"}', b"400", "Could not decode request body."),  # cut short
    ("abc", b"{}", b"400", "Could not decode request body."),
    ("-1", b"{}", b"400", "Could not decode request body."),
])
def test_a_bad_content_length_gets_an_answer(
    fresh: Emulator, capfd: pytest.CaptureFixture[str], length: str, sent: bytes, status: bytes,
    message: str,
) -> None:
    head = f"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
    answer = _raw(fresh, head.encode() + sent, half_close=True)
    assert answer.split(b" ", 2)[1] == status, answer[:200]
    assert b"Connection: close" in answer
    assert answer.split(b"\r\n\r\n", 1)[1] == f'{{"message": "{message}"}}'.encode()
    assert "Traceback" not in capfd.readouterr().err
