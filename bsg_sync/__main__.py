"""Run the CLI as `python -m bsg_sync`."""

from __future__ import annotations

from bsg_sync.cli import main

main()
