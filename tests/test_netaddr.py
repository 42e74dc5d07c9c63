"""Loopback detection, shared by the client's plain-http guard, the web page and the emulator."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bsg_sync.netaddr import is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("LocalHost", True), ("127.0.0.1", True), ("127.3.4.5", True),
     ("::1", True), ("0.0.0.0", False), ("10.0.0.1", False), ("::", False),
     ("example.com", False), ("", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_web_page_and_the_client_do_not_load_the_emulator() -> None:
    code = ("import sys, bsg_sync.web, bsg_sync.client; "
            "print(sorted(m for m in sys.modules if m.startswith('bsg_sync.emulator')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"
