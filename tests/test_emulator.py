"""The BSG One-API emulator: endpoints, BSG's errors, auth, switches and faults, over real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from kit import Emulators

from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator, EmulatorConfig, SeedError

DATA = Path(__file__).parent / "data"
SEED = DATA / "emulator_seed.json"
C1, C2, C3 = 248400001, 248400002, 248400003
CITY, AGE = 387714, 387715
NEWS, VIP = 1864618, 1864619
TIMEOUT = 5


def login(emu: Emulator, key: str = "live_abc") -> requests.Session:
    session = requests.Session()
    resp = session.post(f"{emu.url}/api/auth/login", json={"api_key": key}, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    session.headers["Authorization"] = f"Bearer {resp.json()['bearer']}"
    return session


def call(s: requests.Session, emu: Emulator, method: str, path: str, body: Any = None
         ) -> requests.Response:
    return s.request(method, emu.url + path, json=body, timeout=TIMEOUT)


@pytest.fixture
def emu(emulator: Emulators) -> Emulator:
    return emulator(SEED)


@pytest.fixture
def api(emu: Emulator) -> requests.Session:
    return login(emu)


# ---------------------------------------------------------------- auth
def test_login_gives_a_jwt_looking_bearer_and_refresh_gives_a_new_one(emu: Emulator) -> None:
    s = login(emu)
    old = s.headers["Authorization"]
    assert str(old).count(".") == 2
    resp = call(s, emu, "POST", "/api/auth/refresh")
    assert resp.status_code == 200 and resp.json()["bearer"] != old.split()[1]


@pytest.mark.parametrize(("raw", "status", "body"), [
    (b"", 400, {"message": "Request body is empty."}),
    (b"{nope", 400, {"message": "Could not decode request body."}),
    (b'{"api_key": "nope_1"}', 422,
     {"message": "An internal error occurred", "errors": {"text": "API Key not found"}}),
    (b"{}", 422, {"message": "The given data was invalid.",
                  "errors": {"any_field": ["This field is missing."]}}),
    (b'{"api_key": "live_1", "x": 1}', 422, {"message": "The given data was invalid.",
                                            "errors": {"any_field": ["This field was not expected."]}}),
])
def test_login_errors(emu: Emulator, raw: bytes, status: int, body: dict[str, Any]) -> None:
    resp = requests.post(f"{emu.url}/api/auth/login", data=raw, timeout=TIMEOUT,
                         headers={"Content-Type": "application/json"})
    assert (resp.status_code, resp.json()) == (status, body)


def test_configured_api_key_is_the_only_one_accepted() -> None:
    with Emulator(EmulatorConfig(api_key="secret_1")) as emu:
        bad = requests.post(f"{emu.url}/api/auth/login", json={"api_key": "live_x"}, timeout=5)
        assert bad.status_code == 422
        login(emu, "secret_1")


@pytest.mark.parametrize(("header", "message"), [
    (None, "JWT Token not found"),
    ("Bearer", "JWT Token not found"),
    ("Bearer abc.def.ghi", "Invalid JWT Token"),
    ("Bearer garbage", "Invalid JWT Token"),
])
def test_bearer_errors_are_401_with_bsg_messages(
    emu: Emulator, header: str | None, message: str
) -> None:
    headers = {"Authorization": header} if header else {}
    resp = requests.get(f"{emu.url}/api/contacts", headers=headers, timeout=TIMEOUT)
    assert (resp.status_code, resp.json()) == (401, {"code": 401, "message": message})


def test_token_ttl_expires_tokens() -> None:
    with Emulator(EmulatorConfig(token_ttl=0.2)) as emu:
        s = login(emu)
        assert call(s, emu, "GET", "/api/contacts").status_code == 200
        time.sleep(0.25)
        resp = call(s, emu, "GET", "/api/contacts")
        expired = {"code": 401, "message": "Expired JWT Token"}
        assert (resp.status_code, resp.json()) == (401, expired)


# ---------------------------------------------------------------- contacts
def test_get_contact_has_bsg_shape(emu: Emulator, api: requests.Session) -> None:
    data = call(api, emu, "GET", f"/api/contacts/{C1}").json()["data"]
    assert data == {
        "id": C1, "phone": 447700900123, "fields": {str(CITY): "London", str(AGE): "40"},
        "groups": [{"id": NEWS, "name": "Newsletter", "description": None, "default": False,
                    "created_at": "2025-02-19 14:50:21", "items": 1, "stop_list_count": 0}],
        "hlr_status": "active", "hlr_last_check": "2025-03-01 10:00:00",
        "created_at": "2025-03-01 09:15:00",
    }
    empty = call(api, emu, "GET", f"/api/contacts/{C2}").json()["data"]
    assert empty["fields"] == [] and empty["hlr_last_check"] is None
    assert empty["hlr_status"] == "unknown"


def test_list_contacts_pages_and_filters_by_group(emu: Emulator, api: requests.Session) -> None:
    for i in range(30):
        made = call(api, emu, "POST", "/api/contacts", {"phone": 491510000000 + i})
        assert made.status_code == 201
    page = call(api, emu, "GET", "/api/contacts").json()
    assert (len(page["data"]), page["total"]) == (20, 33)
    last = call(api, emu, "GET", "/api/contacts?page[limit]=15&page[offset]=30").json()
    assert [c["id"] for c in last["data"]] == [C1 + 30, C1 + 31, C1 + 32]
    news = call(api, emu, "GET", f"/api/contacts?groups[]={NEWS}&groups[]={VIP}").json()
    assert [c["id"] for c in news["data"]] == [C1, C2] and news["total"] == 2


def test_search_contacts_by_phone_and_field(emu: Emulator, api: requests.Session) -> None:
    resp = call(api, emu, "GET", "/api/contacts/search?search[field]=phone"
                "&search[operator]==&search[value]=447700900124").json()
    assert [c["id"] for c in resp["data"]] == [C2]
    assert resp["meta"] == {"page": {"total": 1, "limit": 50, "offset": 0},
                            "search": {"field": "phone", "operator": "=", "value": "447700900124"}}
    like = call(api, emu, "GET", f"/api/contacts/search?search[field]={CITY}"
                "&search[operator]=like&search[value]=par").json()
    assert [c["id"] for c in like["data"]] == [C3]
    multi = call(api, emu, "GET", "/api/contacts/search?search_fields[0][field]=id"
                 f"&search_fields[0][operator]=>&search_fields[0][value]={C1}"
                 f"&search_fields[1][field]=group_id&search_fields[1][value]={VIP}"
                 "&sort=phone&way=desc").json()
    assert [c["id"] for c in multi["data"]] == [C2]


def test_create_contact_accepts_group_ids_or_objects(emu: Emulator, api: requests.Session) -> None:
    resp = call(api, emu, "POST", "/api/contacts", {
        "phone": 61401629754, "groups": [NEWS, {"id": VIP}],
        "fields": [{"id": CITY, "value": "Perth"}]})
    assert resp.status_code == 201
    data = resp.json()["data"]
    assert data["fields"] == {str(CITY): "Perth"}
    assert [g["id"] for g in data["groups"]] == [NEWS, VIP] and data["hlr_status"] == "unknown"
    assert emu.stats()["contacts"] == 4


def test_put_merges_by_default(emu: Emulator, api: requests.Session) -> None:
    resp = call(api, emu, "PUT", f"/api/contacts/{C1}", {
        "phone": 447700900123, "groups": [VIP], "fields": [{"id": CITY, "value": "Leeds"}]})
    data = resp.json()["data"]
    assert data["fields"] == {str(CITY): "Leeds", str(AGE): "40"}
    assert [g["id"] for g in data["groups"]] == [NEWS, VIP]


def test_put_replace_semantics_sets_exactly_what_was_sent() -> None:
    with Emulator(EmulatorConfig(put_semantics="replace"), seed=SEED) as emu:
        s = login(emu)
        data = call(s, emu, "PUT", f"/api/contacts/{C1}", {
            "phone": 447700900999, "groups": [VIP], "fields": [{"id": CITY, "value": "Leeds"}],
        }).json()["data"]
        assert (data["phone"], data["fields"]) == (447700900999, {str(CITY): "Leeds"})
        assert [g["id"] for g in data["groups"]] == [VIP]
        bare = call(s, emu, "PUT", f"/api/contacts/{C1}", {"phone": 447700900999}).json()["data"]
        assert (bare["fields"], bare["groups"]) == ([], [])


def test_empty_value_clears_a_field(emu: Emulator, api: requests.Session) -> None:
    data = call(api, emu, "PUT", f"/api/contacts/{C1}", {
        "phone": 447700900123, "fields": [{"id": AGE, "value": ""}]}).json()["data"]
    assert data["fields"] == {str(CITY): "London"}


def test_delete_and_bulk_delete(emu: Emulator, api: requests.Session) -> None:
    resp = call(api, emu, "DELETE", f"/api/contacts/{C3}")
    assert (resp.status_code, resp.content) == (204, b"")
    assert call(api, emu, "GET", f"/api/contacts/{C3}").status_code == 422
    resp = call(api, emu, "POST", f"/api/contacts/delete?group_ids[]={NEWS}")
    assert resp.status_code == 204
    assert [c["id"] for c in emu.contacts()] == [C2]


INVALID = "The given data was invalid."


def _v(key: str, msg: str) -> dict[str, Any]:
    return {"message": INVALID, "errors": {key: [msg]}}


def _b(msg: str) -> dict[str, Any]:
    return {"message": msg, "errors": []}


@pytest.mark.parametrize(("method", "path", "body", "status", "expected"), [
    ("GET", "/api/contacts/1", None, 422, _b("Invalid contact id")),
    ("PUT", "/api/contacts/1", {"phone": 447700900123}, 422, _b("Invalid contact id")),
    ("DELETE", "/api/contacts/1", None, 422, _b("Invalid contact id")),
    ("POST", "/api/contacts", {"phone": 447700900123}, 422,
     _b("Phone number is already exist in contact book")),
    ("PUT", f"/api/contacts/{C2}", {"phone": 447700900123}, 422,
     _b("Phone number is already exist in contact book")),
    ("POST", "/api/contacts", {"phone": 12345}, 422, _b("Invalid phone number format")),
    ("POST", "/api/contacts", {"phone": "447700900125"}, 422, _b("Invalid phone number format")),
    ("POST", "/api/contacts", {"phone": 4477009001234567}, 422,
     _v("phone", "This value is too long. It should have 15 characters or less.")),
    ("POST", "/api/contacts", {"phone": 447700900125, "groups": [5]}, 422,
     _b("Invalid contact list exception")),
    ("POST", "/api/contacts", {"phone": 447700900125, "fields": [{"id": 9, "value": "x"}]}, 422,
     _b("Contact field input is invalid")),
    ("POST", "/api/contacts", {"groups": []}, 422, _v("any_field", "This field is missing.")),
    ("POST", "/api/contacts", {"phone": 447700900125, "name": "x"}, 422,
     _v("any_field", "This field was not expected.")),
    ("POST", "/api/contacts", {"phone": 447700900125, "groups": ["a"]}, 422,
     _v("groups0", "This value should be of type integer.")),
    ("POST", "/api/contacts", None, 400, {"message": "Request body is empty."}),
    ("GET", "/api/contacts?per[offset]=1", None, 422, _v("per", "This field was not expected.")),
    ("GET", "/api/contacts?page[limit]=501", None, 422,
     _v("pagelimit", "This value should be between 15 and 500.")),
    ("GET", "/api/contacts?page[limit]=x", None, 422,
     _v("pagelimit", "This value should be a valid number.")),
    ("GET", "/api/contacts?groups[]=77", None, 422, _b("Invalid contact list exception")),
    ("GET", "/api/contacts/search?search[field]=phone&search[value]=123", None, 422,
     {"message": "Unknown error",
      "errors": {"search.value": ["The search.value must be between 9 and 15 digits"]}}),
    ("GET", "/api/contacts/search?search[field]=created_at&search[value]=soon", None, 422,
     _v("searchvalue", "This value is not a valid date.")),
    ("GET", "/api/contacts/search?search[field]=nick&search[value]=x", None, 422,
     _v("any_field", "The value you selected is not a valid choice.")),
    ("GET", "/api/contacts/search?search[field]=id&search[value]=x", None, 422,
     {"message": "Unknown error",
      "errors": {"search.value": ["The search.value must be an integer"]}}),
    ("POST", "/api/contacts/delete?contact_ids[]=", None, 422,
     _v("contact_ids", "This collection should contain 1 element or more.")),
    ("GET", "/api/groups/5", None, 422, _b("Contact group is not found")),
    ("POST", "/api/groups", {"name": "Newsletter"}, 422, _b("Contact group is already exists")),
    ("POST", "/api/groups", {"name": "ab"}, 422,
     _v("name", "This value is too short. It should have 3 characters or more.")),
    ("PUT", f"/api/groups/{NEWS}", {"name": "News", "default": 1}, 422,
     _v("default", "This value should be of type boolean.")),
    ("POST", "/api/groups/attach", {"contacts": [], "groups": [NEWS]}, 422,
     _v("contacts", "This collection should contain 1 element or more.")),
    ("POST", "/api/groups/attach", {"contacts": [C1], "groups": [0]}, 422,
     _v("groups0", "This value should be greater than 0.")),
    ("PATCH", "/api/contacts/fields/5", {"name": "x"}, 422, _b("Field is not found")),
    ("POST", "/api/contacts/fields", {"name": "City", "type": "text"}, 422,
     {"message": "Unknown error",
      "errors": {"name": ['The field with name "City" already exists']}}),
    ("POST", "/api/contacts/fields", {"name": "x" * 21, "type": "text"}, 422,
     _v("name", "This value is too long. It should have 20 characters or less.")),
    ("POST", "/api/contacts/fields", {"name": "Town", "type": "dropdown"}, 422,
     {"message": INVALID, "any_field": ["The value you selected is not a valid choice."]}),
    ("GET", "/api/nothing", None, 404, {"message": "Not Found"}),
    ("GET", "/api/contacts/abc", None, 404, {"message": "Not Found"}),
])
def test_documented_errors(emu: Emulator, api: requests.Session, method: str, path: str,
                           body: Any, status: int, expected: dict[str, Any]) -> None:
    resp = call(api, emu, method, path, body)
    assert (resp.status_code, resp.json()) == (status, expected)


# ---------------------------------------------------------------- groups and fields
def test_groups_crud_attach_detach_and_search(emu: Emulator, api: requests.Session) -> None:
    made = call(api, emu, "POST", "/api/groups", {"name": "Import April", "description": "crm"})
    gid = made.json()["data"]["id"]
    assert made.status_code == 201 and made.json()["data"]["items"] == 0
    assert call(api, emu, "POST", "/api/groups/attach",
                {"contacts": [C2, C3], "groups": [gid]}).status_code == 200
    assert call(api, emu, "GET", f"/api/groups/{gid}").json()["data"]["items"] == 2
    found = call(api, emu, "GET", "/api/groups/search?search[field]=phone"
                 "&search[value]=447700900124&sort=name").json()
    assert [g["name"] for g in found["data"]] == ["Import April", "VIP"]
    assert "is_default" in found["data"][0] and "stop_list_count" not in found["data"][0]
    call(api, emu, "POST", "/api/groups/detach", {"contacts": [C3], "groups": [gid]})
    renamed = call(api, emu, "PUT", f"/api/groups/{gid}", {"name": "Import May"}).json()["data"]
    assert (renamed["name"], renamed["items"], renamed["description"]) == ("Import May", 1, "crm")
    assert call(api, emu, "DELETE", f"/api/groups/{gid}").status_code == 204
    assert call(api, emu, "GET", f"/api/contacts/{C2}").json()["data"]["groups"][0]["id"] == VIP
    assert call(api, emu, "GET", "/api/groups").json()["total"] == 2


def test_fields_crud(emu: Emulator, api: requests.Session) -> None:
    made = call(api, emu, "POST", "/api/contacts/fields", {"name": "Town", "type": "text"})
    fid = made.json()["data"]["id"]
    assert made.status_code == 201
    patched = call(api, emu, "PATCH", f"/api/contacts/fields/{fid}", {"is_visible": False})
    expected = {"id": fid, "name": "Town", "type": "text", "is_visible": False}
    assert patched.json()["data"] == expected
    twice = call(api, emu, "POST", "/api/contacts/fields/delete", {"ids": [CITY, CITY]})
    assert twice.status_code == 204 and len(call(api, emu, "GET", "/api/contacts/fields")
                                            .json()["data"]) == 3  # BSG's repeated-id quirk
    call(api, emu, "POST", "/api/contacts/fields/delete", {"ids": [CITY]})
    assert emu.contacts()[0]["fields"] == {str(AGE): "40"}
    for i in range(28):  # 2 left + 28 = the 30-field cap
        call(api, emu, "POST", "/api/contacts/fields", {"name": f"f{i}", "type": "number"})
    over = call(api, emu, "POST", "/api/contacts/fields", {"name": "one more", "type": "date"})
    assert over.json() == _b("Contact fields number is overlimited")


# ---------------------------------------------------------------- switches
def test_test_mode_rejects_unverified_numbers() -> None:
    cfg = EmulatorConfig(verified_phones=frozenset({447700900555}))
    with Emulator(cfg, seed=SEED) as emu:
        s = login(emu, "test_abc")
        denied = call(s, emu, "POST", "/api/contacts", {"phone": 447700900556})
        assert (denied.status_code, denied.json()) == (
            403, {"message": "This action is unauthorized for your mode", "errors": []})
        assert call(s, emu, "POST", "/api/contacts", {"phone": 447700900555}).status_code == 201
        same = call(s, emu, "PUT", f"/api/contacts/{C1}", {"phone": 447700900123})
        assert same.status_code == 200
        moved = call(s, emu, "PUT", f"/api/contacts/{C1}", {"phone": 447700900557})
        assert moved.status_code == 403
        live = login(emu, "live_abc")
        assert call(live, emu, "POST", "/api/contacts", {"phone": 447700900556}).status_code == 201
    with Emulator(EmulatorConfig(test_mode=True)) as emu:
        s = login(emu, "live_abc")
        assert call(s, emu, "POST", "/api/contacts", {"phone": 447700900556}).status_code == 403


def test_duplicate_writes_are_throttled_except_login() -> None:
    with Emulator(EmulatorConfig(dup_limit=2, dup_window=0.3), seed=SEED) as emu:
        s = login(emu)
        body = {"phone": 447700900123}
        codes = [call(s, emu, "PUT", f"/api/contacts/{C1}", body).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert call(s, emu, "PUT", f"/api/contacts/{C1}", body).json() == {
            "message": "Too many duplicate request detected"}
        assert call(s, emu, "GET", f"/api/contacts/{C1}").status_code == 200
        other = {"phone": 447700900123, "fields": []}
        assert call(s, emu, "PUT", f"/api/contacts/{C1}", other).status_code == 200
        for _ in range(4):
            login(emu)
        time.sleep(0.35)
        assert call(s, emu, "PUT", f"/api/contacts/{C1}", body).status_code == 200


def test_fail_and_throttle_rates() -> None:
    with Emulator(EmulatorConfig(fail_rate=1.0, random_seed=1)) as emu:
        codes = {requests.get(f"{emu.url}/api/contacts", timeout=5).status_code for _ in range(30)}
        assert codes == {500, 502, 503}
    with Emulator(EmulatorConfig(throttle_rate=1.0)) as emu:
        resp = requests.get(f"{emu.url}/api/contacts", timeout=5)
        assert (resp.status_code, resp.headers["Retry-After"]) == (429, "1")
    with Emulator(EmulatorConfig(fail_rate=0.5, random_seed=7)) as emu:
        seen = [requests.get(f"{emu.url}/api/contacts", timeout=5).status_code for _ in range(40)]
        assert 5 < sum(c >= 500 for c in seen) < 35 and 401 in seen


def test_drop_rate_closes_without_response() -> None:
    with Emulator(EmulatorConfig(drop_rate=1.0)) as emu, pytest.raises(
        requests.ConnectionError
    ):
        requests.get(f"{emu.url}/api/contacts", timeout=5)


def test_latency_applies_to_api_requests_only() -> None:
    with Emulator(EmulatorConfig(latency_ms=150)) as emu:
        start = time.monotonic()
        requests.get(f"{emu.url}/_emulator/stats", timeout=5)
        fast = time.monotonic() - start
        requests.get(f"{emu.url}/api/contacts", timeout=5)
        assert fast < 0.1 and time.monotonic() - start - fast >= 0.15


def test_scripted_faults_in_order(emu: Emulator, api: requests.Session) -> None:
    url = f"{emu.url}/api/contacts/{C1}"
    emu.inject("500", "502", "503", "429", "html", "truncated", "empty200", "huge")
    statuses = [api.get(url, timeout=TIMEOUT) for _ in range(8)]
    assert [r.status_code for r in statuses] == [500, 502, 503, 429, 502, 200, 200, 200]
    assert statuses[3].headers["Retry-After"] == "1"
    assert statuses[4].headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        statuses[5].json()
    assert statuses[6].content == b"" and len(statuses[7].content) >= 10 * 1024 * 1024
    assert api.get(url, timeout=TIMEOUT).json()["data"]["id"] == C1


def test_scripted_drop_and_timeout_over_http(emu: Emulator, api: requests.Session) -> None:
    resp = requests.post(f"{emu.url}/_emulator/faults", json={"next": ["drop", "timeout:0.5"]},
                         timeout=TIMEOUT)
    assert resp.json() == {"queued": 2}
    with pytest.raises(requests.ConnectionError):
        api.get(f"{emu.url}/api/contacts", timeout=TIMEOUT)
    with pytest.raises(requests.Timeout):
        api.get(f"{emu.url}/api/contacts", timeout=0.2)
    bad = requests.post(f"{emu.url}/_emulator/faults", json={"next": ["boom"]}, timeout=TIMEOUT)
    assert bad.status_code == 400
    with pytest.raises(ValueError, match="unknown fault"):
        emu.inject("timeout")


def test_stats_and_reset(emu: Emulator, api: requests.Session) -> None:
    call(api, emu, "GET", "/api/contacts")
    call(api, emu, "POST", "/api/contacts", {"phone": 447700900777})
    call(api, emu, "DELETE", f"/api/contacts/{C3}")
    call(api, emu, "POST", "/api/auth/refresh")
    expected = {"requests": {"GET": 1, "PUT": 0, "POST": 3, "DELETE": 1}, "writes": 2,
                "contacts": 3}
    assert emu.stats() == expected
    assert requests.get(f"{emu.url}/_emulator/stats", timeout=TIMEOUT).json() == expected
    assert requests.post(f"{emu.url}/_emulator/reset", timeout=TIMEOUT).status_code == 200
    assert emu.stats() == {"requests": {"GET": 0, "PUT": 0, "POST": 0, "DELETE": 0},
                           "writes": 0, "contacts": 3}
    assert [c["id"] for c in emu.contacts()] == [C1, C2, C3]


def test_csv_seed_makes_fields_and_lists() -> None:
    with Emulator(seed=DATA / "emulator_seed.csv") as emu:
        s = login(emu)
        fields = call(s, emu, "GET", "/api/contacts/fields").json()["data"]
        assert [f["name"] for f in fields] == ["City", "First name"]
        groups = call(s, emu, "GET", "/api/groups").json()["data"]
        assert {g["name"]: g["items"] for g in groups} == {"Newsletter": 2, "List 1864620": 1}
        first, second = emu.contacts()
        assert first["fields"] == {str(fields[0]["id"]): "London", str(fields[1]["id"]): "Jane"}
        assert second["id"] == C1 + 1 and second["fields"] == {str(fields[1]["id"]): "Bob"}


def test_bad_seed_is_a_seed_error(tmp_path: Path) -> None:
    with pytest.raises(SeedError):
        Emulator(seed={"contacts": [{"id": 1, "phone": 447700900123, "groups": [4]}]})
    bad = tmp_path / "s.csv"
    bad.write_text("id,name\n1,x\n")
    with pytest.raises(SeedError, match="phone"):
        Emulator(seed=bad)


def test_holds_64_concurrent_keep_alive_connections() -> None:
    with Emulator(EmulatorConfig(latency_ms=100), seed=SEED) as emu:
        token = login(emu).headers["Authorization"]

        def fetch(_: int) -> int:
            url = f"{emu.url}/api/contacts/{C1}"
            return requests.get(url, headers={"Authorization": token}, timeout=5).status_code

        start = time.monotonic()
        with ThreadPoolExecutor(64) as pool:
            codes = list(pool.map(fetch, range(64)))
        assert codes == [200] * 64 and time.monotonic() - start < 1.5


# ---------------------------------------------------------------- CLI
def test_cli_prints_url_first_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bsg_sync", "emulator", "--port", "0", "--seed", str(SEED),
         "--api-key", "live_cli", "--put-semantics", "replace", "--hlr-api-key", "v1key",
         "--hlr-balance", "2.5", "--hlr-delay", "0", "--attach-max-groups", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        token = requests.post(f"{url}/api/auth/login", json={"api_key": "live_cli"},
                              timeout=5).json()["bearer"]
        stats = requests.get(f"{url}/_emulator/stats", timeout=5).json()
        assert stats["contacts"] == 3 and token
        hlr = requests.get(f"{url}/rest/hlr/balance", headers={"X-API-KEY": "v1key"}, timeout=5)
        assert hlr.json() == {"error": "0", "amount": "2.5000000", "currency": "EUR",
                              "limit": "0.0000000"}
        other = requests.get(f"{url}/rest/hlr/balance", headers={"X-API-KEY": "live_cli"},
                             timeout=5)
        assert other.json()["error"] == "1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()


def test_cli_refuses_remote_host() -> None:
    result = CliRunner().invoke(cli, ["emulator", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--allow-remote" in result.output


def test_cli_help_lists_switches() -> None:
    result = CliRunner().invoke(cli, ["emulator", "--help"])
    for option in ("--fail-rate", "--throttle-rate", "--drop-rate", "--token-ttl", "--verified",
                   "--attach-max-groups", "--hlr-api-key", "--hlr-balance", "--hlr-delay",
                   "--hlr-max-batch", "--hlr-max-pending"):
        assert option in result.output


def test_seed_file_json_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps({"contacts": [{"phone": 447700900123}]}))
    with Emulator(seed=path) as emu:
        assert emu.contacts()[0]["id"] == C1


# ---------------------------------------------------------------- groups caps and PUT semantics
def _many_lists(n: int) -> dict[str, Any]:
    """A seed with `n` lists (ids 1..n) and C1 in none of them."""
    return {"fields": [{"id": CITY, "name": "City"}, {"id": AGE, "name": "Age"}],
            "groups": [{"id": i, "name": f"List {i:03d}"} for i in range(1, n + 1)],
            "contacts": [{"id": C1, "phone": 447700900123, "fields": {str(CITY): "London",
                                                                      str(AGE): "40"}},
                         {"id": C2, "phone": 447700900124}]}


def _too_many(key: str, most: int) -> dict[str, Any]:
    return _v(key, f"This collection should contain {most} elements or less.")


@pytest.mark.parametrize("semantics", ["merge", "replace"])
def test_contact_body_groups_are_capped_at_100(semantics: str) -> None:
    with Emulator(EmulatorConfig(put_semantics=semantics), seed=_many_lists(101)) as emu:
        s = login(emu)
        over = call(s, emu, "PUT", f"/api/contacts/{C1}",
                    {"phone": 447700900123, "groups": list(range(1, 102))})
        assert (over.status_code, over.json()) == (422, _too_many("groups", 100))
        made = call(s, emu, "POST", "/api/contacts",
                    {"phone": 447700900125, "groups": list(range(1, 102))})
        assert (made.status_code, made.json()) == (422, _too_many("groups", 100))
        assert emu.contacts()[0]["groups"] == []  # nothing applied
        ok = call(s, emu, "PUT", f"/api/contacts/{C1}",
                  {"phone": 447700900123, "groups": list(range(1, 101))})
        assert ok.status_code == 200 and len(ok.json()["data"]["groups"]) == 100


def test_attach_and_detach_limits_per_call(emu: Emulator, api: requests.Session) -> None:
    for path in ("/api/groups/attach", "/api/groups/detach"):
        contacts = call(api, emu, "POST", path, {"contacts": list(range(1, 202)), "groups": [NEWS]})
        assert (contacts.status_code, contacts.json()) == (422, _too_many("contacts", 200))
        groups = call(api, emu, "POST", path, {"contacts": [C1], "groups": list(range(1, 102))})
        assert (groups.status_code, groups.json()) == (422, _too_many("groups", 100))
    assert [g["id"] for g in emu.contacts()[0]["groups"]] == [NEWS]


def test_attach_group_limit_can_be_the_docs_20() -> None:
    with Emulator(EmulatorConfig(attach_max_groups=20), seed=_many_lists(21)) as emu:
        s = login(emu)
        over = call(s, emu, "POST", "/api/groups/attach",
                    {"contacts": [C1], "groups": list(range(1, 22))})
        assert (over.status_code, over.json()) == (422, _too_many("groups", 20))
        ok = call(s, emu, "POST", "/api/groups/attach",
                  {"contacts": [C1], "groups": list(range(1, 21))})
        assert ok.status_code == 200


@pytest.mark.parametrize("semantics", ["merge", "replace"])
def test_a_contact_can_be_in_more_than_100_lists_via_attach(semantics: str) -> None:
    with Emulator(EmulatorConfig(put_semantics=semantics), seed=_many_lists(150)) as emu:
        s = login(emu)
        for chunk in (list(range(1, 101)), list(range(101, 151))):
            resp = call(s, emu, "POST", "/api/groups/attach", {"contacts": [C1, C2],
                                                               "groups": chunk})
            assert resp.status_code == 200
        got = call(s, emu, "GET", f"/api/contacts/{C1}").json()["data"]
        assert [g["id"] for g in got["groups"]] == list(range(1, 151))
        assert call(s, emu, "GET", "/api/groups/150").json()["data"]["items"] == 2
        members = call(s, emu, "GET", "/api/contacts?groups[]=150").json()
        assert [c["id"] for c in members["data"]] == [C1, C2]


# What PUT does with `fields` and `groups` (reference §3.5: the docs say PUT's `groups` are lists
# "to add the contact to"; §11 #15: the rest is undocumented, so both readings are emulated).
# C1 starts with City=London, Age=40 and lists 1..150; each case is (body, fields, groups after).
BASE = {"phone": 447700900123}
PUT_CASES = {
    "merge": [
        ({}, {CITY: "London", AGE: "40"}, list(range(1, 151))),
        ({"fields": [{"id": CITY, "value": "Leeds"}]}, {CITY: "Leeds", AGE: "40"},
         list(range(1, 151))),
        ({"fields": [{"id": AGE, "value": ""}]}, {CITY: "London"}, list(range(1, 151))),
        ({"fields": []}, {CITY: "London", AGE: "40"}, list(range(1, 151))),
        ({"groups": [151, 3]}, {CITY: "London", AGE: "40"}, list(range(1, 152))),
        ({"groups": []}, {CITY: "London", AGE: "40"}, list(range(1, 151))),
    ],
    "replace": [
        ({}, {}, []),
        ({"fields": [{"id": CITY, "value": "Leeds"}]}, {CITY: "Leeds"}, []),
        ({"fields": [], "groups": [151, 3]}, {}, [151, 3]),
        ({"groups": []}, {}, []),
    ],
}


@pytest.mark.parametrize(("semantics", "body", "fields", "groups"), [
    (sem, body, fields, groups) for sem, cases in PUT_CASES.items()
    for body, fields, groups in cases])
def test_put_semantics_for_absent_and_partial_fields_and_groups(
    semantics: str, body: dict[str, Any], fields: dict[int, str], groups: list[int]
) -> None:
    with Emulator(EmulatorConfig(put_semantics=semantics), seed=_many_lists(151)) as emu:
        s = login(emu)
        for chunk in (list(range(1, 101)), list(range(101, 151))):
            call(s, emu, "POST", "/api/groups/attach", {"contacts": [C1], "groups": chunk})
        resp = call(s, emu, "PUT", f"/api/contacts/{C1}", {**BASE, **body})
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        assert data["fields"] == ({str(k): v for k, v in fields.items()} or [])
        assert [g["id"] for g in data["groups"]] == groups
        assert emu.contacts()[0] == data


# ---------------------------------------------------------------- hooks: edits behind the client's back
def _faults(emu: Emulator, spec: dict[str, Any]) -> requests.Response:
    return requests.post(f"{emu.url}/_emulator/faults", json=spec, timeout=TIMEOUT)


def _ids(data: dict[str, Any]) -> list[int]:
    return [g["id"] for g in data["groups"]]


@pytest.mark.parametrize("semantics", ["merge", "replace"])
def test_edit_before_put_lands_between_the_clients_get_and_its_put(semantics: str) -> None:
    with Emulator(EmulatorConfig(put_semantics=semantics), seed=SEED) as emu:
        s = login(emu)
        before = call(s, emu, "GET", f"/api/contacts/{C1}").json()["data"]
        queued = _faults(emu, {"edit_before_put": {"id": C1, "fields": {str(AGE): "41"},
                                                   "groups_add": [VIP]}})
        assert queued.json() == {"queued": 0, "hooks": {"pending_edits": 1, "applied_edits": 0,
                                                        "wrong_id_answers": 0}}
        assert call(s, emu, "GET", f"/api/contacts/{C1}").json()["data"] == before  # not yet
        put = call(s, emu, "PUT", f"/api/contacts/{C1}", {
            "phone": 447700900123, "fields": [{"id": CITY, "value": "Leeds"}]}).json()["data"]
        if semantics == "merge":  # the colleague's Age and VIP survive a partial PUT
            assert put["fields"] == {str(CITY): "Leeds", str(AGE): "41"}
            assert _ids(put) == [NEWS, VIP]
        else:  # a replace PUT that was not built from a fresh read undoes them
            assert (put["fields"], put["groups"]) == ({str(CITY): "Leeds"}, [])
        assert emu.hooks() == {"pending_edits": 0, "applied_edits": 1, "wrong_id_answers": 0}


def test_edit_before_the_nth_put_of_that_contact_only(emu: Emulator, api: requests.Session) -> None:
    emu.edit_before_put(C1, fields={CITY: "Oslo"}, groups_remove=[NEWS], nth=2)
    body = {"phone": 447700900123}
    call(api, emu, "PUT", f"/api/contacts/{C2}", {"phone": 447700900124})  # another contact
    first = call(api, emu, "PUT", f"/api/contacts/{C1}", body).json()["data"]
    assert first["fields"][str(CITY)] == "London" and _ids(first) == [NEWS]
    emu.inject("503")  # a PUT that never reaches the endpoint does not count
    assert call(api, emu, "PUT", f"/api/contacts/{C1}", body).status_code == 503
    assert emu.hooks()["pending_edits"] == 1
    second = call(api, emu, "PUT", f"/api/contacts/{C1}", body).json()["data"]
    assert second["fields"][str(CITY)] == "Oslo" and _ids(second) == []


def test_edit_after_get_changes_the_contact_once_the_get_was_answered(
    emu: Emulator, api: requests.Session
) -> None:
    _faults(emu, {"edit_after_get": [{"id": C1, "fields": {str(CITY): ""}, "phone": 447700900999},
                                     {"id": C2, "groups_add": [NEWS]}]})
    seen = call(api, emu, "GET", f"/api/contacts/{C1}").json()["data"]
    assert seen["fields"][str(CITY)] == "London" and seen["phone"] == 447700900123
    now = call(api, emu, "GET", f"/api/contacts/{C1}").json()["data"]
    assert now["fields"] == {str(AGE): "40"} and now["phone"] == 447700900999
    assert emu.hooks()["pending_edits"] == 1  # C2's waits for a GET of C2
    call(api, emu, "GET", f"/api/contacts/{C2}")
    assert _ids(emu.contacts()[1]) == [VIP, NEWS]
    assert call(api, emu, "GET", f"/api/groups/{NEWS}").json()["data"]["items"] == 2


def test_edit_before_get_is_seen_by_that_get(emu: Emulator, api: requests.Session) -> None:
    listed = call(api, emu, "GET", "/api/contacts").json()["data"]  # a refresh: does not count
    emu.edit_before_get(C1, fields={CITY: "Bergen"}, groups_add=[VIP], nth=2)
    call(api, emu, "GET", "/api/contacts/search?search[field]=id&search[value]=1")
    first = call(api, emu, "GET", f"/api/contacts/{C1}").json()["data"]
    assert first == listed[0]
    fresh = call(api, emu, "GET", f"/api/contacts/{C1}").json()["data"]
    assert fresh["fields"][str(CITY)] == "Bergen" and _ids(fresh) == [NEWS, VIP]
    assert emu.hooks()["applied_edits"] == 1


@pytest.mark.parametrize("spec", [
    {"edit_before_put": {"fields": {"387714": "x"}}},  # no id
    {"edit_before_put": {"id": C1, "colour": "red"}},
    {"edit_before_put": {"id": C1, "fields": {"999": "x"}}},
    {"edit_before_put": {"id": C1, "groups_add": [5]}},
    {"edit_before_put": {"id": C1, "nth": 0}},
    {"edit_after_get": ["not an edit"]},
    {"wrong_id_answers": -1},
    {"wrong_id_answers": True},
    {"edit_befor_put": {"id": C1}},
    ["next"],
])
def test_bad_hook_requests_are_a_400_and_queue_nothing(emu: Emulator, spec: Any) -> None:
    resp = _faults(emu, spec)
    assert resp.status_code == 400 and resp.json()["message"]
    assert emu.hooks() == {"pending_edits": 0, "applied_edits": 0, "wrong_id_answers": 0}


def test_wrong_id_answers_describe_another_contact(emu: Emulator, api: requests.Session) -> None:
    assert _faults(emu, {"wrong_id_answers": 2}).status_code == 200
    bad = call(api, emu, "PUT", f"/api/contacts/{C1}", {"phone": 447700900555})
    assert call(api, emu, "PUT", f"/api/contacts/{C1}", {"phone": 447700900124}
                ).status_code == 422  # a failed write does not use one up
    assert bad.status_code == 200 and bad.json()["data"] == emu.contacts()[1]  # C2, not C1
    assert emu.contacts()[0]["phone"] == 447700900555  # the write itself happened
    made = call(api, emu, "POST", "/api/contacts", {"phone": 447700900556})
    assert made.status_code == 201 and made.json()["data"]["id"] == C1
    normal = call(api, emu, "PUT", f"/api/contacts/{C2}", {"phone": 447700900124})
    assert normal.json()["data"]["id"] == C2 and emu.hooks()["wrong_id_answers"] == 0


def test_wrong_id_answer_for_the_only_contact_is_a_made_up_id() -> None:
    with Emulator(seed={"contacts": [{"id": C1, "phone": 447700900123}]}) as emu:
        s = login(emu)
        emu.answer_with_wrong_id()
        data = call(s, emu, "PUT", f"/api/contacts/{C1}", {"phone": 447700900123}).json()["data"]
        assert (data["id"], data["phone"]) == (C1 + 1, 447700900123)


def test_reset_forgets_the_hooks(emu: Emulator) -> None:
    emu.edit_before_put(C1, fields={CITY: "x"})
    emu.answer_with_wrong_id(3)
    requests.post(f"{emu.url}/_emulator/reset", timeout=TIMEOUT)
    hooks = requests.get(f"{emu.url}/_emulator/hooks", timeout=TIMEOUT).json()
    assert hooks == {"pending_edits": 0, "applied_edits": 0, "wrong_id_answers": 0}


def _reset_mid_request(url: str) -> None:
    """Send half a POST, then close with a TCP reset (SO_LINGER 0) while the server reads."""
    import socket
    import struct
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"POST /api/contacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100000\r\n\r\n{\"phone\": 4477")
        time.sleep(0.05)  # the server is now waiting for the rest of the body
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_connection_reset_by_the_client_prints_no_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with Emulator() as emu:
        for _ in range(3):
            _reset_mid_request(emu.url)
        server = emu._server  # wait until its handlers are done with the sockets
        deadline = time.monotonic() + 3
        while server.open_sockets and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # handle_error runs just after the handler lets go of the socket
        assert requests.get(emu.url + "/api/contacts", timeout=5).status_code == 401
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err
