"""The emulator's behaviour and fault switches, as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass

PUT_SEMANTICS = ("merge", "replace")


@dataclass(frozen=True)
class EmulatorConfig:
    """Switches for one emulator instance; the defaults behave like a healthy BSG account.

    `api_key` set: only that key logs in; None: any key starting `live_` or `test_` does.
    Rates are probabilities per API request (0.0-1.0). `token_ttl` is in seconds (None: 30 days).
    `dup_limit` identical writes are allowed per `dup_window` seconds (BSG: 3 per 10 s).
    `attach_max_groups` is the list cap per attach/detach call: 100 per BSG's spec and SDK, 20
    per its docs (reference §4.7, §11 #16); contacts per call are always capped at 200.
    HLR (v1, under /rest/hlr/): `hlr_api_key` set: only that X-API-KEY; None: any non-empty one.
    `hlr_balance` EUR to start with; async lookups stay `sent` for `hlr_delay` seconds; at most
    `hlr_max_batch` numbers per create (error 12) and `hlr_max_pending` lookups still `sent`
    (error 11). BSG documents neither limit; these defaults are conservative guesses.
    """

    api_key: str | None = None
    latency_ms: float = 0
    fail_rate: float = 0.0
    throttle_rate: float = 0.0
    drop_rate: float = 0.0
    put_semantics: str = "merge"
    token_ttl: float | None = None
    test_mode: bool = False
    verified_phones: frozenset[int] = frozenset()
    random_seed: int | None = None
    dup_limit: int = 3
    dup_window: float = 10.0
    attach_max_groups: int = 100
    hlr_api_key: str | None = None
    hlr_balance: float = 10.0
    hlr_delay: float = 0.5
    hlr_max_batch: int = 100
    hlr_max_pending: int = 1000
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.put_semantics not in PUT_SEMANTICS:
            raise ValueError(f"put_semantics must be one of {PUT_SEMANTICS}")
        for name in ("fail_rate", "throttle_rate", "drop_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("attach_max_groups", "hlr_max_batch", "hlr_max_pending"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.hlr_balance < 0 or self.hlr_delay < 0:
            raise ValueError("hlr_balance and hlr_delay must be >= 0")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        object.__setattr__(self, "verified_phones", frozenset(int(p) for p in self.verified_phones))
