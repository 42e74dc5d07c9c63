"""A verification killed mid-way resumes by reference: no number is ever paid for twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kit import Emulators

from bsg_sync.client import RetryPolicy
from bsg_sync.emulator import Emulator
from bsg_sync.hlr import HlrClient
from bsg_sync.state import StateStore
from bsg_sync.verify import VerifyOptions, verify_numbers

ROOT = Path(__file__).resolve().parent.parent
HLR_KEY = "hlrResumeKey42"
NUMBERS = [f"4477009002{i:02d}" for i in range(12)]
SEED: dict[str, list[object]] = {"fields": [], "groups": [], "contacts": []}


@pytest.fixture()
def emu(tmp_path: Path, emulator: Emulators) -> Emulator:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    return emulator(seed, hlr_api_key=HLR_KEY, hlr_delay=1.5, hlr_max_batch=5)


def _start(emu: Emulator, work: Path) -> subprocess.Popen[str]:
    sheet = work / "sheet.csv"
    sheet.write_text("phone\n" + "\n".join(NUMBERS) + "\n")
    (work / "sheet.toml").write_text('[columns]\n"phone" = "phone"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BSG_API_KEY": "live_resume",
           "BSG_HLR_API_KEY": HLR_KEY}
    for name in ("BSG_STATE", "BSG_API_URL", "BSG_HLR_URL"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "bsg_sync", "verify", str(sheet), "--verify", "all",
         "--state", str(work / "state.sqlite3"), "--api-url", emu.url, "--hlr-url",
         emu.url + "/rest", "--hlr-batch", "5", "--hlr-poll-interval", "0.05", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(check: object, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.01)


@pytest.mark.slow
def test_sigkill_while_polling_then_rerun_pays_each_number_once(emu: Emulator,
                                                                tmp_path: Path) -> None:
    proc = _start(emu, tmp_path)
    try:
        _wait_for(lambda: emu.hlr_stats()["requests"].get("get", 0) > 0)  # polling has begun
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert emu.hlr_stats()["numbers"] == dict.fromkeys(NUMBERS, 1)
    again = _start(emu, tmp_path)
    out, err = again.communicate(timeout=30)
    assert again.returncode == 0, err
    body = json.loads(out)
    assert body["lookups"] == 0 and len(body["results"]) == len(NUMBERS)
    assert all(r["verify_status"] != "sent" for r in body["results"])
    assert emu.hlr_stats()["numbers"] == dict.fromkeys(NUMBERS, 1)  # none created twice


def test_killed_between_journal_and_answer_resumes_by_reference(emu: Emulator,
                                                                tmp_path: Path) -> None:
    """The journal holds references without ids: one create reached BSG, one did not."""
    with HlrClient(emu.url + "/rest", HLR_KEY, policy=RetryPolicy.fast()) as hlr, \
            StateStore(tmp_path / "s.sqlite3") as store:
        vid, token = store.open_verification("tok12345")
        reached, lost = NUMBERS[0], NUMBERS[1]
        store.journal_lookups(vid, [(reached, token + reached), (lost, token + lost)])
        hlr.create([(reached, token + reached)])  # its answer never got journalled
        out = verify_numbers(hlr, store, NUMBERS[:3], VerifyOptions(poll_interval=0.05))
        assert emu.hlr_stats()["numbers"] == dict.fromkeys(NUMBERS[:3], 1)
        assert sorted(out.results) == sorted(NUMBERS[:3])
        assert out.quote.numbers == (NUMBERS[2],)  # the journalled two are not priced again
