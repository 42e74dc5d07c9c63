"""Slow servers and stops: every attempt has a total deadline, and a stop (Ctrl-C, SIGTERM)
ends login, refresh and waits as promptly as it ends sending."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile_servers import ScriptedProxy, TrickleServer, wait_for
from kit import Emulators
from reliability_helpers import (
    World,
    cli_env,
    make_world,
    read_report,
    run_cli,
    start_cli,
    sync_args,
)

from bsg_sync.client import BsgClient, RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.errors import Cancelled, TooSlow

KEY = "live_slow_servers"


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return make_world(tmp_path / "w", 8)


@pytest.fixture()
def emu(world: World, emulator: Emulators) -> Emulator:
    return emulator(world.seed)


def _trickle_lists(line: str) -> bool:
    """Trickle the contact list (what a refresh of a cold store reads), forward the rest."""
    return line.startswith("GET /api/contacts") and "/fields" not in line


def test_an_answer_trickled_byte_by_byte_ends_at_the_deadline(emu: Emulator) -> None:
    """One byte every 0.2 s never trips the 5 s per-read timeout; the 1 s deadline does."""
    policy = RetryPolicy(backoff_initial=0.0, backoff_max=0.0, timeout=5.0, deadline=1.0)
    with TrickleServer(0.2, upstream=emu.url, trickle=_trickle_lists) as slow, \
            BsgClient(slow.url, KEY, policy=policy) as client:
        client.login()
        t0 = time.monotonic()
        with pytest.raises(TooSlow, match=r"no complete answer from .* within 1 s"):
            client.count_contacts()
        elapsed = time.monotonic() - t0
    assert elapsed < 2.5  # one attempt: an answer that trickles once trickles again


def test_a_stop_ends_a_trickling_read_and_a_backoff_at_once(emu: Emulator) -> None:
    stop = threading.Event()
    slow_policy = RetryPolicy(backoff_initial=30.0, backoff_max=30.0, deadline=60.0)
    with TrickleServer(0.2, upstream=emu.url, trickle=_trickle_lists) as slow, \
            BsgClient(slow.url, KEY, policy=slow_policy, stop=stop) as client:
        client.login()
        threading.Timer(0.5, stop.set).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            client.count_contacts()
        assert time.monotonic() - t0 < 1.5
    stop.clear()
    with ScriptedProxy(emu.url) as failing, \
            BsgClient(failing.url, KEY, policy=slow_policy, stop=stop) as client:
        failing.script("/api/contacts", *[lambda _b: (503, "text/plain", b"busy")] * 3)
        client.login()
        threading.Timer(0.5, stop.set).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            client.count_contacts()  # 503, then a 15-30 s backoff that the stop ends
        assert time.monotonic() - t0 < 1.5
        assert len([p for _, p in failing.seen if p.startswith("/api/contacts")]) == 1


def _trickle_later_pages(line: str) -> bool:
    """Trickle the list's pages after the first (fetched by the pool's threads, four at a
    time), forward the first page and the rest."""
    return _trickle_lists(line) and "page%5Boffset%5D=0" not in line and "offset" in line


def _trickle_gets(line: str) -> bool:
    """Trickle the GET of one contact (a warm refresh, in worker threads)."""
    return line.startswith("GET /api/contacts/2485")


def _trickle_login(line: str) -> bool:
    return line.startswith("POST /api/auth/login")


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["login", "cold-list", "cold-list-pages", "warm-gets"])
def test_sigterm_during_a_trickling_refresh_exits_130_with_the_report(tmp_path: Path,
                                                                      phase: str) -> None:
    """A login or refresh stuck on an answer that trickles (one byte every 5 s) ends on
    SIGTERM within seconds: exit 130, every row in the report as not sent, the lock free
    again. Cold: the contact list, read by the main thread, or (1,200 contacts) its later
    pages, read by the list's worker threads; warm (a snapshot of 2 contacts): one GET per
    contact, read by worker threads."""
    warm = phase == "warm-gets"
    world = make_world(tmp_path / "w", 2 if warm else 1200 if phase == "cold-list-pages" else 8)
    trickle = {"login": _trickle_login, "cold-list": _trickle_lists,
               "cold-list-pages": _trickle_later_pages, "warm-gets": _trickle_gets}
    with Emulator(EmulatorConfig(), seed=world.seed) as emu:
        if warm:
            first = run_cli(sync_args(world, emu.url, "--dry-run"), cli_env(world.state, KEY))
            assert first.returncode == 0, first.stderr
        _sigterm_while_trickling(world, emu, trickle[phase])


def _sigterm_while_trickling(world: World, emu: Emulator, trickle: Callable[[str], bool]
                             ) -> None:
    with TrickleServer(5.0, upstream=emu.url, trickle=trickle) as slow:
        out = world.dir / "run.out"
        proc = start_cli(sync_args(world, slow.url, "--no-rate-limit"), cli_env(world.state,
                         key=KEY), out)
        try:
            assert wait_for(slow.trickled.is_set, 30), out.read_text()
            time.sleep(0.3)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(20)
            elapsed = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = out.read_text()
    assert code == 130, text
    assert elapsed < 3, text
    assert "Traceback" not in text
    assert "interrupted before anything was sent" in text
    report = read_report(world.report())
    assert sorted(r["row"] for r in report) == [w.row for w in world.wanted]
    assert Counter(r["status"] for r in report) == {"not_sent": world.rows}
    assert emu.stats()["writes"] == 0
    from bsg_sync.state import StateStore

    with StateStore(world.state) as store:
        store.acquire_lock()  # the killed run's lock is gone
