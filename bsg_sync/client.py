"""The BSG One-API client: session, auth, timeouts, retries (the only module importing requests)."""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
)
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from bsg_sync import __version__, wire
from bsg_sync.errors import (
    ApiCallError,
    AuthFailed,
    Cancelled,
    NotFound,
    ServerError,
    Throttled,
    TooSlow,
    TransportError,
    Unreachable,
    UsageError,
)
from bsg_sync.models import Contact, Field, Group
from bsg_sync.netaddr import is_loopback
from bsg_sync.ratelimit import RateLimiter
from bsg_sync.scrub import add_secret

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://one-api.bsg.world"
USER_AGENT = f"bsg-sync/{__version__}"
MAX_BODY_BYTES = 5 * 1024 * 1024  # a 2xx body larger than this is refused as a transport error
PAGE_LIMIT_MAX = 500
ATTACH_MAX_CONTACTS = 200  # per POST /api/groups/attach|detach
ATTACH_MAX_GROUPS = 20  # the docs' limit (the spec allows 100): the safe minimum
NO_KEY = "no API key: set BSG_API_KEY or pass --api-key-file PATH"
DUPLICATE_LIMIT = 3  # BSG's duplicate throttle: identical writes per duplicate_window

LOGIN_PATH = "/api/auth/login"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Tests use RetryPolicy.fast() (zero waits)."""

    max_attempts: int = 6
    # Before retry n: min(max, initial * factor ** (n - 1)) seconds, times a jitter in
    # [0.5, 1]. A lone 5xx mostly clears at once, so the first retry comes after 0.05-0.1 s;
    # tripling keeps the whole chain (6-12 s) as long as a short outage needs. A run's last
    # row is as late as its longest chain: 0.5 s doubling made a 3-fault chain 1.3-2.6 s.
    backoff_initial: float = 0.1
    backoff_factor: float = 3.0
    backoff_max: float = 30.0
    retry_after_cap: float = 60.0  # cap on an honoured Retry-After
    duplicate_window: float = 10.0  # identical writes: at most 3 per this many seconds
    timeout: float = 30.0  # per socket operation (connect, each read)
    # the whole answer of one attempt, however slowly it trickles in; an answer slower than
    # this is not retried (the same server would trickle again)
    deadline: float = 60.0

    @classmethod
    def fast(cls) -> RetryPolicy:
        return cls(backoff_initial=0.0, backoff_max=0.0, retry_after_cap=0.0,
                   duplicate_window=0.0, timeout=5.0, deadline=10.0)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter before retry number `attempt` (1-based)."""
        ceiling = min(self.backoff_max,
                      self.backoff_initial * self.backoff_factor ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


_RETRYABLE = (Throttled, ServerError, TransportError)
# Until the API has answered once, a refused connection is a wrong URL or a down service:
# say so in seconds instead of backing off for a minute.
UNREACHABLE_ATTEMPTS = 2
# A token refused this soon after its login was not expired: the key or the session is
# wrong. Two such refusals in a row end the run; any other 401 just means log in again.
FRESH_TOKEN_SECONDS = 1.0


@dataclass(frozen=True)
class CallResult:
    """A successful call: the parsed value plus what the report needs."""

    contact: Contact
    attempts: int
    http_status: int
    groups_left_out: frozenset[int] = frozenset()  # over the 100-id cap: attach separately


@dataclass(frozen=True)
class _Reply:
    """A non-retryable HTTP answer: its status and its JSON object (or {})."""

    status: int
    payload: dict[str, Any]
    attempts: int
    token: str | None
    token_age: float = 0.0  # seconds between the token's login and this answer's request


def _retry_after(value: str | None, cap: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (ValueError, TypeError):
            return None
    return max(0.0, min(seconds, cap))


# ---------------------------------------------------------------- safety checks


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    """The base URL without a trailing slash; refuse plain http to a non-loopback host."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the API URL {base_url!r} must start with https:// and name a host")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ValueError(
            f"refusing plain http to {parts.hostname}: the API key would travel unencrypted; "
            "use https:// (plain http is only allowed to 127.0.0.1/localhost)"
        )
    return base_url.rstrip("/")


class _Secret:
    """Holds the API key so that no repr, traceback local or log line can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<api key hidden>"

    __str__ = __repr__


class _DuplicateGuard:
    """Spaces identical writes so that at most 3 go out per window (BSG's duplicate throttle)."""

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self._window = window
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str) -> float:
        """Book a send slot for `key`; return how long to wait before sending."""
        if self._window <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            times = self._sent.setdefault(key, deque())
            while times and times[0] <= now - self._window:
                times.popleft()
            slot = now
            if len(times) >= DUPLICATE_LIMIT:
                slot = max(now, times[-DUPLICATE_LIMIT] + self._window)
            times.append(slot)
            self._prune(now)
            return slot - now

    def _prune(self, now: float) -> None:
        if len(self._sent) > 10_000:
            stale = [k for k, t in self._sent.items() if not t or t[-1] <= now - self._window]
            for k in stale:
                del self._sent[k]


# ---------------------------------------------------------------- HTTP plumbing


# ---------------------------------------------------------------- deadlines and stops


class _Ticket:
    """One HTTP attempt the watchdog may cut: its socket (once connected) and its limit."""

    __slots__ = ("cut", "deadline", "lock", "reason", "sock")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline  # time.monotonic() value
        self.sock: socket.socket | None = None
        self.cut = False
        self.reason = ""  # "deadline" or "stop"
        self.lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        with self.lock:
            self.sock = sock
            if self.cut:
                _shut(sock)

    def cut_now(self, reason: str) -> None:
        with self.lock:
            if self.cut:
                return
            self.cut, self.reason = True, reason
            _shut(self.sock)


def _shut(sock: socket.socket | None) -> None:
    """Wake a thread blocked reading this socket (closing it would not, shutdown does)."""
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed: nothing to wake
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the fd itself, under any TLS layer


_attempt = threading.local()  # the _Ticket of the attempt this thread is making


class _WatchedConnectionMixin:
    """Hands the socket of each request to the attempt's ticket, so it can be cut."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        ticket = getattr(_attempt, "ticket", None)
        if ticket is not None:
            ticket.attach(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedTlsPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool,
                                                   "https": _WatchedTlsPool}


class _Watchdog:
    """Cuts attempts past their deadline and, once a stop is asked, everything still on the
    wire when `grace` has passed (0 before sending; the executor's drain while sending)."""

    TICK = 0.05  # seconds between checks

    def __init__(self, stop: threading.Event | None) -> None:
        self.stop = stop
        self.grace = 0.0
        self._stopped_at: float | None = None
        self._active: set[_Ticket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def abandon_at(self) -> float | None:
        """When (monotonic) everything is given up; None while no stop was asked."""
        if self.stop is None or not self.stop.is_set():
            return None
        with self._lock:
            if self._stopped_at is None:
                self._stopped_at = time.monotonic()
            return self._stopped_at + self.grace

    def abandoned(self) -> bool:
        at = self.abandon_at()
        return at is not None and time.monotonic() >= at

    def watch(self, ticket: _Ticket) -> None:
        with self._lock:
            self._active.add(ticket)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bsg-watchdog",
                                                daemon=True)
                self._thread.start()

    def release(self, ticket: _Ticket) -> None:
        with self._lock:
            self._active.discard(ticket)

    def close(self) -> None:
        self._closed.set()

    def _run(self) -> None:
        while not self._closed.wait(self.TICK):
            now = time.monotonic()
            abandon = self.abandon_at()
            with self._lock:
                active = list(self._active)
                if not active:  # idle: the next watch() starts a new thread
                    self._thread = None
                    return
            for ticket in active:
                if now >= ticket.deadline:
                    ticket.cut_now("deadline")
                elif abandon is not None and now >= abandon:
                    ticket.cut_now("stop")


def _read_body(resp: requests.Response) -> bytes:
    """The whole body, refusing anything over MAX_BODY_BYTES."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise TransportError(_oversized(int(declared)), status=resp.status_code)
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(65536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TransportError(_oversized(size), status=resp.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _oversized(size: int) -> str:
    return (f"BSG sent an answer of more than {MAX_BODY_BYTES // (1024 * 1024)} MB "
            f"({size:,} bytes so far); refusing to read it")


def _transport_text(exc: requests.RequestException, timeout: float, host: str) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer from {host} within {timeout:g} s (timeout)"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)):
        return f"the answer from {host} was cut off"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"the TLS certificate of {host} could not be verified"
    text = str(exc)
    if "aborted" in text or "RemoteDisconnected" in text or "reset" in text:
        return f"{host} closed the connection without an answer"
    return f"could not connect to {host}"


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the TCP connection was never opened (refused, no route, DNS failure)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or isinstance(exc, requests.Timeout):
        return False
    text = str(exc)
    return not ("aborted" in text or "RemoteDisconnected" in text or "reset" in text)


def _chunks(ids: Sequence[int], size: int) -> list[list[int]]:
    unique = sorted(set(ids))
    return [unique[i:i + size] for i in range(0, len(unique), size)]


# ---------------------------------------------------------------- the client


class BsgClient:
    """One session shared by all worker threads (thread-safe)."""

    def __init__(self, base_url: str, api_key: str, *, policy: RetryPolicy | None = None,
                 pool_size: int = 8, allow_insecure_http: bool = False,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 pace: Callable[[], None] | None = None,
                 stop: threading.Event | None = None, key_header: str | None = None) -> None:
        self.base_url = check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        if not api_key or not api_key.strip():
            raise ValueError("the API key is empty")
        self._key = _Secret(api_key.strip())
        add_secret(self._key.reveal())  # from now on no log record or error can show it
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._pace = pace  # called before every HTTP request: the run's rate cap
        self._host = urlsplit(self.base_url).netloc
        self._session = self._make_session(max(1, pool_size))
        self._dupes = _DuplicateGuard(self.policy.duplicate_window, clock)
        self._token: str | None = None
        self._born: dict[str, float] = {}  # token -> when its login answered (monotonic)
        self._auth_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._requests_sent = 0
        self._retries = 0
        self.logins = 0
        self._answered = False  # has the API ever answered this client?
        self._watchdog = _Watchdog(stop)
        # entered around every wait between attempts; the executor sets it for a run
        self.parked: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext
        # an API that takes the key itself in a header on every request (BSG's v1 REST API:
        # X-API-KEY) instead of a bearer from a login; see `request_keyed`
        self._key_header = key_header

    def __repr__(self) -> str:
        return f"BsgClient({self.base_url!r})"

    def __enter__(self) -> BsgClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _make_session(pool_size: int) -> requests.Session:
        session = requests.Session()
        adapter = _WatchedAdapter(pool_connections=pool_size, pool_maxsize=pool_size,
                                  max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        return session

    @property
    def paced(self) -> bool:
        """True when every request waits for the rate cap given at construction."""
        return self._pace is not None

    # counters for the run summary
    @property
    def requests_sent(self) -> int:
        return self._requests_sent

    @property
    def retries(self) -> int:
        return self._retries

    def _count(self, *, retry: bool) -> None:
        with self._count_lock:
            self._requests_sent += 1
            self._retries += int(retry)

    def close(self) -> None:
        self._watchdog.close()
        self._session.close()

    @property
    def stop_grace(self) -> float:
        """Seconds that a stop leaves the requests already begun to finish (default 0)."""
        return self._watchdog.grace

    @stop_grace.setter
    def stop_grace(self, seconds: float) -> None:
        self._watchdog.grace = max(0.0, seconds)

    # ------------------------------------------------------------ auth

    def login(self) -> None:
        """Exchange the API key for a bearer token (done lazily by the first call)."""
        with self._auth_lock:
            self._token = self._fetch_token()

    def _fetch_token(self) -> str:
        try:
            reply = self._send("POST", LOGIN_PATH, body={"api_key": self._key.reveal()},
                               auth=False)
        except ApiCallError as exc:
            raise wire.unquoted_login_error(exc) from None
        self.logins += 1
        if reply.status >= 400:
            text = wire.login_refusal(reply.payload, reply.status)
            raise AuthFailed(f"BSG did not accept the API key ({text}); check BSG_API_KEY "
                             "or the key file", status=reply.status, attempts=reply.attempts)
        bearer = reply.payload.get("bearer")
        if not isinstance(bearer, str) or not bearer:
            raise TransportError("BSG answered the login without a bearer token",
                                 status=reply.status, attempts=reply.attempts)
        if len(self._born) > 64:  # only the latest tokens are ever in use
            self._born.clear()
        self._born[bearer] = time.monotonic()
        return bearer

    def _current_token(self) -> str:
        token = self._token
        if token is None:
            with self._auth_lock:
                if self._token is None:
                    self._token = self._fetch_token()
                token = self._token
        return token

    def _relogin(self, stale: str | None) -> None:
        """Log in again unless another thread already replaced the stale token."""
        with self._auth_lock:
            if self._token is None or self._token == stale:
                log.info("session token rejected; logging in again")
                self._token = self._fetch_token()

    # ------------------------------------------------------------ calls

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              body: Any = None) -> _Reply:
        """One API call with retries; a refused token means log in again, as often as it
        takes, unless tokens are refused right after their login twice in a row."""
        reply = self._send(method, path, params=params, body=body)
        fresh_refusals = 0
        relogins = 0
        while reply.status == 401:
            fresh_refusals = fresh_refusals + 1 if reply.token_age <= FRESH_TOKEN_SECONDS else 0
            if fresh_refusals >= 2 or relogins >= max(2, self.policy.max_attempts):
                text = wire.flatten_error(reply.payload, 401)
                raise AuthFailed(f"BSG rejected the session again right after a fresh login "
                                 f"({text})", status=401, attempts=reply.attempts)
            self._relogin(reply.token)
            relogins += 1
            try:
                again = self._send(method, path, params=params, body=body)
            except ApiCallError as exc:
                exc.attempts += reply.attempts
                raise
            reply = replace(again, attempts=again.attempts + reply.attempts)
        if reply.status >= 400:
            raise wire.error_for(reply.status, reply.payload, reply.attempts)
        return reply

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              body: Any = None, auth: bool = True) -> _Reply:
        """Send with retries for transport errors, 429 and 5xx; other answers are returned."""
        guard_key = (f"{method} {path} {json.dumps(params, sort_keys=True)} "
                     f"{json.dumps(body, sort_keys=True)}"
                     ) if (auth or self._key_header) and method != "GET" else None
        attempts = 0
        first_token = self._current_token() if auth else None  # login retries on its own

        def attempt() -> _Reply:
            nonlocal attempts
            if self._watchdog.abandoned():
                raise Cancelled(f"not sent: the run was stopped before {method} {path}",
                                attempts=attempts)
            attempts += 1
            if guard_key is not None:
                self._wait_duplicate(guard_key)
            token = (self._token or first_token) if auth else None
            if self._pace is not None:
                self._pace()
            self._count(retry=attempts > 1)
            sent_at = time.monotonic()
            status, payload = self._attempt_once(method, path, params, body, token)
            age = sent_at - self._born.get(token, float("-inf")) if token else 0.0
            return _Reply(status, payload, attempts, token, age)

        retrying = Retrying(
            stop=self._should_stop,
            wait=self._retry_wait,
            retry=retry_if_exception_type(_RETRYABLE),
            sleep=self._wait,
            before_sleep=lambda state: self._log_retry(method, path, state),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _RETRYABLE as exc:
            exc.attempts = attempts
            raise

    def _wait_duplicate(self, key: str) -> None:
        wait = self._dupes.reserve(key)
        if wait > 0:
            log.info("waiting %.1f s before repeating an identical request (duplicate throttle)",
                     wait)
            self._wait(wait)

    def _wait(self, seconds: float) -> None:
        """Sleep (backoff, Retry-After, duplicate window), but end it with Cancelled as soon
        as a stop abandons the run. While it waits, the calling thread is `parked`: the
        executor lets another row use its concurrency slot."""
        with self.parked():
            self._sleep_or_stop(seconds)

    def _sleep_or_stop(self, seconds: float) -> None:
        stop = self._watchdog.stop
        if stop is None:
            self._sleep(seconds)
            return
        end = time.monotonic() + seconds
        while True:
            abandon, now = self._watchdog.abandon_at(), time.monotonic()
            if abandon is not None and now >= abandon:
                raise Cancelled("not sent: the run was stopped while waiting to retry")
            if now >= end:
                return
            if abandon is None:
                stop.wait(end - now)
            else:
                time.sleep(min(end, abandon) - now)

    def _attempt_once(self, method: str, path: str, params: dict[str, Any] | None,
                      body: Any, token: str | None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if self._key_header is not None:
            headers[self._key_header] = self._key.reveal()
        ticket = _Ticket(time.monotonic() + self.policy.deadline)
        self._watchdog.watch(ticket)
        _attempt.ticket = ticket
        try:
            # a keyed request never follows a redirect: requests would resend the key header
            # to whatever host the Location names (it drops only Authorization)
            with self._session.request(method, self.base_url + path, params=params, json=body,
                                       headers=headers,
                                       allow_redirects=self._key_header is None,
                                       timeout=min(self.policy.timeout, self.policy.deadline),
                                       stream=True) as resp:
                raw = _read_body(resp)
                status = resp.status_code
                retry_after = resp.headers.get("Retry-After")
        except Exception as exc:
            if ticket.cut:
                raise self._cut_error(ticket, method, path) from None
            if not isinstance(exc, requests.RequestException):
                raise
            error = Unreachable if _never_connected(exc) else TransportError
            raise error(_transport_text(exc, self.policy.timeout, self._host)) from None
        finally:
            _attempt.ticket = None
            self._watchdog.release(ticket)
        self._answered = True
        return status, self._classify(status, raw, retry_after)

    def _cut_error(self, ticket: _Ticket, method: str, path: str) -> ApiCallError:
        if ticket.reason == "stop":
            return Cancelled(f"the run was stopped while waiting for {method} {path}")
        return TooSlow(f"no complete answer from {self._host} within "
                       f"{self.policy.deadline:g} s (it was arriving too slowly)")

    def _classify(self, status: int, raw: bytes, retry_after: str | None) -> dict[str, Any]:
        if 200 <= status < 300:
            return wire.decode_success(status, raw)
        payload = wire.decode_lenient(raw)
        if status == 429 or status >= 500:
            exc = wire.error_for(status, payload, 1)
            exc.retry_after = _retry_after(retry_after, self.policy.retry_after_cap)
            raise exc
        return payload

    def _should_stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= max(1, self.policy.max_attempts):
            return True
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, TooSlow):
            return True
        return (isinstance(exc, Unreachable) and not self._answered
                and state.attempt_number >= UNREACHABLE_ATTEMPTS)

    def _retry_wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        backoff = self.policy.backoff(state.attempt_number)
        if isinstance(exc, Throttled):
            if exc.retry_after is not None:
                return exc.retry_after
            # BSG's 429 is its duplicate throttle: nothing identical passes before the window ends
            return max(backoff, self.policy.duplicate_window)
        return backoff

    @staticmethod
    def _log_retry(method: str, path: str, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        reason: object = exc
        if isinstance(exc, ApiCallError):  # BSG's text, not the run's sentence
            reason = (wire.unquoted_login_error(exc) if path == LOGIN_PATH else exc).message
        log.info("%s %s failed (attempt %d): %s; retrying in %.1f s",
                 method, path, state.attempt_number, reason, wait)

    def request_keyed(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """One call to a key-in-a-header API (no login) with the usual retries, deadline, stop
        and pacing; the decoded JSON object of a 2xx answer, else the ApiCallError."""
        if self._key_header is None:
            raise ValueError("request_keyed needs a client made with key_header")
        reply = self._send(method, path, body=body, auth=False)
        if reply.status >= 300:
            raise wire.error_for(reply.status, reply.payload, reply.attempts)
        return reply.payload

    # ------------------------------------------------------------ endpoints

    def list_fields(self) -> list[Field]:
        """The account's custom contact fields (GET /api/contacts/fields)."""
        reply = self._call("GET", "/api/contacts/fields")
        return [Field(id=int(f["id"]), name=str(f.get("name", "")), type=str(f.get("type", "")))
                for f in wire.answer_list(reply.payload)]

    def list_groups(self) -> list[Group]:
        """Every contact list of the account (GET /api/groups, paged)."""
        return [Group(id=int(g["id"]), name=str(g.get("name", "")))
                for g in self._pages("/api/groups", PAGE_LIMIT_MAX)]

    def get_contact(self, contact_id: int) -> Contact | None:
        """One contact, or None when BSG does not know the id."""
        call = self.read_contact(contact_id)
        return call.contact if call is not None else None

    def read_contact(self, contact_id: int) -> CallResult | None:
        """One contact with the attempts it took, or None when BSG does not know the id."""
        try:
            reply = self._call("GET", f"/api/contacts/{int(contact_id)}")
        except NotFound:
            return None
        contact = wire.answer_contact(wire.answer_data(reply.payload))
        return CallResult(contact, reply.attempts, reply.status)

    def iter_contacts(self, *, page_limit: int = 500, workers: int = 1) -> Iterator[Contact]:
        """Every contact of the book, each exactly once (GET /api/contacts, paged). With
        `workers` > 1 the pages after the first are asked for that many at a time (their
        offsets known from the first page's `total`), and still come out in order."""
        seen: set[int] = set()
        for obj in self._pages("/api/contacts", page_limit, workers):
            contact = wire.answer_contact(obj)
            if contact.id not in seen:
                seen.add(contact.id)
                yield contact

    def count_contacts(self) -> int:
        """How many contacts the book holds (`total` of one small page)."""
        reply = self._call("GET", "/api/contacts", params={"page[limit]": 15, "page[offset]": 0})
        total = wire.answer_total(reply.payload)
        if total is None:
            raise TransportError("BSG answered the contact list without a `total`")
        return total

    def _pages(self, path: str, page_limit: int, workers: int = 1) -> Iterator[dict[str, Any]]:
        """Every item of a paged list: the first page, then (with `workers` > 1) the pages up
        to the first page's `total` concurrently, then page by page for as long as pages come
        back full and the latest `total` says there are more (the list grew meanwhile)."""
        limit = min(max(page_limit, 15), PAGE_LIMIT_MAX)
        data, total = self._page(path, limit, 0)
        yield from data
        offset = len(data)
        if workers > 1 and total is not None and len(data) == limit and offset < total:
            pages = self._pages_at(path, limit, range(offset, total, limit), workers)
            for at, page in pages:
                data, total = page
                yield from data
                offset = at + len(data)
        while len(data) == limit and (total is None or offset < total):
            data, total = self._page(path, limit, offset)
            yield from data
            offset += len(data)

    def _page(self, path: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int | None]:
        reply = self._call("GET", path, params={"page[limit]": limit, "page[offset]": offset})
        return wire.answer_list(reply.payload), wire.answer_total(reply.payload)

    def _pages_at(self, path: str, limit: int, offsets: range, workers: int
                  ) -> Iterator[tuple[int, tuple[list[dict[str, Any]], int | None]]]:
        """(offset, page) for each offset in order, at most 2 x `workers` pages asked for
        ahead of the one being read (a slow reader does not hold the whole book)."""
        todo = iter(offsets)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bsg-pages") as pool:
            pending = deque((at, pool.submit(self._page, path, limit, at))
                            for at in islice(todo, 2 * workers))
            try:
                while pending:
                    at, future = pending.popleft()
                    page = future.result()
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.append((nxt, pool.submit(self._page, path, limit, nxt)))
                    yield at, page
            finally:
                for _, future in pending:
                    future.cancel()

    def find_by_phone(self, phone: str) -> Contact | None:
        """The contact with exactly this phone (digits), or None."""
        digits = wire.phone_digits(phone)
        params = {"search[field]": "phone", "search[operator]": "=", "search[value]": digits}
        reply = self._call("GET", "/api/contacts/search", params=params)
        for obj in wire.answer_list(reply.payload):
            contact = wire.answer_contact(obj)
            if contact.phone == digits:
                return contact
        return None

    def update_contact(self, target: Contact, before: Contact) -> CallResult:
        """PUT /api/contacts/{target.id} turning `before` (read just now) into `target`; the
        contact as BSG returns it, and the target's lists the body could not carry."""
        body = wire.write_body(target, before)
        reply = self._call("PUT", f"/api/contacts/{int(target.id)}", body=body)
        contact = wire.answer_contact(wire.answer_data(reply.payload))
        return CallResult(contact, reply.attempts, reply.status,
                          wire.body_groups_left_out(body, target))

    def create_contact(self, target: Contact) -> CallResult:
        """POST /api/contacts; the new contact as BSG returns it (and lists left out)."""
        body = wire.write_body(target)
        reply = self._call("POST", "/api/contacts", body=body)
        contact = wire.answer_contact(wire.answer_data(reply.payload))
        return CallResult(contact, reply.attempts, reply.status,
                          wire.body_groups_left_out(body, target))

    def delete_contact(self, contact_id: int) -> tuple[int, int | None]:
        """DELETE /api/contacts/{id}; (attempts made, HTTP status). A contact already gone
        counts as deleted (BSG's not-found answer for a DELETE is undocumented: idempotent)."""
        try:
            reply = self._call("DELETE", f"/api/contacts/{int(contact_id)}")
        except NotFound as exc:
            return exc.attempts, exc.status
        return reply.attempts, reply.status

    def attach(self, contact_ids: Sequence[int], group_ids: Sequence[int]) -> int:
        """Add every contact to every list, chunked; returns the HTTP attempts made."""
        return self._membership("/api/groups/attach", contact_ids, group_ids)

    def detach(self, contact_ids: Sequence[int], group_ids: Sequence[int]) -> int:
        """Remove every contact from every list, chunked; returns the HTTP attempts made."""
        return self._membership("/api/groups/detach", contact_ids, group_ids)

    def _membership(self, path: str, contact_ids: Sequence[int],
                    group_ids: Sequence[int]) -> int:
        attempts = 0  # one per chunk (≤200 contacts × ≤20 lists) plus any retries
        for contacts in _chunks(contact_ids, ATTACH_MAX_CONTACTS):
            for groups in _chunks(group_ids, ATTACH_MAX_GROUPS):
                body = {"contacts": contacts, "groups": groups}
                attempts += self._call("POST", path, body=body).attempts
        return attempts


# ---------------------------------------------------------------- the factory


def open_client(api_url: str, api_key: str | None, *, policy: RetryPolicy | None = None,
                concurrency: int = 8, max_rps: float | None = None,
                allow_insecure_http: bool = False, stop: threading.Event | None = None,
                no_key: str = NO_KEY) -> BsgClient:
    """The client the CLI, a run and the web page use: one connection per worker, every
    request paced to `max_rps`; UsageError (exit 2, nothing sent) for a missing key (`no_key`
    says where to put one) or an unusable URL."""
    if not api_key:
        raise UsageError(no_key)
    limiter = RateLimiter(max_rps) if max_rps is not None else None
    try:
        return BsgClient(api_url, api_key, policy=policy, pool_size=max(concurrency, 1),
                         allow_insecure_http=allow_insecure_http,
                         pace=limiter.pace if limiter is not None else None, stop=stop)
    except ValueError as exc:  # a malformed or plain-http URL, or a blank key
        raise UsageError(str(exc)) from None
