"""Tokens that expire: log in again whenever BSG refuses the token; give up only when tokens
are refused right after their login twice in a row."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from hostile_servers import ScriptedProxy, forward, status_only
from reliability_helpers import (
    EmulatorProcess,
    cli_env,
    make_world,
    mismatches,
    read_report,
    run_cli,
    sync_args,
)

from bsg_sync.client import BsgClient, RetryPolicy
from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.errors import AuthFailed

KEY = "live_relogin_tests"
SEED = Path(__file__).resolve().parent.parent / "sample_sheets" / "seed.json"


def _contact_id(emu: Emulator) -> int:
    with BsgClient(emu.url, KEY, policy=RetryPolicy.fast()) as client:
        return next(client.iter_contacts()).id


@pytest.mark.slow
def test_a_token_that_expires_during_retries_is_renewed_again() -> None:
    """401 → fresh login → two 503s whose backoff outlives the 1 s token → 401 again: that
    token was not refused at once, it expired; log in again and go on (this aborted the run,
    "rejected right after a fresh login")."""
    with Emulator(EmulatorConfig(token_ttl=1.0), seed=SEED) as emu:
        cid = _contact_id(emu)
        policy = RetryPolicy(backoff_initial=1.2, backoff_max=1.2)
        with ScriptedProxy(emu.url) as proxy, BsgClient(proxy.url, KEY, policy=policy) as client:
            client.login()
            time.sleep(1.1)
            proxy.script(f"/api/contacts/{cid}", forward, status_only(503), status_only(503))
            contact = client.get_contact(cid)
        assert contact is not None and contact.id == cid
        assert client.logins == 3
        gets = [p for m, p in proxy.seen if m == "GET"]
        assert len(gets) == 5  # 401, 503, 503, 401, 200


def test_tokens_refused_right_after_login_twice_end_the_call() -> None:
    with Emulator(EmulatorConfig(), seed=SEED) as emu, ScriptedProxy(emu.url) as proxy:
        proxy.script("/api/contacts/fields", *[status_only(401)] * 10)
        with BsgClient(proxy.url, KEY, policy=RetryPolicy.fast()) as client, \
                pytest.raises(AuthFailed, match="right after a fresh login"):
            client.list_fields()
        assert client.logins == 2
        assert len([p for _, p in proxy.seen if p.startswith("/api/contacts/fields")]) == 2


@pytest.mark.slow
def test_a_short_lived_token_and_server_errors_still_send_every_row(tmp_path: Path) -> None:
    """The issue's run (a 2 s token plus random 5xx), shorter: a 1 s token, 15 % 5xx."""
    world = make_world(tmp_path, 16)
    flags = ("--token-ttl", "1", "--fail-rate", "0.15", "--random-seed", "7")
    with EmulatorProcess(world.seed, *flags, log=world.dir / "emulator.log") as emu:
        done = run_cli(sync_args(world, emu.url, "--no-rate-limit", "--concurrency", "4"),
                       cli_env(world.state), timeout=110)
        statuses = Counter(r["status"] for r in read_report(world.report()))
        assert "right after a fresh login" not in done.stderr
        assert done.returncode in (0, 1), done.stderr
        assert set(statuses) <= {"ok", "failed"} and statuses["ok"] >= world.rows - 2, statuses
        if done.returncode == 0:
            assert mismatches(world, emu.contacts()) == []
