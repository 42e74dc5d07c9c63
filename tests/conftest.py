"""Shared test settings: a deterministic Hypothesis profile for CI."""

from __future__ import annotations

import os

from hypothesis import settings

# CI replays the same examples every run (a red build always means a change broke something);
# local runs keep exploring new inputs, and what they find becomes a pinned test.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
