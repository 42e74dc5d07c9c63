"""Servers that misbehave on purpose, on 127.0.0.1 in a thread: one that answers from a script
(echoing the request body, like a proxy error page) and forwards the rest to a real emulator,
and one that trickles its answer a byte at a time."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

# (status, content type, body) built from the request body; None: forward this one
Answer = Callable[[bytes], tuple[int, str, bytes] | None]


def forward(_body: bytes) -> None:
    """A scripted turn that lets the request through to the upstream server."""
    return None


def status_only(status: int) -> Answer:
    def answer(_body: bytes) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps({"message": f"scripted {status}"}
                                                      ).encode()

    return answer


def echo_json_500(body: bytes) -> tuple[int, str, bytes]:
    """A 500 whose JSON quotes the request (a debugging backend)."""
    text = body.decode("utf-8", "replace")
    payload = {"message": "Server Error", "request": json.loads(text) if text else None,
               "raw": text}
    return 500, "application/json", json.dumps(payload).encode()


def echo_html(status: int) -> Answer:
    """An HTML proxy page that quotes the request body, cut so the key is split."""

    def answer(body: bytes) -> tuple[int, str, bytes]:
        text = body.decode("utf-8", "replace")
        # 29 characters, then 13 of JSON: the key starts at 42, so a 60-character cut splits it
        page = f"<html><body><p>upstream said:{text}</p></body></html>"
        return status, "text/html", page.encode()

    return answer


def refuse_echoing(body: bytes) -> tuple[int, str, bytes]:
    """BSG's 422 for an unknown key, plus the request quoted back."""
    payload = {"message": "An internal error occurred",
               "errors": {"text": "API Key not found", "request": body.decode()}}
    return 422, "application/json", json.dumps(payload).encode()


class ScriptedProxy:
    """Answers the next scripted answers for a path prefix; forwards everything else."""

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream
        self.scripts: dict[str, deque[Answer]] = {}
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.seen.append((self.command, self.path))
                status, ctype, data = proxy.answer(self.command, self.path, body,
                                                   dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def script(self, prefix: str, *answers: Answer) -> None:
        self.scripts.setdefault(prefix, deque()).extend(answers)

    def answer(self, method: str, path: str, body: bytes,
               headers: dict[str, str]) -> tuple[int, str, bytes]:
        for prefix, queue in self.scripts.items():
            if path.startswith(prefix) and queue:
                scripted = queue.popleft()(body)
                if scripted is not None:
                    return scripted
                break
        if self.upstream is None:
            return 404, "application/json", b'{"message": "not here"}'
        keep = {k: v for k, v in headers.items() if k.lower() in ("authorization",
                                                                  "content-type")}
        resp = requests.request(method, self.upstream + path, data=body, headers=keep,
                                timeout=10)
        return resp.status_code, resp.headers.get("Content-Type", ""), resp.content

    def __enter__(self) -> ScriptedProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class TrickleServer:
    """Answers every request with a valid HTTP answer sent one byte every `interval` s;
    `trickle` decides per request line whether to trickle or forward to `upstream`."""

    def __init__(self, interval: float, upstream: str | None = None,
                 trickle: Callable[[str], bool] = lambda _line: True) -> None:
        self.interval = interval
        self.upstream = upstream
        self.trickle = trickle
        self.trickled = threading.Event()  # set once a trickling answer has begun
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            reader = conn.makefile("rb")
            while not self._closed.is_set():
                head = _read_head(reader)
                if head is None:
                    return
                line, headers = head
                length = int(headers.get("content-length", "0") or 0)
                body = reader.read(length) if length else b""
                if self.trickle(line):
                    self._drip(conn)
                    return
                conn.sendall(self._forward(line, headers, body))

    def _drip(self, conn: socket.socket) -> None:
        data = json.dumps({"data": [], "total": 0}).encode()
        answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
        self.trickled.set()
        for i in range(len(answer)):
            if self._closed.wait(self.interval):
                return
            try:
                conn.sendall(answer[i:i + 1])
            except OSError:
                return

    def _forward(self, line: str, headers: dict[str, str], body: bytes) -> bytes:
        method, target = line.split(" ")[:2]
        keep = {k: v for k, v in headers.items() if k in ("authorization", "content-type")}
        resp = requests.request(method, f"{self.upstream}{target}", data=body, headers=keep,
                                timeout=10)
        return (f"HTTP/1.1 {resp.status_code} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(resp.content)}\r\n\r\n").encode() + resp.content

    def __enter__(self) -> TrickleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._sock.close()


def _read_head(reader: Any) -> tuple[str, dict[str, str]] | None:
    line = reader.readline()
    if not line:
        return None
    headers: dict[str, str] = {}
    while True:
        h = reader.readline()
        if not h or h in (b"\r\n", b"\n"):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return line.decode("latin-1").strip(), headers


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
