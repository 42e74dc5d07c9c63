"""Shared test kit: the emulator and web page fixtures (types in kit.py), and Hypothesis's profile.

``emulator(seed=…, **config)`` starts a real emulator on 127.0.0.1 (keyword arguments are
``EmulatorConfig`` fields) and stops it when the test ends; ``module_emulator`` is the same
for module-scoped fixtures (a shared emulator that each test resets). ``emu`` is the sample
account (sample_sheets/seed.json); ``app`` the web page on ``emu`` (``web_app(emu, **kw)`` for
other settings) and ``client`` a browser on it; ``serve_app(app)`` puts an app on a real socket.
A test file overrides one of them to vary it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings
from kit import SAMPLE_SEED, Emulators, ServeApp, WebApp

from bsg_sync.emulator import Emulator

# CI replays the same examples every run (a red build always means a change broke something);
# local runs keep exploring new inputs, and what they find becomes a pinned test.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def emulator() -> Iterator[Emulators]:
    emulators = Emulators()
    yield emulators
    emulators.stop_all()


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[Emulators]:
    emulators = Emulators()
    yield emulators
    emulators.stop_all()


@pytest.fixture
def emu(emulator: Emulators) -> Emulator:
    return emulator(SAMPLE_SEED)


# ------------------------------------------------------------------ the web page

@pytest.fixture
def web_app(tmp_path: Path, emulator: Emulators) -> Iterator[WebApp]:
    """``web_helpers.make_app(emu, tmp_path, **kw)``; each app's services close at the end,
    before the test's emulators stop (this fixture depends on ``emulator`` for that order)."""
    from web_helpers import make_app

    from bsg_sync.web.app import services

    apps: list[Flask] = []

    def start(emu: Emulator, **kw: Any) -> Flask:
        apps.append(make_app(emu, tmp_path, **kw))
        return apps[-1]

    yield start
    for app in apps:
        services(app).close()


@pytest.fixture
def app(web_app: WebApp, emu: Emulator) -> Flask:
    return web_app(emu)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def serve_app(web_app: WebApp) -> Iterator[ServeApp]:
    """Serves an app on 127.0.0.1 with werkzeug's threaded server (as `serve` does); each
    server stops when the test ends, before the apps' services close."""
    from werkzeug.serving import make_server

    servers: list[Any] = []

    def serve(app: Flask) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
