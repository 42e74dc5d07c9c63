"""Regenerate docs/screenshots/ (the web page's steps, shown in the README) from the browser test.

Run from the repository root: `python docs/make_screenshots.py`. It runs
tests/test_web_a11y.py::test_every_page_passes_axe_and_fits_a_phone with
BSG_SYNC_UPDATE_SCREENSHOT=1, which drives the real page in Debian's Chromium against the
bundled emulator on 127.0.0.1 and copies the step screenshots here only if every page passed
axe-core and fits a 390 px screen. Needs playwright and /usr/bin/chromium, as the test does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/test_web_a11y.py::test_every_page_passes_axe_and_fits_a_phone"


def main() -> int:
    env = {**os.environ, "BSG_SYNC_UPDATE_SCREENSHOT": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST]
    return subprocess.run(command, cwd=ROOT, env=env, timeout=600, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
