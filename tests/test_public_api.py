"""The library API re-exported from `bsg_sync`, without making `import bsg_sync` heavier."""

from __future__ import annotations

import subprocess
import sys

import pytest

import bsg_sync
from bsg_sync import models, sync


def test_the_public_api_is_re_exported() -> None:
    from bsg_sync import Hooks, RowResult, Status, SyncOptions, run_sync

    assert (run_sync, SyncOptions, Hooks) == (sync.run_sync, sync.SyncOptions, sync.Hooks)
    assert (RowResult, Status) == (models.RowResult, models.Status)
    assert set(bsg_sync.__all__) >= {"run_sync", "SyncOptions", "Hooks", "RowResult", "Status"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bsg_sync.nope  # noqa: B018


def test_importing_the_package_loads_no_stage() -> None:
    code = ("import sys, bsg_sync; "
            "print(sorted(m for m in sys.modules if m.startswith('bsg_sync.') or m == 'requests'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"
