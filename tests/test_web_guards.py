"""The web page against other people's pages and guessers: Host checks (DNS rebinding), runs
and downloads bound to the browser session, and the brake on password guessing."""

from __future__ import annotations

import io
import logging
import re
import time
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from kit import SAMPLE_SEED, Emulators, ServeApp, WebApp
from web_helpers import (
    API_KEY,
    CONTACTS_CSV,
    csrf,
    mapping_form,
    upload,
    upload_and_map,
    wait_job,
)

from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator
from bsg_sync.errors import UsageError
from bsg_sync.web import check_bind, display_url, parse_allowed_hosts
from bsg_sync.web.app import services
from bsg_sync.web.guards import GuessLimiter, GuessPolicy, host_allowed, split_host

EVIL = "evil.example:8080"


@pytest.fixture(scope="module")
def shared(module_emulator: Emulators) -> Emulator:
    return module_emulator(SAMPLE_SEED)


@pytest.fixture
def emu(shared: Emulator) -> Emulator:
    shared.reset()
    return shared


@pytest.fixture
def served(app: Flask, serve_app: ServeApp) -> tuple[str, int]:
    """The app on a real socket on 127.0.0.1 (werkzeug's threaded server, as `serve` uses)."""
    url = serve_app(app)
    return url, int(url.rsplit(":", 1)[1])


# --------------------------------------------------------------------------- DNS rebinding


def test_a_rebound_host_cannot_drive_the_page(
    app: Flask, client: FlaskClient, emu: Emulator
) -> None:
    """A page on evil.example whose name now resolves to 127.0.0.1: its browser sends
    Host: evil.example:8080 and keeps cookies of its own for that name."""
    token, job = upload_and_map(client)  # the person's own preview, on the right address
    wait_job(client, job)
    browser = app.test_client()

    def attacker(method: str, url: str, **kw: Any) -> Any:
        return browser.open(url, method=method, base_url=f"http://{EVIL}", **kw)

    page = attacker("GET", "/")
    assert page.status_code == 421
    assert page.text == (
        "This page does not answer to that address; open it at the address you were given.\n"
    )
    assert "Set-Cookie" not in page.headers  # not even a session to start a CSRF token from
    sheet = {"sheet": (io.BytesIO(CONTACTS_CSV.read_bytes()), "contacts.csv")}
    assert attacker("POST", "/upload", data=sheet).status_code == 421
    for url in (f"/u/{token}/preview", "/history", "/running.json", "/static/app.js"):
        assert attacker("GET", url).status_code == 421, url
    assert attacker("POST", f"/u/{token}/apply", data={"csrf_token": "x"}).status_code == 421
    assert emu.stats()["writes"] == 0
    assert client.get(f"/u/{token}/preview").status_code == 200  # the right Host still works


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST:80", "localhost."])
def test_loopback_names_on_the_bound_port_are_accepted(client: FlaskClient, host: str) -> None:
    assert client.get("/", headers={"Host": host}).status_code == 200  # the test client's port 80


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:80",
        "localhost:8080",  # the right name on another port is another origin
        "127.0.0.1:81",
        "[::1]:81",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "localhost@evil.example",
        "localhost:80/x",
        "::1",
        "",
        "localhost:http",
    ],
)
def test_every_other_host_is_refused(client: FlaskClient, host: str) -> None:
    assert client.get("/", headers={"Host": host}).status_code == 421


def test_a_forged_host_over_a_real_socket(served: tuple[str, int]) -> None:
    url, port = served
    r = requests.get(url, headers={"Host": EVIL}, timeout=5)
    assert r.status_code == 421 and "does not answer to that address" in r.text
    assert (
        requests.get(url, headers={"Host": f"localhost:{port + 1}"}, timeout=5).status_code == 421
    )
    assert requests.get(url, headers={"Host": f"localhost:{port}"}, timeout=5).status_code == 200
    assert requests.get(url, timeout=5).status_code == 200  # 127.0.0.1:<port>, as typed


def test_allowed_hosts_on_a_public_bind(emu: Emulator, web_app: WebApp) -> None:
    allowed = parse_allowed_hosts(["bsg.example.com  intra.local:8443"])
    app = web_app(emu, allowed_hosts=allowed, password="pw")
    c = app.test_client()
    auth = ("marketing", "pw")
    for host in ("bsg.example.com", "BSG.example.com:443", "intra.local:8443", "localhost"):
        assert c.get("/", headers={"Host": host}, auth=auth).status_code == 200, host
    for host in ("intra.local:9000", "intra.local", "evil.example", "example.com"):
        assert c.get("/", headers={"Host": host}, auth=auth).status_code == 421, host


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("Example.com:8080", ("example.com", 8080)),
        ("[::1]", ("::1", None)),
        ("[::1]:99", ("::1", 99)),
        ("host.", ("host", None)),
        ("a b", None),
        ("a:99999", None),
        ("::1", None),
        ("user@host", None),
    ],
)
def test_split_host(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert split_host(value) == parsed


def test_host_allowed_uses_the_scheme_default_port() -> None:
    assert host_allowed("localhost", 443, "https")
    assert not host_allowed("localhost", 443, "http")
    assert not host_allowed(None, 80, "http")


def test_a_public_bind_needs_allowed_hosts_too() -> None:
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "pw", parse_allowed_hosts(["bsg.example.com"]))
    with pytest.raises(UsageError, match="--allowed-host"):
        check_bind("0.0.0.0", "pw")
    with pytest.raises(UsageError, match="BSG_SYNC_WEB_PASSWORD"):  # a proxy on loopback
        check_bind("127.0.0.1", None, parse_allowed_hosts(["bsg.example.com"]))
    with pytest.raises(ValueError, match="not a host name"):
        parse_allowed_hosts(["bsg.example.com/path"])


def test_the_printed_address_is_one_the_page_answers_to() -> None:
    allowed = parse_allowed_hosts(["bsg.example.com"])
    assert display_url("127.0.0.1", 8080, frozenset()) == "http://127.0.0.1:8080/"
    assert display_url("::1", 8080, frozenset()) == "http://[::1]:8080/"
    assert display_url("0.0.0.0", 8080, allowed) == "http://bsg.example.com:8080/"
    assert display_url("::", 8080, parse_allowed_hosts(["a.example:443"])) == (
        "http://a.example:443/"
    )
    assert display_url("0.0.0.0", 8080, frozenset()) == "http://127.0.0.1:8080/"
    url = display_url("0.0.0.0", 8080, allowed)
    assert host_allowed(url.split("/")[2], 8080, "http", allowed)


def test_serve_reads_allowed_hosts_from_the_option_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BSG_SYNC_WEB_PASSWORD", "pw")
    monkeypatch.setenv("BSG_API_KEY", API_KEY)
    monkeypatch.delenv("BSG_SYNC_ALLOWED_HOSTS", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2 and "--allowed-host" in result.stderr
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--allowed-host", "a/b"])
    assert result.exit_code == 2 and "'a/b' is not a host name" in result.stderr
    monkeypatch.setenv("BSG_SYNC_ALLOWED_HOSTS", "ok.example bad/name")
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "'bad/name' is not a host name" in result.stderr


# --------------------------------------------------------------------------- the session


def test_job_status_needs_the_session_that_started_it(app: Flask, client: FlaskClient) -> None:
    token, job = upload_and_map(client)
    status = wait_job(client, job)
    job_id = job.rsplit("/", 1)[1]
    stranger = app.test_client()  # no cookie at all
    assert stranger.get(f"/jobs/{job_id}.json").status_code == 404
    other = app.test_client()
    other.get("/")  # another browser, with a session of its own
    for url in (
        f"/jobs/{job_id}.json",
        f"/jobs/{job_id}",
        status["next"],
        f"/u/{token}/mapping",
        f"/u/{token}/preview",
        f"/u/{token}/download/preview-report",
    ):
        assert other.get(url).status_code == 404, url
        assert stranger.get(url).status_code == 404, url
    assert client.get(f"/jobs/{job_id}.json").status_code == 200


def test_stop_needs_the_session_that_started_it(emulator: Emulators, web_app: WebApp) -> None:
    slow = emulator(SAMPLE_SEED, latency_ms=200)
    app = web_app(slow)
    c = app.test_client()
    _token, job = upload_and_map(c)
    job_id = job.rsplit("/", 1)[1]
    other = app.test_client()
    r = other.post(f"/jobs/{job_id}/stop", data={"csrf_token": csrf(other)})
    assert r.status_code == 404
    assert not services(app).jobs.get(job_id).hooks.stop.is_set()  # type: ignore[union-attr]
    c.post(f"/jobs/{job_id}/stop", data={"csrf_token": csrf(c)})
    assert services(app).jobs.get(job_id).hooks.stop.is_set()  # type: ignore[union-attr]
    wait_job(c, job, timeout=60)


def test_job_ids_are_unguessable_and_the_json_holds_no_token(client: FlaskClient) -> None:
    token, first = upload_and_map(client)
    status = wait_job(client, first)
    r = client.post(f"/u/{token}/apply", data={"csrf_token": csrf(client)})
    second = r.headers["Location"]
    applied = wait_job(client, second)
    ids = [first.rsplit("/", 1)[1], second.rsplit("/", 1)[1]]
    for job_id in ids:
        assert len(job_id) >= 20 and not job_id.isdigit()
    assert ids[0] != ids[1]
    for answer in (status, applied):
        assert token not in str(answer)
        assert answer["next"] == f"/jobs/{answer['id']}/next"
    # /jobs/1.json and its neighbours are nobody's
    for guess in ("1", "2", "0"):
        assert client.get(f"/jobs/{guess}.json").status_code == 404


def test_history_downloads_need_a_session(app: Flask, client: FlaskClient) -> None:
    _token, job = upload_and_map(client)
    wait_job(client, job)
    run_id = re.findall(r'href="/history/(\d+)"', client.get("/history").text)[0]
    assert app.test_client().get(f"/history/{run_id}/report.xlsx").status_code == 403
    assert app.test_client().get(f"/history/{run_id}").status_code == 403
    fresh = app.test_client()
    assert fresh.get("/history").status_code == 200  # the list page starts a session
    assert fresh.get(f"/history/{run_id}").status_code == 200
    assert app.test_client().get("/running.json").status_code == 403
    assert client.get(f"/history/{run_id}/report.xlsx").status_code == 200


def test_uploads_are_bound_to_the_session(app: Flask, client: FlaskClient) -> None:
    r = upload(client, CONTACTS_CSV.read_bytes(), "contacts.csv")
    mapping_url = r.headers["Location"]
    other = app.test_client()
    other.get("/")
    form = mapping_form(client.get(mapping_url).text)
    form["csrf_token"] = csrf(other)
    assert other.post(mapping_url, data=form).status_code == 404
    token = mapping_url.split("/")[2]
    assert other.post(f"/u/{token}/discard", data={"csrf_token": csrf(other)}).status_code == 404
    assert services(app).uploads.get(token) is not None


# --------------------------------------------------------------------------- guessing


def guarded_app(web_app: WebApp, emu: Emulator, **policy: Any) -> Flask:
    return web_app(emu, password="s3cret", guess_policy=GuessPolicy(**policy))


def test_guessing_locks_the_client_out(
    emu: Emulator, web_app: WebApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = guarded_app(web_app, emu, base_delay_s=0, lockout_after=10, lockout_s=0.6)
    caplog.set_level(logging.WARNING, logger="bsg_sync.web.app")
    c = app.test_client()
    answers = [c.get("/", auth=("m", f"guess{i}")).status_code for i in range(50)]
    assert answers[:10] == [401] * 10 and set(answers[10:]) == {429}
    right = c.get("/", auth=("m", "s3cret"))
    assert right.status_code == 429  # the right password during a lockout is refused too
    assert 1 <= int(right.headers["Retry-After"]) <= 1
    assert "Too many wrong passwords from this computer" in right.text
    neighbour = app.test_client()  # another address is not locked out
    ok = neighbour.get("/", auth=("m", "s3cret"), environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert ok.status_code == 200
    time.sleep(0.7)
    assert c.get("/", auth=("m", "s3cret")).status_code == 200
    failures = [r.getMessage() for r in caplog.records if "wrong web page password" in r.message]
    assert len(failures) == 10 and "from 127.0.0.1" in failures[0]
    assert any("locked out 127.0.0.1" in r.getMessage() for r in caplog.records)
    assert not any("guess" in r.getMessage() or "s3cret" in r.getMessage() for r in caplog.records)


def test_a_wrong_password_slows_the_next_try(emu: Emulator, web_app: WebApp) -> None:
    app = guarded_app(web_app, emu, base_delay_s=0.3)
    c = app.test_client()
    assert c.get("/").status_code == 401  # no password sent yet: not a failure
    assert c.get("/", auth=("m", "s3cret")).status_code == 200
    assert c.get("/", auth=("m", "wrong")).status_code == 401
    quick = c.get("/", auth=("m", "s3cret"))
    assert quick.status_code == 429 and quick.headers["Retry-After"] == "1"
    time.sleep(0.35)
    assert c.get("/", auth=("m", "s3cret")).status_code == 200


def test_the_delay_grows_and_is_capped() -> None:
    now = [0.0]
    limiter = GuessLimiter(
        GuessPolicy(base_delay_s=0.5, max_delay_s=4, lockout_after=100), lambda: now[0]
    )
    waits = []
    for _ in range(6):
        limiter.failed("a")
        waits.append(limiter.retry_after("a"))
        now[0] += 10
    assert waits == [1, 1, 2, 4, 4, 4]  # 0.5, 1, 2, 4, then capped (whole seconds, rounded up)
    assert limiter.retry_after("b") is None
    limiter.succeeded("a")
    assert limiter.retry_after("a") is None


def test_failures_outside_the_window_do_not_lock() -> None:
    now = [0.0]
    limiter = GuessLimiter(
        GuessPolicy(base_delay_s=0, lockout_after=3, window_s=60), lambda: now[0]
    )
    for _ in range(5):
        assert limiter.failed("a")[1] is False
        now[0] += 31  # never three within a minute
    now[0] = 1000.0
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.failed("a") == (3, True)
    assert limiter.retry_after("a") == 900


def test_many_addresses_do_not_grow_memory_without_bound() -> None:
    limiter = GuessLimiter(GuessPolicy(base_delay_s=0, max_clients=50))
    for i in range(500):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._clients) == 50


def test_parallel_guesses_cannot_slip_past_the_count() -> None:
    limiter = GuessLimiter(GuessPolicy(base_delay_s=0, lockout_after=3))
    assert [limiter.begin("a") for _ in range(5)] == [None, None, None, 1, 1]  # 3 in flight
    for _ in range(3):
        limiter.failed("a")
    assert limiter.begin("a") == 900  # locked out: nothing more is checked
    clean = GuessLimiter(GuessPolicy(base_delay_s=0, lockout_after=10))
    assert clean.begin("b") is None and clean.begin("b") is None  # a browser's parallel loads
    clean.failed("b")
    clean.failed("b")
    assert clean.begin("b") is None and clean.begin("b") == 1  # after a failure: one at a time


def test_concurrent_guesses_over_a_socket(emu: Emulator, web_app: WebApp,
                                         serve_app: ServeApp) -> None:
    """80 guesses on 40 connections at once: at most the lockout budget is ever checked. (The
    race itself is pinned by the test above; this one fails if the brake is bypassed.)"""
    from concurrent.futures import ThreadPoolExecutor

    app = guarded_app(web_app, emu, base_delay_s=0, lockout_after=10)
    url = serve_app(app) + "/static/style.css"
    with ThreadPoolExecutor(40) as pool:
        codes = list(
            pool.map(
                lambda i: requests.get(url, auth=("m", f"g{i}"), timeout=10).status_code,
                range(80),
            )
        )
    assert codes.count(401) <= 10 and codes.count(401) + codes.count(429) == 80
