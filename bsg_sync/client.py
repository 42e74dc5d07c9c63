"""The BSG One-API client: session, auth, timeouts, retries (the only module importing requests).

INTERFACE STUB — the signatures below are the contract other modules code against.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bsg_sync.models import Contact, Field, Group

DEFAULT_API_URL = "https://one-api.bsg.world"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Tests use RetryPolicy.fast() (zero waits)."""

    max_attempts: int = 6
    backoff_initial: float = 0.5  # seconds, exponential with jitter
    backoff_max: float = 30.0
    retry_after_cap: float = 60.0  # cap on an honoured Retry-After
    duplicate_window: float = 10.0  # identical writes: at most 3 per this many seconds
    timeout: float = 30.0  # per HTTP call (connect + read)

    @classmethod
    def fast(cls) -> RetryPolicy:
        return cls(backoff_initial=0.0, backoff_max=0.0, retry_after_cap=0.0,
                   duplicate_window=0.0, timeout=5.0)


class ApiError(Exception):
    """A failed API call. `message` is BSG's flattened text; attempts/status for the report."""

    code = "http-error"

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.attempts = attempts


class AuthFailed(ApiError):  # 401 after one re-login, or 422 "API Key not found" at login
    code = "auth"


class NotFound(ApiError):  # 404, or 422 with "Invalid contact id" / "... not found"
    code = "not-found"


class ValidationFailed(ApiError):  # other 422 / 400 (code becomes f"http-{status}")
    code = "http-422"


class ModeForbidden(ApiError):  # 403 "This action is unauthorized for your mode"
    code = "test-mode"


class Throttled(ApiError):  # 429 still failing after retries
    code = "retries-exhausted"


class ServerError(ApiError):  # 5xx still failing after retries
    code = "retries-exhausted"


class TransportError(ApiError):  # connection refused/dropped, timeout, bad body, after retries
    code = "retries-exhausted"


@dataclass(frozen=True)
class CallResult:
    """A successful call: the parsed value plus what the report needs."""

    contact: Contact
    attempts: int
    http_status: int


def parse_contact(obj: dict[str, Any]) -> Contact:
    """Normalise a contact object from the wire (fields object / [] / list of {id,value})."""
    raise NotImplementedError


def contact_body(contact: Contact) -> dict[str, Any]:
    """Wire body for PUT/POST: {"phone": int, "fields": [{"id", "value"}], "groups": [ids]}."""
    raise NotImplementedError


class BsgClient:
    """One session shared by all worker threads (thread-safe)."""

    def __init__(self, base_url: str, api_key: str, *, policy: RetryPolicy | None = None,
                 pool_size: int = 8, allow_insecure_http: bool = False) -> None:
        raise NotImplementedError

    # counters for the run summary
    requests_sent: int
    retries: int

    def login(self) -> None: ...
    def close(self) -> None: ...
    def list_fields(self) -> list[Field]: ...
    def list_groups(self) -> list[Group]: ...
    def get_contact(self, contact_id: int) -> Contact | None: ...  # None when not found
    def iter_contacts(self, *, page_limit: int = 500) -> Iterator[Contact]: ...
    def count_contacts(self) -> int: ...  # `total` of GET /api/contacts?page[limit]=15
    def find_by_phone(self, phone: str) -> Contact | None: ...
    def update_contact(self, contact_id: int, body: dict[str, Any]) -> CallResult: ...
    def create_contact(self, body: dict[str, Any]) -> CallResult: ...
    def detach(self, contact_ids: Sequence[int], group_ids: Sequence[int]) -> int: ...
