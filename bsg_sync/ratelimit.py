"""A requests-per-second cap shared by every thread that talks to BSG."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Token bucket of capacity 1 shared by all workers: grants are >= 1/rate seconds apart,
    so no one-second window holds more than rate + 1 grants, and idle time builds no burst."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        cancel: threading.Event | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"the request rate must be positive, not {rate!r}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._cancel = cancel
        self._lock = threading.Lock()
        self._next = float("-inf")

    def reserve(self) -> float:
        """Claim the next free slot; return how many seconds to wait until it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now

    def acquire(self, *, cancellable: bool = True) -> bool:
        """Wait for a slot; False when cancellable and the cancel event was set meanwhile."""
        delay = self.reserve()
        if self._cancel is None or not cancellable:
            if delay > 0:
                time.sleep(delay)
            return True
        if delay > 0:
            return not self._cancel.wait(delay)
        return not self._cancel.is_set()

    def pace(self) -> None:
        """Wait for a slot even when cancelled: a row already begun is finished."""
        self.acquire(cancellable=False)


