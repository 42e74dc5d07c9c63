"""The web page's "Check numbers first" step (routes, with Flask's test client, against the
real emulator): the price before paying, the check with progress, the results per status,
skipping unreachable numbers on Apply, and the page without an HLR key."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import csrf, make_app, mapping_form, upload, wait_job

from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.report import REPORT_HEADINGS

HLR_KEY = "hlrWebKey0123456789"
SEED = {"fields": [{"id": 387714, "name": "Name", "type": "text"}], "groups": [],
        "contacts": [{"id": 1001, "phone": 447700900101, "fields": {"387714": "A"}}]}
# last digit: 4 active, 5 active (ported), 6 absent, 8 failed; ...101 is in the book
SHEET = b"phone,Name\n447700900101,A2\n447700900104,D\n447700900105,E\n447700900106,F\n" \
        b"447700900108,H\n"
NEW = {"447700900104", "447700900105", "447700900106", "447700900108"}
DEAD = {"447700900106", "447700900108"}


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    seed = tmp_path_factory.mktemp("seed") / "seed.json"
    seed.write_text(json.dumps(SEED))
    config = EmulatorConfig(hlr_api_key=HLR_KEY, hlr_delay=0.05, hlr_balance=1.0)
    with Emulator(config, seed=seed) as server:
        yield server


def _app(emu: Emulator, tmp_path: Path, **kw: Any) -> Flask:
    emu.reset()
    return make_app(emu, tmp_path, hlr_url=emu.url + "/rest", hlr_poll_interval=0.02, **kw)


@pytest.fixture()
def client(emu: Emulator, tmp_path: Path) -> Iterator[FlaskClient]:
    app = _app(emu, tmp_path, hlr_api_key=HLR_KEY)
    with app.test_client() as c:
        yield c


def _previewed(client: FlaskClient) -> str:
    """Upload the sheet, map it (creating missing contacts), wait for the preview: the token."""
    r = upload(client, SHEET, "numbers.csv")
    assert r.status_code == 303, r.text
    mapping_url = r.headers["Location"]
    form = mapping_form(client.get(mapping_url).text)
    form.update({"default_country": "GB", "create_missing": "on"})
    r = client.post(mapping_url, data=form)
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    return str(mapping_url.split("/")[2])


def _wait_check(client: FlaskClient, token: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(f"/u/{token}/verify.json").json or {}
        if status["state"] not in ("quoting", "checking"):
            return status
        time.sleep(0.02)
    raise AssertionError("the check did not finish")


def _post(client: FlaskClient, path: str, **data: str) -> Any:
    return client.post(path, data={"csrf_token": csrf(client), **data})


def _quoted(client: FlaskClient, token: str, mode: str = "changed") -> str:
    r = _post(client, f"/u/{token}/verify/quote", mode=mode)
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/u/{token}/verify")
    assert _wait_check(client, token)["state"] == "quoted"
    return client.get(f"/u/{token}/verify").text


def _checked(client: FlaskClient, token: str) -> str:
    _quoted(client, token)
    r = _post(client, f"/u/{token}/verify/check")
    assert r.status_code == 303
    assert _wait_check(client, token)["state"] == "checked"
    return client.get(f"/u/{token}/verify").text


def _text(html: str) -> str:
    """The page's text as a person reads it (tags dropped, entities decoded, spaces folded)."""
    import html as html_mod

    return re.sub(r"\s+", " ", html_mod.unescape(re.sub(r"<[^>]+>", " ", html)))


def test_preview_offers_the_step(client: FlaskClient) -> None:
    token = _previewed(client)
    page = client.get(f"/u/{token}/preview").text
    assert f'action="/u/{token}/verify/quote"' in page and "Check numbers first" in page


def test_the_price_comes_first_and_pays_nothing(client: FlaskClient, emu: Emulator) -> None:
    token = _previewed(client)
    page = _text(_quoted(client, token))
    # priced at the UK's highest network price (0.007) before the networks are known
    assert "4 numbers would be checked for at most 0.0280000 EUR" in page
    assert "your HLR balance is 1.0000000 EUR" in page and "Nothing has been paid yet" in page
    assert "Check 4 numbers for at most 0.0280000 EUR" in page
    assert emu.hlr_stats()["lookups"] == 0


def test_confirming_checks_the_numbers_and_shows_results_per_status(
        client: FlaskClient, emu: Emulator) -> None:
    token = _previewed(client)
    page = _checked(client, token)
    assert set(emu.hlr_stats()["numbers"]) == NEW  # each once, only the new ones
    text = _text(page)
    assert "4 lookups paid: 0.0200000 EUR" in text
    counts = dict(re.findall(r'class="badge v-([a-z-]+)">[^<]+</span> <strong>(\d+)</strong>',
                             page))
    assert counts == {"active": "2", "absent": "1", "failed": "1"}
    assert "Unreachable numbers (2)" in text
    assert "Row 5: 447700900106 absent" in text and "Row 6: 447700900108 failed" in text
    assert 'name="skip_unreachable" id="skip" checked' in page
    assert "Do not send the 2 rows whose number is unreachable" in text


def test_progress_json_while_checking(client: FlaskClient, emu: Emulator) -> None:
    token = _previewed(client)
    _quoted(client, token)
    _post(client, f"/u/{token}/verify/check")
    seen = client.get(f"/u/{token}/verify.json").json or {}
    assert seen["state"] in ("checking", "checked") and seen["total"] == 4
    assert _wait_check(client, token) == {"state": "checked", "done": 4, "total": 4}


def test_apply_skipping_unreachable_leaves_them_out(client: FlaskClient, emu: Emulator
                                                   ) -> None:
    token = _previewed(client)
    _checked(client, token)
    r = _post(client, f"/u/{token}/verify/apply", skip_unreachable="on")
    assert r.status_code == 303 and "/jobs/" in r.headers["Location"]
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    phones = {str(c["phone"]) for c in emu.contacts()}
    assert not DEAD & phones and phones >= NEW - DEAD
    result = _text(client.get(f"/u/{token}/result").text)
    assert "number-unreachable" in result
    assert emu.hlr_stats()["lookups"] == 4  # the apply paid for nothing more


def test_apply_without_skipping_sends_every_row(client: FlaskClient, emu: Emulator) -> None:
    token = _previewed(client)
    _checked(client, token)
    r = _post(client, f"/u/{token}/verify/apply")  # the box unticked
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    assert {str(c["phone"]) for c in emu.contacts()} >= NEW


def test_the_applys_report_carries_the_checks(client: FlaskClient, tmp_path: Path) -> None:
    import openpyxl

    token = _previewed(client)
    _checked(client, token)
    r = _post(client, f"/u/{token}/verify/apply", skip_unreachable="on")
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    data = client.get(f"/u/{token}/download/result-report").data
    (tmp_path / "r.xlsx").write_bytes(data)
    rows = list(openpyxl.load_workbook(tmp_path / "r.xlsx")["Report"].iter_rows(values_only=True))
    machine = {words: name for name, words in REPORT_HEADINGS.items()}
    head = [machine[h] for h in rows[0]]  # the XLSX headings are people's words
    by = {r[head.index("phone")]: r for r in rows[1:]}
    assert by["447700900106"][head.index("verify_status")] == "absent"
    assert by["447700900105"][head.index("ported")] == 1
    assert by["447700900104"][head.index("verify_cost")] == "0.0050000"
    pages = [client.get(f"/u/{token}/{path}").text
             for path in ("verify", "verify.json", "preview", "result")]
    assert not [p for p in pages if HLR_KEY in p]  # the key stays on the server


def test_a_plain_apply_from_the_preview_is_as_before(client: FlaskClient, emu: Emulator
                                                     ) -> None:
    token = _previewed(client)
    _checked(client, token)  # checked, but Apply pressed on the preview: nothing is skipped
    r = _post(client, f"/u/{token}/apply")
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    assert {str(c["phone"]) for c in emu.contacts()} >= NEW


def test_check_without_a_price_is_refused(client: FlaskClient, emu: Emulator) -> None:
    token = _previewed(client)
    r = _post(client, f"/u/{token}/verify/check")
    assert r.status_code == 303
    assert "Work out the price first" in client.get(r.headers["Location"]).text
    assert emu.hlr_stats()["lookups"] == 0


def test_a_price_over_the_balance_is_said_and_not_offered(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    config = EmulatorConfig(hlr_api_key=HLR_KEY, hlr_delay=0.05, hlr_balance=0.01)
    with Emulator(config, seed=seed) as poor, \
            make_app(poor, tmp_path, hlr_url=poor.url + "/rest", hlr_poll_interval=0.02,
                     hlr_api_key=HLR_KEY).test_client() as client:
        token = _previewed(client)
        page = _text(_quoted(client, token))
        assert "more than the HLR balance of 0.0100000 EUR" in page
        assert "Nothing was paid" in page
        assert "verify/check" not in page
        r = _post(client, f"/u/{token}/verify/check")
        assert "Work out the price first" in client.get(r.headers["Location"]).text
        assert poor.hlr_stats()["lookups"] == 0


def test_a_second_check_is_served_from_the_cache(client: FlaskClient, emu: Emulator) -> None:
    token = _previewed(client)
    _checked(client, token)
    token2 = _previewed(client)
    page = _text(_quoted(client, token2))
    assert "No number needs checking" in page and "Nothing was paid" in page
    assert emu.hlr_stats()["lookups"] == 4
    assert "Unreachable numbers (2)" in page  # the cached results, ready for Apply


def test_without_an_hlr_key_the_step_says_so_and_apply_works(emu: Emulator, tmp_path: Path
                                                              ) -> None:
    with _app(emu, tmp_path).test_client() as client:
        token = _previewed(client)
        preview = client.get(f"/u/{token}/preview").text
        assert f'href="/u/{token}/verify"' in preview
        page = _text(client.get(f"/u/{token}/verify").text)
        assert "Checking numbers is not set up on this page: it needs an HLR API key" in page
        r = _post(client, f"/u/{token}/verify/quote")
        assert r.status_code == 303 and emu.hlr_stats()["lookups"] == 0
        r = _post(client, f"/u/{token}/apply")
        assert wait_job(client, r.headers["Location"])["state"] == "done"
        assert {str(c["phone"]) for c in emu.contacts()} >= NEW


def test_a_rejected_hlr_key_is_said_in_plain_words(emu: Emulator, tmp_path: Path) -> None:
    with _app(emu, tmp_path, hlr_api_key="notTheKey000").test_client() as client:
        token = _previewed(client)
        _post(client, f"/u/{token}/verify/quote")
        assert _wait_check(client, token)["state"] == "failed"
        page = _text(client.get(f"/u/{token}/verify").text)
        assert "BSG did not accept this page's HLR API key" in page
        assert "HLR" in page and "--hlr" not in page


def test_another_session_gets_404(client: FlaskClient, emu: Emulator, tmp_path: Path) -> None:
    token = _previewed(client)
    app = client.application
    with app.test_client() as other:
        assert other.get(f"/u/{token}/verify").status_code == 404
        assert other.get(f"/u/{token}/verify.json").status_code == 404
        r = other.post(f"/u/{token}/verify/quote", data={"csrf_token": csrf(other)})
        assert r.status_code == 404


def test_the_step_needs_a_preview(client: FlaskClient) -> None:
    r = upload(client, SHEET, "numbers.csv")
    token = r.headers["Location"].split("/")[2]
    r = _post(client, f"/u/{token}/verify/quote")
    assert r.status_code == 303 and "/preview" in r.headers["Location"]


def test_serve_refuses_an_empty_hlr_key_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bsg_sync.cli import cli

    (tmp_path / "hlr.key").write_text("\n")
    (tmp_path / "hlr.key").chmod(0o600)
    env = {"BSG_API_KEY": "live_serve_key", "BSG_HLR_API_KEY": ""}
    result = CliRunner().invoke(cli, ["serve", "--port", "0", "--state",
                                      str(tmp_path / "s.sqlite3"), "--hlr-api-key-file",
                                      str(tmp_path / "hlr.key")], env=env)
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("hlr.key is empty")


def test_a_price_higher_than_the_one_shown_is_refused(client: FlaskClient, emu: Emulator
                                                      ) -> None:
    from web_helpers import API_KEY

    from bsg_sync.client import BsgClient

    token = _previewed(client)
    assert "4 numbers would be checked" in _text(_quoted(client, token))
    with BsgClient(emu.url, API_KEY) as bsg:  # ...101 leaves the book: a 5th new number
        bsg.delete_contact(1001)
    _post(client, f"/u/{token}/verify/check")
    assert _wait_check(client, token)["state"] == "failed"
    page = _text(client.get(f"/u/{token}/verify").text)
    assert "The price has gone up since it was shown: now at most 0.0350000 EUR for 5 " \
           "numbers. Nothing was paid" in page
    assert emu.hlr_stats()["lookups"] == 0


def test_only_numbers_apply_would_send_are_priced(client: FlaskClient, emu: Emulator) -> None:
    r = upload(client, SHEET, "numbers.csv")  # no "create contacts": the new rows are not_found
    mapping_url = r.headers["Location"]
    form = mapping_form(client.get(mapping_url).text)
    form["default_country"] = "GB"
    r = client.post(mapping_url, data=form)
    assert wait_job(client, r.headers["Location"])["state"] == "done"
    token = mapping_url.split("/")[2]
    # changed: ...101 keeps its number (its Name changes), and the new numbers are not sent
    assert "No number needs checking" in _text(_quoted(client, token, "changed"))
    # stale: ...101 was never checked, and its row is sent
    assert "1 number would be checked for at most 0.0070000 EUR" in _text(
        _quoted(client, token, "stale"))
    assert emu.hlr_stats()["lookups"] == 0


def test_stop_keeps_what_was_paid_and_a_second_check_pays_the_rest(emu: Emulator,
                                                                   tmp_path: Path) -> None:
    app = _app(emu, tmp_path, hlr_api_key=HLR_KEY)
    with app.test_client() as client:
        token = _previewed(client)
        _quoted(client, token)
        _post(client, f"/u/{token}/verify/check")
        r = _post(client, f"/u/{token}/verify/stop")
        assert r.status_code == 303
        state = _wait_check(client, token)["state"]
        if state == "checked":
            pytest.skip("the check finished before the stop arrived")
        assert state == "failed"
        page = _text(client.get(f"/u/{token}/verify").text)
        assert "Stopped. What was looked up so far is kept" in page
        _quoted(client, token)
        _post(client, f"/u/{token}/verify/check")
        assert _wait_check(client, token)["state"] == "checked"
        assert all(n == 1 for n in emu.hlr_stats()["numbers"].values())  # none paid twice
        assert set(emu.hlr_stats()["numbers"]) == NEW


def test_a_discarded_uploads_check_is_forgotten(client: FlaskClient) -> None:
    from bsg_sync.web.verify_step import checks_of

    token = _previewed(client)
    _quoted(client, token)
    assert _post(client, f"/u/{token}/discard").status_code == 303
    other = _previewed(client)
    _quoted(client, other)  # starting another check drops the discarded upload's
    checks = checks_of(client.application)
    assert checks.get(token) is None and checks.get(other) is not None
