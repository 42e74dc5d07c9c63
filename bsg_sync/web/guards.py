"""Who may talk to the page: Host checks against DNS rebinding, and a per-client brake on
password guessing (pure logic; the app turns the answers into 421 / 429 responses)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def split_host(value: str) -> tuple[str, int | None] | None:
    """`Example.com:8080` -> ("example.com", 8080); `[::1]` -> ("::1", None); None if malformed."""
    text = value.strip()
    if not text or any(c in text for c in "/?#@\\ \t"):
        return None
    try:
        parts = urlsplit(f"//{text}")
        port = parts.port
    except ValueError:
        return None
    name = (parts.hostname or "").rstrip(".")
    if not name or (":" in name and not text.startswith("[")):
        return None
    return name, port


def parse_allowed_hosts(values: Iterable[str]) -> frozenset[tuple[str, int | None]]:
    """--allowed-host values (each may hold several, space-separated); ValueError for a bad one."""
    allowed: set[tuple[str, int | None]] = set()
    for value in values:
        for word in value.split():
            parsed = split_host(word)
            if parsed is None:
                raise ValueError(f"{word!r} is not a host name (e.g. bsg.example.com or host:8080)")
            allowed.add(parsed)
    return frozenset(allowed)


def host_allowed(
    host_header: str | None,
    server_port: int,
    scheme: str,
    allowed: frozenset[tuple[str, int | None]] = frozenset(),
) -> bool:
    """Loopback names on the port the server is bound to, or an allow-listed name.

    An allow-list entry without a port matches any port (a reverse proxy in front changes
    it); one with a port matches only that port."""
    parsed = split_host(host_header or "")
    if parsed is None:
        return False
    name, port = parsed
    port_or_default = port if port is not None else _DEFAULT_PORTS.get(scheme, 80)
    if name in LOOPBACK_NAMES and port_or_default == server_port:
        return True
    return (
        (name, None) in allowed
        or (name, port) in allowed
        or (port is None and (name, port_or_default) in allowed)
    )


# --------------------------------------------------------------------------- password guessing


@dataclass(frozen=True)
class GuessPolicy:
    """How wrong passwords slow a client down: after the n-th failure the next try waits
    base_delay_s * 2**(n-1) (at most max_delay_s); `lockout_after` failures within
    `window_s` lock the client out for `lockout_s`, even with the right password."""

    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    lockout_after: int = 10
    window_s: float = 600.0
    lockout_s: float = 900.0
    max_clients: int = 10_000  # tracked addresses; the oldest are forgotten beyond it


@dataclass
class _Client:
    failures: deque[float] = field(default_factory=deque)
    streak: int = 0  # failures since the last success
    wait_until: float = 0.0
    locked_until: float = 0.0
    last_seen: float = 0.0
    pending: int = 0  # passwords being checked right now (begun, not yet failed/succeeded)


class GuessLimiter:
    """Counts wrong passwords per client address; thread-safe."""

    def __init__(
        self, policy: GuessPolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or GuessPolicy()
        self._clock = clock
        self._clients: dict[str, _Client] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Whole seconds this client must wait before a password is even checked, else None."""
        now = self._clock()
        with self._lock:
            state = self._clients.get(client)
            if state is None:
                return None
            until = max(state.wait_until, state.locked_until)
        return max(1, math.ceil(until - now)) if until > now else None

    def begin(self, client: str) -> int | None:
        """Before checking a password: whole seconds to wait (check nothing), or None, and the
        check is counted as pending until `failed` or `succeeded`.

        Concurrent guesses cannot slip past the count: checks in flight use up the budget
        left before a lockout, and after a failure only one check at a time is allowed."""
        now, p = self._clock(), self.policy
        with self._lock:
            state = self._clients.setdefault(client, _Client())
            state.last_seen = now
            until = max(state.wait_until, state.locked_until)
            if until > now:
                return max(1, math.ceil(until - now))
            recent = sum(1 for t in state.failures if t > now - p.window_s)
            if state.pending >= p.lockout_after - recent or (state.streak and state.pending):
                return 1
            state.pending += 1
            self._forget_oldest()
            return None

    def failed(self, client: str) -> tuple[int, bool]:
        """Record a wrong password; (failures in the window, whether it now locks the client)."""
        now, p = self._clock(), self.policy
        with self._lock:
            state = self._clients.setdefault(client, _Client())
            state.pending = max(0, state.pending - 1)
            state.last_seen = now
            state.failures.append(now)
            while state.failures and state.failures[0] <= now - p.window_s:
                state.failures.popleft()
            state.streak += 1
            delay = min(p.base_delay_s * 2 ** min(state.streak - 1, 60), p.max_delay_s)
            state.wait_until = now + delay
            locks = len(state.failures) >= p.lockout_after
            if locks:
                state.locked_until = now + p.lockout_s
                state.failures.clear()
            self._forget_oldest()
            return (p.lockout_after if locks else len(state.failures)), locks

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _forget_oldest(self) -> None:
        excess = len(self._clients) - self.policy.max_clients
        if excess > 0:  # forget clients that are not locked out first, the oldest first
            now = self._clock()
            order = sorted(
                self._clients,
                key=lambda k: (self._clients[k].locked_until > now, self._clients[k].last_seen),
            )
            for key in order[:excess]:
                del self._clients[key]
