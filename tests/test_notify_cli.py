"""`sync --notify` end to end: the CLI against the emulator, alerts to a real JSON webhook and a
real SMTP server on 127.0.0.1; an alert never changes the run's exit code or report."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_notify import Webhook, smtp_server, unreachable_url

from bsg_sync.cli import cli
from bsg_sync.emulator import Emulator

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"
KEY = "live_notify_key_0123456789abcdef"


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    for name in ("contacts.csv", "contacts.toml"):
        shutil.copy2(SAMPLES / name, tmp_path / name)
    return tmp_path


def sync(emu: Emulator, work: Path, *extra: str, sheet: str = "contacts.csv",
         env: dict[str, str] | None = None) -> Result:
    args = ["sync", str(work / sheet), "--mapping", str(work / "contacts.toml"),
            "--state", str(work / "s.sqlite3"), "--api-url", emu.url,
            "--report", str(work / "r.jsonl"), "--no-rate-limit", *extra]
    base = {"BSG_API_KEY": KEY, "BSG_STATE": "", "BSG_API_URL": "", "BSG_SYNC_NOTIFY": ""}
    return CliRunner().invoke(cli, args, env={**base, **(env or {})}, catch_exceptions=False)


@pytest.fixture()
def hook() -> Iterator[Webhook]:
    h = Webhook()
    yield h
    h.close()


def test_a_run_with_problems_sends_one_message_with_the_counts(emu: Emulator, work: Path,
                                                               hook: Webhook) -> None:
    done = sync(emu, work, "--notify", hook.url)
    assert done.exit_code == 1
    (post,) = hook.posts
    assert post["title"] == "bsg-sync sync contacts.csv: 3 rows need fixing (exit 1)"
    body = post["message"]
    assert "42 rows: 11 ok, 28 unchanged, 2 invalid, 1 not_found" in body
    assert "top errors:" in body and "first rows to fix:" in body and "report: " in body
    assert KEY not in post["title"] + body and KEY[:8] not in body
    for digits in ("7501", "7763", "248400"):  # no phone number, no contact id
        assert digits not in body


def test_problems_sends_nothing_on_a_clean_run(emu: Emulator, work: Path, hook: Webhook) -> None:
    clean = work / "clean.csv"
    lines = (work / "contacts.csv").read_text(encoding="utf-8-sig").splitlines()
    clean.write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")
    done = sync(emu, work, "--notify", hook.url, sheet="clean.csv")
    assert done.exit_code == 0, done.stderr
    assert hook.posts == []
    always = sync(emu, work, "--notify", hook.url, "--notify-on", "always", sheet="clean.csv")
    assert always.exit_code == 0 and len(hook.posts) == 1
    assert hook.posts[0]["title"].endswith(": ok (exit 0)")


def test_a_failed_run_before_sending_alerts_too(emu: Emulator, work: Path, hook: Webhook) -> None:
    done = sync(emu, work, "--mapping", str(work / "missing.toml"),
                env={"BSG_SYNC_NOTIFY": hook.url})  # from the environment
    assert done.exit_code == 2
    (post,) = hook.posts
    assert post["type"] == "failure" and "(exit 2)" in post["title"]
    assert "missing.toml" in post["message"]


@pytest.mark.slow
def test_an_unreachable_receiver_changes_nothing(emu: Emulator, work: Path, tmp_path: Path,
                                                 hook: Webhook) -> None:
    plain = sync(emu, work)
    report = (work / "r.jsonl").read_text(encoding="utf-8")
    emu.reset()
    (work / "s.sqlite3").unlink()
    alerted = sync(emu, work, "--notify", unreachable_url())
    assert alerted.exit_code == plain.exit_code == 1
    assert (work / "r.jsonl").read_text(encoding="utf-8").count("\n") == report.count("\n")
    assert "could not deliver the alert to json://127.0.0.1:" in alerted.stderr
    assert alerted.stderr.strip().splitlines()[-1].startswith("42 rows:")  # the summary last


def test_mail_is_delivered_over_smtp(emu: Emulator, work: Path) -> None:
    controller, box = smtp_server()
    try:
        url = f"mailto://127.0.0.1:{controller.port}?from=bot@example.com&to=ops@example.com"
        assert sync(emu, work, "--notify", url).exit_code == 1
    finally:
        controller.stop()
    (mail,) = box.mails
    assert b"3 rows need fixing" in mail.content and KEY.encode() not in mail.content


def test_a_bad_notify_url_is_a_usage_error_before_anything_is_sent(emu: Emulator,
                                                                   work: Path) -> None:
    done = sync(emu, work, "--notify", "nonsense://x")
    assert done.exit_code == 2 and "not a notification URL" in done.stderr
    assert emu.stats()["requests"]["GET"] == 0
