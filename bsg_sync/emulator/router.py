"""Routes API calls to endpoint handlers after auth and the duplicate throttle."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from bsg_sync.emulator import contacts_api, fields_api, groups_api
from bsg_sync.emulator.apierror import ApiError, invalid, method_not_allowed, not_found
from bsg_sync.emulator.auth import Session, TokenIssuer
from bsg_sync.emulator.call import Answer, Call, Reply
from bsg_sync.emulator.config import EmulatorConfig
from bsg_sync.emulator.faults import DuplicateThrottle
from bsg_sync.emulator.hooks import Hooks, other_contact_wire
from bsg_sync.emulator.store import Store
from bsg_sync.emulator.validate import check_keys, parse_body, parse_query

log = logging.getLogger(__name__)
Handler = Callable[[Call], Reply]
ID = r"(\d{1,18})"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONTACT_WRITES = (contacts_api.update_contact, contacts_api.create_contact)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    throttled: bool  # under BSG's duplicate-request limiter


def _routes(login: Handler, refresh: Handler) -> list[Route]:
    table: list[tuple[str, str, Handler]] = [
        ("POST", "/api/auth/login", login),
        ("POST", "/api/auth/refresh", refresh),
        ("GET", "/api/contacts", contacts_api.list_contacts),
        ("POST", "/api/contacts", contacts_api.create_contact),
        ("GET", "/api/contacts/search", contacts_api.search_contacts),
        ("POST", "/api/contacts/delete", contacts_api.bulk_delete),
        ("GET", "/api/contacts/fields", fields_api.list_fields),
        ("POST", "/api/contacts/fields", fields_api.create_field),
        ("POST", "/api/contacts/fields/delete", fields_api.delete_fields),
        ("PATCH", f"/api/contacts/fields/{ID}", fields_api.update_field),
        ("GET", f"/api/contacts/{ID}", contacts_api.get_contact),
        ("PUT", f"/api/contacts/{ID}", contacts_api.update_contact),
        ("DELETE", f"/api/contacts/{ID}", contacts_api.delete_contact),
        ("GET", "/api/groups", groups_api.list_groups),
        ("POST", "/api/groups", groups_api.create_group),
        ("GET", "/api/groups/search", groups_api.search_groups),
        ("POST", "/api/groups/attach", groups_api.attach),
        ("POST", "/api/groups/detach", groups_api.detach),
        ("GET", f"/api/groups/{ID}", groups_api.get_group),
        ("PUT", f"/api/groups/{ID}", groups_api.update_group),
        ("DELETE", f"/api/groups/{ID}", groups_api.delete_group),
    ]
    return [Route(m, re.compile(p), h, _throttled(m, h, login)) for m, p, h in table]


def _throttled(method: str, handler: Handler, login: Handler) -> bool:
    """Reference §8.4: every POST except login, and PUT /api/contacts/{id}; nothing else."""
    if method == "POST":
        return handler != login
    return handler == contacts_api.update_contact


class Api:
    """The One-API surface: `handle()` turns one HTTP request into (status, JSON body)."""

    def __init__(self, config: EmulatorConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.issuer = TokenIssuer(config.token_ttl)
        self.throttle = DuplicateThrottle(config.dup_limit, config.dup_window)
        self.hooks = Hooks()
        self.routes = _routes(self._login, self._refresh)

    def handle(self, method: str, target: str, body: bytes, authorization: str | None) -> Answer:
        path, _, query = target.partition("?")
        try:
            return (*self._dispatch(method, path, query, body, authorization), {})
        except ApiError as err:
            return err.status, err.body, err.headers
        except Exception:  # a bug: answer like BSG's 500 and leave a trace
            log.exception("emulator bug on %s %s", method, target)
            return 500, {"code": 500, "message": "An internal error occurred"}, {}

    def _dispatch(self, method: str, path: str, query: str, body: bytes, auth: str | None) -> Reply:
        route, ids = self._route(method, path)
        session = None if route.handler == self._login else self.issuer.check(auth)
        if route.throttled and not self.throttle.allow(method, f"{path}?{query}", body):
            raise ApiError(429, {"message": "Too many duplicate request detected"})
        call = Call(method, path, query, body, ids, session, self.store, self.config)
        with self.store.lock:
            return self._run(route.handler, call)

    def _run(self, handler: Handler, call: Call) -> Reply:
        """The handler, with the test hooks (see hooks.py) around it; caller holds the lock."""
        if handler == contacts_api.update_contact:
            self.hooks.fire("before-put", call.ids[0], self.store)
        if handler == contacts_api.get_contact:
            self.hooks.fire("before-get", call.ids[0], self.store)
        status, body = handler(call)
        if handler == contacts_api.get_contact:
            self.hooks.fire("after-get", call.ids[0], self.store)
        if handler in CONTACT_WRITES and status < 300 and body and self.hooks.take_wrong_id():
            body = {"data": other_contact_wire(self.store, int(body["data"]["id"]))}
        return status, body

    def _route(self, method: str, path: str) -> tuple[Route, tuple[int, ...]]:
        """The route for `method path`; HEAD is served as GET (the server drops the body)."""
        wanted = "GET" if method == "HEAD" else method
        allowed: set[str] = set()
        for route in self.routes:
            match = route.pattern.fullmatch(path.rstrip("/") or "/")
            if match and route.method == wanted:
                return route, tuple(int(g) for g in match.groups())
            if match:
                allowed.add(route.method)
        if allowed:
            raise method_not_allowed(allowed)
        raise not_found()

    def _login(self, call: Call) -> Reply:
        parse_query(call.query, ())
        body = parse_body(call.body, required=True)
        check_keys(body, ("api_key",), ("api_key",))
        key = body["api_key"]
        if not isinstance(key, str):
            raise invalid("api_key", "This value should be of type string.")
        if not self._key_accepted(key):
            raise ApiError(422, {"message": "An internal error occurred",
                                 "errors": {"text": "API Key not found"}})
        session = Session(test_mode=key.startswith("test_"))
        return 200, {"bearer": self.issuer.issue(session)}

    def _key_accepted(self, key: str) -> bool:
        if self.config.api_key is not None:
            return key == self.config.api_key
        return key.startswith(("live_", "test_")) and len(key) > len("live_")

    def _refresh(self, call: Call) -> Reply:
        parse_query(call.query, ())
        check_keys(parse_body(call.body, required=False), ())
        assert call.session is not None
        return 200, {"bearer": self.issuer.issue(call.session)}
