"""A small web page for marketing staff: upload a sheet, map it, preview, apply, download.

Start it with ``bsg-sync serve``; in code::

    app = create_app(WebConfig(api_url=..., api_key=..., state=Path("state.sqlite3")))
    serve(app, "127.0.0.1", 8080, on_ready=print)
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from bsg_sync.errors import UsageError
from bsg_sync.netaddr import is_loopback
from bsg_sync.web.app import WebConfig, create_app, services
from bsg_sync.web.guards import parse_allowed_hosts

PASSWORD_ENV = "BSG_SYNC_WEB_PASSWORD"
ALLOWED_HOSTS_ENV = "BSG_SYNC_ALLOWED_HOSTS"

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "PASSWORD_ENV",
    "WebConfig",
    "check_bind",
    "create_app",
    "display_url",
    "parse_allowed_hosts",
    "serve",
]


def check_bind(
    host: str, password: str | None, allowed_hosts: frozenset[tuple[str, int | None]] = frozenset()
) -> None:
    """Loopback needs nothing; any other address needs a password and the names people will
    type to reach it, and any such name needs the password even on loopback (a reverse proxy
    in front): UsageError otherwise. The page answers no other Host."""
    if allowed_hosts and not password:  # e.g. behind a reverse proxy on 127.0.0.1
        raise UsageError(
            f"--allowed-host opens the page to other machines; set {PASSWORD_ENV} to a "
            "password first (the page then asks for it)"
        )
    if is_loopback(host):
        return
    if not password:
        raise UsageError(
            f"--host {host} is reachable from other machines; set {PASSWORD_ENV} "
            "to a password first (the page then asks for it), or serve on 127.0.0.1"
        )
    if not allowed_hosts:
        raise UsageError(
            f"--host {host} is reachable from other machines; name the address people will "
            "open with --allowed-host (e.g. --allowed-host bsg.example.com), since the page "
            "answers no other Host"
        )


def display_url(host: str, port: int, allowed: frozenset[tuple[str, int | None]]) -> str:
    """The address to open: the bound one, or for a wildcard bind (0.0.0.0, ::) an allowed
    name (the page refuses the Host 0.0.0.0), else 127.0.0.1."""
    if host in ("0.0.0.0", "::", ""):
        name, named_port = min(
            allowed, key=lambda a: (a[0], a[1] or 0), default=("127.0.0.1", None)
        )
        host, port = name, named_port or port
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(app: Flask, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve until Ctrl-C, then stop any run's dispatch and delete the uploads."""
    from werkzeug.serving import make_server

    try:
        server = make_server(host, port, app, threaded=True)
    except BaseException:
        services(app).close()
        raise
    on_ready(display_url(host, server.server_port, services(app).config.allowed_hosts))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        services(app).close()
