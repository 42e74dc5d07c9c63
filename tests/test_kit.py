"""The test kit itself: emulators start with the asked settings and are all stopped after."""

from __future__ import annotations

import json
import socket

import pytest
import requests
from kit import SAMPLE_SEED, Emulators

from bsg_sync.emulator import Emulator


def _refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, int(port))) != 0


def test_each_emulator_gets_its_seed_and_settings_and_stop_all_closes_every_port() -> None:
    emulators = Emulators()
    plain = emulators()
    sample = emulators(SAMPLE_SEED, api_key="live_kit", latency_ms=5)
    assert (plain.config.api_key, sample.config.api_key) == (None, "live_kit")
    assert sample.config.latency_ms == 5 and plain.config.latency_ms == 0
    assert plain.stats()["contacts"] == 0 and sample.stats()["contacts"] > 0
    assert requests.get(f"{sample.url}/_emulator/stats", timeout=5).status_code == 200
    emulators.stop_all()
    assert _refused(plain.url) and _refused(sample.url)
    emulators.stop_all()  # nothing left to stop: harmless


def test_a_misspelt_setting_is_refused_not_ignored() -> None:
    with pytest.raises(TypeError, match="latency"):
        Emulators()(latency=5)


def test_an_emulator_stopped_early_is_stopped_again_harmlessly(emulator: Emulators) -> None:
    emu = emulator(SAMPLE_SEED)
    emu.stop()
    assert _refused(emu.url)


def test_the_sample_account_fixture_is_the_sample_seed(emu: Emulator) -> None:
    seeded = json.loads(SAMPLE_SEED.read_text(encoding="utf-8"))["contacts"]
    assert sorted(c["id"] for c in emu.contacts()) == sorted(c["id"] for c in seeded) != []
