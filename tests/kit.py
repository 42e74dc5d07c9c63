"""The test kit's types, for annotations in test files (its fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from bsg_sync.emulator import Emulator, EmulatorConfig
from bsg_sync.emulator.seed import Seed

SAMPLE_SEED = Path(__file__).resolve().parent.parent / "sample_sheets" / "seed.json"

WebApp = Callable[..., Flask]
"""``web_app(emu, **kw)``: ``web_helpers.make_app`` whose services close when the test ends."""

ServeApp = Callable[[Flask], str]
"""``serve_app(app)``: the app on a real socket on 127.0.0.1; its base URL."""


class Emulators:
    """Starts emulators on demand (``emulator(seed, token_ttl=0)``) and stops them all.

    Keyword arguments are ``EmulatorConfig`` fields; each emulator serves on 127.0.0.1 on a
    free port in a thread. ``emu.stop()`` ends one early (a closed port); stopping twice is
    harmless."""

    def __init__(self) -> None:
        self._started: list[Emulator] = []

    def __call__(self, seed: Seed = None, **config: Any) -> Emulator:
        emu = Emulator(EmulatorConfig(**config), seed=seed).start()
        self._started.append(emu)
        return emu

    def stop_all(self) -> None:
        while self._started:
            self._started.pop().stop()
