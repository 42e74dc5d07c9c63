"""The emulator's HTTP server: keep-alive threads, fault injection, introspection, lifecycle."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from bsg_sync.emulator.config import EmulatorConfig
from bsg_sync.emulator.faults import DuplicateThrottle, Fault, FaultPlan
from bsg_sync.emulator.hlr_api import HlrService
from bsg_sync.emulator.hooks import TRIGGERS, HookError, parse_edit
from bsg_sync.emulator.router import WRITE_METHODS, Api
from bsg_sync.emulator.seed import Seed, load_seed
from bsg_sync.emulator.store import Store

log = logging.getLogger(__name__)
COUNTED_METHODS = ("GET", "PUT", "POST", "DELETE")
HUGE_BYTES = 10 * 1024 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024  # a larger body is refused (413), never allocated
MAX_LINE = 64 * 1024
CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
UNDECODABLE = {"message": "Could not decode request body."}
FAULT_BODIES: dict[str, dict[str, Any]] = {
    "500": {"code": 500, "message": "An internal error occurred"},
    "502": {"code": 502, "message": "Bad Gateway"},
    "503": {"code": 503, "message": "Service Unavailable"},
    "429": {"message": "Too Many Requests"},
}
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"


class Stats:
    """Counts of API requests by method and of requests that could change data."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: dict[str, int] = dict.fromkeys(COUNTED_METHODS, 0)
            self._writes = 0

    def count(self, method: str, path: str) -> None:
        with self._lock:
            self._requests[method] = self._requests.get(method, 0) + 1
            if method in WRITE_METHODS and not path.startswith("/api/auth/"):
                self._writes += 1

    def snapshot(self, contacts: int) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self._requests), "writes": self._writes, "contacts": contacts}


class BadBody(ValueError):
    """The request body cannot be framed (malformed chunked encoding, bad length) or is too big."""

    def __init__(self, why: str, status: int = 400) -> None:
        super().__init__(why)
        self.status = status

    def body(self) -> dict[str, Any]:
        return UNDECODABLE if self.status == 400 else {"message": "Request Entity Too Large"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    emulator: Emulator

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (reset, broken pipe, aborted) is routine for a server that
        injects faults: one debug line, not a traceback on stderr. Anything else as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("%s hung up: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bsg-emulator"
    timeout = 120
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emulator.config.verbose:
            log.info("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def __getattr__(self, name: str) -> Any:
        """Every other method (TRACE, PROPFIND, …) too: the API answers it (405), not a 501 page."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        emu = self.server.emulator
        path = self.path.partition("?")[0]
        if path.startswith("/_emulator/"):
            self._reply(*emu.control(self.command, path, body))
        elif path.startswith("/api/"):
            self._serve_api(body, path)
        elif path.startswith("/rest/hlr/"):
            self._serve_hlr(body, path)
        else:
            self._reply(404, {"message": "Not Found"})

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 400/413 (the stream cannot be trusted)."""
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return self._read_chunked()
            return self._read_sized()
        except BadBody as bad:
            self.close_connection = True
            self._reply(bad.status, bad.body())
            return None

    def _read_sized(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise BadBody("Content-Length is not a number") from exc
        if length < 0:
            raise BadBody("negative Content-Length")
        if length > MAX_BODY_BYTES:
            raise BadBody("body too large", 413)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise BadBody("body shorter than its Content-Length")
        return body

    def _read_chunked(self) -> bytes:
        """RFC 9112 chunked framing; anything malformed or truncated is a BadBody."""
        chunks: list[bytes] = []
        total = 0
        while True:
            size_text = self.rfile.readline(MAX_LINE).split(b";")[0].strip()
            if not CHUNK_SIZE.fullmatch(size_text):
                raise BadBody(f"bad chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            total += size
            if total > MAX_BODY_BYTES:
                raise BadBody("chunked body too large", 413)
            if size == 0:
                self._skip_trailers()
                return b"".join(chunks)
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(MAX_LINE) not in (b"\r\n", b"\n"):
                raise BadBody("truncated chunk")
            chunks.append(chunk)

    def _skip_trailers(self) -> None:
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                raise BadBody("no end of the chunked body")
            if line in (b"\r\n", b"\n"):
                return

    def _serve_api(self, body: bytes, path: str) -> None:
        emu = self.server.emulator
        emu.stats_counter.count(self.command, path)
        if self._delay_or_fault():
            return
        auth = self.headers.get("Authorization")
        self._reply(*emu.api.handle(self.command, self.path, body, auth))

    def _serve_hlr(self, body: bytes, path: str) -> None:
        """The v1 HLR API: same latency and faults, its own stats, the duplicate 429 on writes."""
        emu = self.server.emulator
        if self._delay_or_fault():
            return
        if self.command in ("POST", "PUT") and path.rstrip("/").endswith(("/create", "/check")
                ) and not emu.hlr_throttle.allow(self.command, self.path, body):
            self._reply(429, {"message": "Too many duplicate request detected"})
            return
        self._reply(200, emu.hlr.handle(self.command, path, body, self.headers.get("X-API-KEY")))

    def _delay_or_fault(self) -> bool:
        """Apply the configured latency and the next fault; True if the fault answered."""
        emu = self.server.emulator
        if emu.config.latency_ms:
            time.sleep(emu.config.latency_ms / 1000)
        fault = emu.faults.next_fault()
        if fault is not None and fault.kind != "timeout":
            self._send_fault(fault)
            return True
        if fault is not None:
            time.sleep(fault.delay)
        return False

    def _send_fault(self, fault: Fault) -> None:
        kind = fault.kind
        if kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif kind in FAULT_BODIES:
            extra = {"Retry-After": "1"} if kind == "429" else {}
            self._reply(int(kind), FAULT_BODIES[kind], extra)
        elif kind == "html":
            self._send_raw(502, HTML_502, "text/html; charset=utf-8")
        elif kind == "truncated":
            self._send_raw(200, b'{"data": {"id": 248400001, "phone": 4477009', "application/json")
        elif kind == "empty200":
            self._send_raw(200, b"", "application/json")
        else:  # huge
            self._send_raw(200, b'{"data": "' + b"x" * HUGE_BYTES + b'"}', "application/json")

    def _reply(
        self, status: int, payload: dict[str, Any] | None, extra: dict[str, str] | None = None
    ) -> None:
        data = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        self._send_raw(status, data, "application/json", extra)

    def _send_raw(
        self, status: int, data: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        """Status line, headers and body in ONE write (no Nagle/delayed-ACK stalls)."""
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Server: bsg-emulator"]
        if status != 204:
            lines += [f"Content-Type: {ctype}", f"Content-Length: {len(data)}"]
        lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + (b"" if status == 204 or self.command == "HEAD" else data))
        if self.server.emulator.config.verbose:
            self.log_request(status)


class Emulator:
    """A BSG One-API emulator serving on `host` (loopback) in a background thread."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        seed: Seed = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.config = config or EmulatorConfig()
        self._seed = seed
        self.store = Store()
        load_seed(self.store, seed)
        self.api = Api(self.config, self.store)
        self.faults = FaultPlan(self.config)
        self.stats_counter = Stats()
        self.hlr = HlrService(self.config)
        self.hlr_throttle = DuplicateThrottle(self.config.dup_limit, self.config.dup_window)
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Emulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="bsg-emulator", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open keep-alive connection."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        with self._server.sockets_lock:
            for sock in list(self._server.open_sockets):
                _shutdown_quietly(sock)
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ test helpers
    def stats(self) -> dict[str, Any]:
        with self.store.lock:
            contacts = len(self.store.contacts)
        return self.stats_counter.snapshot(contacts)

    def reset(self) -> None:
        """Back to the seed: data, stats, scripted faults and the duplicate throttle."""
        with self.store.lock:
            self.store.clear()
            load_seed(self.store, self._seed)
        self.stats_counter.reset()
        self.faults.clear()
        self.api.throttle.clear()
        self.api.hooks.clear()
        with self.hlr.lock:
            self.hlr.reset()
        self.hlr_throttle.clear()

    def contacts(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return [self.store.contact_wire(c) for c in sorted(
                self.store.contacts.values(), key=lambda c: c.id)]

    def inject(self, *faults: str) -> None:
        """Script faults for the next API requests, in order (see faults.SIMPLE_FAULTS)."""
        self.faults.inject(*faults)

    def edit_before_put(self, contact_id: int, **edit: Any) -> None:
        """Change a contact right before its `nth` next PUT is processed (see hooks.py)."""
        self.queue_hooks({"edit_before_put": {"id": contact_id, **edit}})

    def edit_before_get(self, contact_id: int, **edit: Any) -> None:
        """Change a contact right before its `nth` next GET is answered (see hooks.py)."""
        self.queue_hooks({"edit_before_get": {"id": contact_id, **edit}})

    def edit_after_get(self, contact_id: int, **edit: Any) -> None:
        """Change a contact right after its `nth` next GET was answered (see hooks.py)."""
        self.queue_hooks({"edit_after_get": {"id": contact_id, **edit}})

    def answer_with_wrong_id(self, count: int = 1) -> None:
        """The next `count` contact PUT/POST answers describe another contact (see hooks.py)."""
        self.queue_hooks({"wrong_id_answers": count})

    def hlr_stats(self) -> dict[str, Any]:
        """HLR requests by endpoint, lookups made, paid lookups per MSISDN and the balance."""
        return self.hlr.stats()

    def hooks(self) -> dict[str, int]:
        return self.api.hooks.status()

    def queue_hooks(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Queue faults (`next`), edits and wrong-id answers; HookError/ValueError if invalid."""
        unknown = set(spec) - {"next", "wrong_id_answers", *TRIGGERS}
        if unknown:
            raise HookError(f"unknown keys {sorted(unknown)}: use next, wrong_id_answers, "
                            + ", ".join(TRIGGERS))
        faults = [str(s) for s in spec.get("next", [])]
        with self.store.lock:
            edits = [parse_edit(raw, trigger, self.store) for key, trigger in TRIGGERS.items()
                     for raw in _as_list(spec.get(key))]
        wrong = spec.get("wrong_id_answers", 0)
        if isinstance(wrong, bool) or not isinstance(wrong, int) or wrong < 0:
            raise HookError("wrong_id_answers is a count >= 0")
        self.inject(*faults)
        self.api.hooks.add_edits(edits)
        self.api.hooks.add_wrong_id_answers(wrong)
        answer: dict[str, Any] = {"queued": len(faults)}
        return answer | ({"hooks": self.hooks()} if set(spec) - {"next"} else {})

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        """The `/_emulator/*` introspection routes."""
        if (method, path) == ("GET", "/_emulator/stats"):
            return 200, self.stats()
        if (method, path) == ("GET", "/_emulator/hooks"):
            return 200, self.hooks()
        if (method, path) == ("GET", "/_emulator/hlr"):
            return 200, self.hlr.stats()
        if (method, path) == ("POST", "/_emulator/reset"):
            self.reset()
            return 200, {"reset": True}
        if (method, path) == ("POST", "/_emulator/faults"):
            return self._control_faults(body)
        return 404, {"message": "Not Found"}

    def _control_faults(self, body: bytes) -> tuple[int, dict[str, Any] | None]:
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise HookError("send a JSON object")
            return 200, self.queue_hooks(spec)
        except (ValueError, AttributeError, TypeError, RecursionError) as exc:
            return 400, {"message": str(exc) or type(exc).__name__}


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _shutdown_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
