"""Uploaded sheets: each in its own 0700 temp dir under a random name, deleted when done."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import IO, Any

from bsg_sync.errors import InputFileError
from bsg_sync.models import Account
from bsg_sync.reader import EXCEL_EXTENSIONS, TEXT_EXTENSIONS
from bsg_sync.sync import SyncOutcome
from bsg_sync.web.columns import ColumnProfile
from bsg_sync.web.layout import Layout

ALLOWED_EXTENSIONS = frozenset(TEXT_EXTENSIONS | EXCEL_EXTENSIONS)
_COPY_CHUNK = 1 << 20


@dataclass
class Upload:
    """One uploaded sheet and what the page has learnt about it so far."""

    token: str
    dir: Path
    sheet_path: Path
    filename: str  # as the person named it; shown (escaped), never used as a path
    created: float
    owner: str = ""  # the browser session that uploaded it; only that session may use it
    headers: tuple[str, ...] = ()
    rows: int = 0
    account: Account | None = None
    mapping_path: Path | None = None
    create_missing: bool = False
    preview: SyncOutcome | None = None
    result: SyncOutcome | None = None
    files: dict[str, Path] = field(default_factory=dict)  # download kind -> path
    draft: Any = None  # the mapping form as last posted (kept when it needs a fix)
    draft_error: str | None = None
    applied_at: str | None = None  # local time the apply finished
    layout: Layout | None = None  # the tab and header row read (None: not read yet)
    undo_of: int | None = None  # an undo of this run (no sheet: the state store's journal)
    profiles: tuple[ColumnProfile, ...] = ()  # samples and value kinds of each column
    type_warnings: tuple[str, ...] = ()  # what the mapping page warned of (shown on the preview)

    @property
    def stem(self) -> str:
        return PurePath(self.filename).stem or "sheet"

    @property
    def is_text(self) -> bool:
        return self.sheet_path.suffix in TEXT_EXTENSIONS

    def private_path(self, name: str) -> Path:
        return self.dir / name

    def forget_sheet(self) -> None:
        """Delete the uploaded file itself (reports stay until the upload expires)."""
        self.sheet_path.unlink(missing_ok=True)


def display_name(raw: str | None) -> str:
    """The base name a browser sent (some send a full Windows path), at most 200 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:200] or "sheet"


class UploadStore:
    """All live uploads, under one private temp dir that is removed on close."""

    def __init__(self, root: Path | None = None, ttl_s: float = 4 * 3600) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bsg-sync-web-", dir=root))
        os.chmod(self.root, 0o700)
        self.ttl_s = ttl_s
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def add(self, filename: str, stream: IO[bytes], owner: str = "") -> Upload:
        """Store the stream under a random name; InputFileError for a type we cannot read."""
        name = display_name(filename)
        suffix = PurePath(name).suffix.lower()
        if suffix not in ALLOWED_EXTENSIONS:
            allowed = ", ".join(sorted(e.lstrip(".").upper() for e in ALLOWED_EXTENSIONS))
            raise InputFileError(
                f"{name} is not a spreadsheet this page can read; upload one of: {allowed}"
            )
        folder = Path(tempfile.mkdtemp(prefix="u-", dir=self.root))  # 0700
        sheet = folder / f"{secrets.token_hex(16)}{suffix}"
        fd = os.open(sheet, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(stream, out, _COPY_CHUNK)
        upload = Upload(secrets.token_urlsafe(24), folder, sheet, name, time.monotonic(), owner)
        with self._lock:
            self._uploads[upload.token] = upload
        return upload

    def add_undo(self, run_id: int, owner: str) -> Upload:
        """A private place for the undo of a run: its preview, its result and their reports."""
        folder = Path(tempfile.mkdtemp(prefix="u-", dir=self.root))  # 0700
        name = f"undo of run {run_id}"
        upload = Upload(
            secrets.token_urlsafe(24), folder, folder / "no-sheet", name, time.monotonic(),
            owner, undo_of=run_id,
        )
        with self._lock:
            self._uploads[upload.token] = upload
        return upload

    def get(self, token: str) -> Upload | None:
        with self._lock:
            return self._uploads.get(token)

    def name_of_sheet(self, sheet: str) -> str | None:
        """The person's file name for a stored sheet path (as a run records it), if still known."""
        with self._lock:
            return next(
                (u.filename for u in self._uploads.values() if str(u.sheet_path) == sheet), None
            )

    def discard(self, token: str) -> None:
        with self._lock:
            upload = self._uploads.pop(token, None)
        if upload is not None:
            shutil.rmtree(upload.dir, ignore_errors=True)

    def expire(self, busy: set[str] | frozenset[str] = frozenset()) -> int:
        """Delete uploads older than the time-to-live (not those with a run in progress)."""
        cutoff = time.monotonic() - self.ttl_s
        with self._lock:
            old = [t for t, u in self._uploads.items() if u.created < cutoff and t not in busy]
        for token in old:
            self.discard(token)
        return len(old)

    def close(self) -> None:
        with self._lock:
            self._uploads.clear()
        shutil.rmtree(self.root, ignore_errors=True)
