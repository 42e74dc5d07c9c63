"""bsg-sync: keep a BSG contact book in step with spreadsheets.

The library API, for a script or a scheduler that does not want the command line::

    from bsg_sync import Hooks, SyncOptions, run_sync
    outcome = run_sync(SyncOptions(sheet=..., state=..., api_url=...), api_key, Hooks())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Hooks", "RowResult", "Status", "SyncOptions", "__version__", "run_sync"]

if TYPE_CHECKING:
    from bsg_sync.models import RowResult, Status
    from bsg_sync.sync import Hooks, SyncOptions, run_sync

# Loaded on first use: `import bsg_sync` (which every `bsg-sync --help` does) stays as cheap
# as it was, instead of importing requests, the readers and the state store.
_HOMES = {"run_sync": "bsg_sync.sync", "SyncOptions": "bsg_sync.sync", "Hooks": "bsg_sync.sync",
          "RowResult": "bsg_sync.models", "Status": "bsg_sync.models"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bsg_sync' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
