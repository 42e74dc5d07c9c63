"""Alerts (bsg_sync.notify) delivered to a real JSON webhook and a real SMTP server (aiosmtpd,
plain and STARTTLS) on 127.0.0.1; when to send, and what a message may hold."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from bsg_sync.errors import UsageError
from bsg_sync.models import RowResult, Status, Threshold
from bsg_sync.notify import (
    Message,
    NotifyOn,
    NotifySettings,
    RunNews,
    check_urls,
    compose,
    deliver,
    problem_rows,
    should_notify,
    urls_from_env,
)

# --------------------------------------------------------------------------- receivers


class Webhook:
    """A JSON webhook on 127.0.0.1 recording each POST; `fail` answers 500 that many times."""

    def __init__(self, fail: int = 0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.fail = fail
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if hook.fail > 0:
                    hook.fail -= 1
                    self.send_response(500)
                else:
                    hook.posts.append(json.loads(raw))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope)
        return "250 OK"


def smtp_server(tls: ssl.SSLContext | None = None) -> tuple[Any, Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": free_port()}
    if tls is not None:
        kwargs.update(tls_context=tls, require_starttls=True)
    controller = Controller(box, **kwargs)
    controller.start()
    return controller, box


def unreachable_url() -> str:
    return f"json://127.0.0.1:{free_port()}/nobody"  # nothing listens there


FAST: dict[str, Any] = {"attempts": 2, "retry_wait": 0.0}

# --------------------------------------------------------------------------- when


def news(exit_code: int, bad: int = 0, rows: int = 10, **kw: Any) -> RunNews:
    counts = {"ok": rows - bad, "invalid": bad}
    return RunNews("sync", "contacts.csv", exit_code, counts=counts, **kw)


@pytest.mark.parametrize(("on", "failures", "exit_code", "bad", "sent"), [
    (NotifyOn.PROBLEMS, None, 0, 0, False),  # a clean run says nothing by default
    (NotifyOn.PROBLEMS, None, 1, 1, True),
    (NotifyOn.PROBLEMS, None, 3, 0, True),
    (NotifyOn.PROBLEMS, None, 130, 0, True),
    (NotifyOn.FAILURE, None, 1, 5, False),
    (NotifyOn.FAILURE, None, 2, 0, True),
    (NotifyOn.ALWAYS, None, 0, 0, True),
    (NotifyOn.PROBLEMS, Threshold.parse("20%"), 1, 2, False),  # 2 of 10 is not past 20%
    (NotifyOn.PROBLEMS, Threshold.parse("20%"), 1, 3, True),
    (NotifyOn.PROBLEMS, Threshold.parse("5"), 1, 5, False),
    (NotifyOn.PROBLEMS, Threshold.parse("5"), 3, 0, True),  # a failed run always tells
])
def test_when_to_notify(on: NotifyOn, failures: Threshold | None, exit_code: int, bad: int,
                        sent: bool) -> None:
    settings = NotifySettings(urls=("json://127.0.0.1/x",), on=on, failures=failures)
    assert should_notify(settings, news(exit_code, bad)) is sent


def test_no_url_never_notifies() -> None:
    assert should_notify(NotifySettings(on=NotifyOn.ALWAYS), news(3)) is False


# --------------------------------------------------------------------------- what


def results() -> list[RowResult]:
    out = [RowResult(row=n, status=Status.OK, phone=f"4477009001{n:02d}") for n in range(2, 40)]
    out += [RowResult(row=n, status=Status.INVALID, error_code="invalid-phone",
                      error=f"'+44 7700 9001{n:02d}' is not a possible number", phone="")
            for n in range(40, 47)]
    out.append(RowResult(row=47, status=Status.FAILED, error_code="retries-exhausted",
                         error="BSG did not accept City 'Leeds'"))
    return out


def test_the_message_has_counts_codes_and_rows_but_no_numbers_or_values() -> None:
    rows = results()
    counts = {s.value: sum(r.status is s for r in rows) for s in Status}
    msg = compose(RunNews("sync", "contacts.csv", 1, counts=counts,
                          error_codes={"invalid-phone": 7, "retries-exhausted": 1},
                          problem_rows=problem_rows(rows), duration_s=12.34,
                          report="/srv/contacts.report.xlsx"))
    assert msg.title == "bsg-sync sync contacts.csv: 8 rows need fixing (exit 1)"
    assert "46 rows: 38 ok, 7 invalid, 1 failed" in msg.body
    assert "top errors: invalid-phone (7), retries-exhausted (1)" in msg.body
    assert "row 40: invalid-phone - not a possible phone number" in msg.body
    assert "… and 3 more" in msg.body
    assert "duration: 12.3 s" in msg.body and "report: /srv/contacts.report.xlsx" in msg.body
    text = msg.title + msg.body
    assert "7700" not in text and "Leeds" not in text


def test_the_reason_of_a_stopped_run_is_told_with_numbers_masked() -> None:
    msg = compose(RunNews("sync", "c.csv", 3, reason="no contact with phone +44 7700 900123"))
    assert msg.failed and "aborted" in msg.title
    assert "7700" not in msg.body and "[number]" in msg.body


# --------------------------------------------------------------------------- where


def test_a_json_webhook_gets_one_message(webhook: Webhook) -> None:
    failed = deliver(NotifySettings(urls=(webhook.url,), **FAST), Message("T", "B", True))
    assert failed == []
    assert [(p["title"], p["message"], p["type"]) for p in webhook.posts] == [
        ("T", "B", "failure")]


def test_a_failing_receiver_is_retried(tmp_path: Path) -> None:
    hook = Webhook(fail=1)
    try:
        assert deliver(NotifySettings(urls=(hook.url,), **FAST), Message("T", "B", False)) == []
        assert len(hook.posts) == 1
    finally:
        hook.close()


def test_an_unreachable_receiver_is_reported_not_raised(webhook: Webhook) -> None:
    settings = NotifySettings(urls=(unreachable_url(), webhook.url), **FAST)
    failed = deliver(settings, Message("T", "B", True))
    assert len(failed) == 1 and failed[0].startswith("json://127.0.0.1:")
    assert len(webhook.posts) == 1  # the other receiver still got it


def test_email_over_smtp() -> None:
    controller, box = smtp_server()
    try:
        url = f"mailto://127.0.0.1:{controller.port}?from=bot@example.com&to=ops@example.com"
        assert deliver(NotifySettings(urls=(url,), **FAST), Message("Subject", "Body", True)) == []
    finally:
        controller.stop()
    (mail,) = box.mails
    assert (mail.mail_from, mail.rcpt_tos) == ("bot@example.com", ["ops@example.com"])
    assert b"Subject: Subject" in mail.content and b"Body" in mail.content


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for a test cert")
def test_email_over_smtp_with_starttls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    controller, box = smtp_server(tls)
    try:
        url = (f"mailtos://127.0.0.1:{controller.port}?from=bot@example.com&to=ops@example.com"
               "&mode=starttls&verify=no")
        assert deliver(NotifySettings(urls=(url,), **FAST), Message("TLS", "Body", True)) == []
    finally:
        controller.stop()
    assert len(box.mails) == 1 and b"Subject: TLS" in box.mails[0].content


def test_bad_urls_are_a_usage_error_and_secrets_are_hidden() -> None:
    with pytest.raises(UsageError, match="not a notification URL") as info:
        check_urls(["nonsense://hooks.example/T000/B000/XXXXSECRETXXXX"])
    assert "XXXXSECRETXXXX" not in str(info.value)
    assert check_urls(["json://127.0.0.1/x"]) == ("json://127.0.0.1/x",)
    assert urls_from_env(" json://a/x  mailto://b?to=c@d.e ") == ("json://a/x",
                                                                 "mailto://b?to=c@d.e")
