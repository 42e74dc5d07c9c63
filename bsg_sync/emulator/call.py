"""One API call as the endpoint handlers see it, and what they answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bsg_sync.emulator.auth import Session
from bsg_sync.emulator.config import EmulatorConfig
from bsg_sync.emulator.store import Store

Reply = tuple[int, "dict[str, Any] | None"]
Answer = tuple[int, "dict[str, Any] | None", dict[str, str]]  # Reply plus response headers


@dataclass(frozen=True)
class Call:
    """A routed request: path ids in `ids`, the caller's session (None only for login)."""

    method: str
    path: str
    query: str
    body: bytes
    ids: tuple[int, ...]
    session: Session | None
    store: Store
    config: EmulatorConfig

    @property
    def test_mode(self) -> bool:
        return self.config.test_mode or bool(self.session and self.session.test_mode)
