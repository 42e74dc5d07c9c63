"""Fault injection (random and scripted) and BSG's duplicate-request throttle."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from bsg_sync.emulator.config import EmulatorConfig

SIMPLE_FAULTS = ("500", "502", "503", "429", "drop", "html", "truncated", "empty200", "huge")
TIMEOUT_FAULT = re.compile(r"timeout:(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Fault:
    """One fault to apply to a request: `kind` from SIMPLE_FAULTS or `timeout` (sleep `delay`)."""

    kind: str
    delay: float = 0.0


def parse_fault(spec: str) -> Fault:
    """`"503"`, `"drop"`, `"timeout:2.5"`, … -> Fault; ValueError for anything else."""
    if spec in SIMPLE_FAULTS:
        return Fault(spec)
    match = TIMEOUT_FAULT.fullmatch(spec)
    if match:
        return Fault("timeout", float(match.group(1)))
    raise ValueError(f"unknown fault {spec!r}: use one of {', '.join(SIMPLE_FAULTS)}, timeout:<s>")


class FaultPlan:
    """Decides the fault (if any) for each API request: scripted queue first, then the rates."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        self._random = random.Random(config.random_seed)
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def inject(self, *specs: str) -> None:
        faults = [parse_fault(s) for s in specs]
        with self._lock:
            self._queue.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def next_fault(self) -> Fault | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            return self._random_fault()

    def _random_fault(self) -> Fault | None:
        cfg, roll = self._config, self._random.random
        if cfg.drop_rate and roll() < cfg.drop_rate:
            return Fault("drop")
        if cfg.fail_rate and roll() < cfg.fail_rate:
            return Fault(self._random.choice(("500", "502", "503")))
        if cfg.throttle_rate and roll() < cfg.throttle_rate:
            return Fault("429")
        return None


class DuplicateThrottle:
    """BSG's limiter: the same write more than `limit` times within `window` seconds -> 429."""

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._seen: dict[tuple[str, str, bytes], deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, method: str, target: str, body: bytes) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:
                self._forget_older_than(now - self._window)
            stamps = self._seen.setdefault((method, target, body), deque())
            while stamps and stamps[0] <= now - self._window:
                stamps.popleft()
            if len(stamps) >= self._limit:
                return False
            stamps.append(now)
            return True

    def _forget_older_than(self, cutoff: float) -> None:
        self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > cutoff}

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
