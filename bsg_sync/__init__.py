"""bsg-sync: keep a BSG contact book in step with spreadsheets."""

from __future__ import annotations

__version__ = "0.1.0"
