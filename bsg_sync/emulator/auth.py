"""JWT-looking bearer tokens: issue on login/refresh, check on every other API call."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from bsg_sync.emulator.apierror import unauthorized

DEFAULT_TTL = 30 * 24 * 3600.0


@dataclass(frozen=True)
class Session:
    """What a valid bearer token says about its holder."""

    test_mode: bool


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Signs and verifies HS256-style tokens with a per-instance secret."""

    def __init__(self, ttl: float | None) -> None:
        self._secret = secrets.token_bytes(32)
        self._ttl = DEFAULT_TTL if ttl is None else ttl

    def issue(self, session: Session) -> str:
        now = time.time()
        header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        claims = {"iat": int(now), "exp": now + self._ttl, "jti": secrets.token_hex(8),
                  "mode": "test" if session.test_mode else "live"}
        payload = _b64(json.dumps(claims).encode())
        return f"{header}.{payload}.{self._sign(header, payload)}"

    def _sign(self, header: str, payload: str) -> str:
        digest = hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return _b64(digest)

    def check(self, authorization: str | None) -> Session:
        """The session of a valid `Authorization: Bearer <t>` header, else BSG's 401."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("JWT Token not found")
        parts = token.strip().split(".")
        if len(parts) != 3 or not hmac.compare_digest(
            self._sign(parts[0], parts[1]).encode(), parts[2].encode()
        ):
            raise unauthorized("Invalid JWT Token")
        try:
            claims = json.loads(_unb64(parts[1]))
        except ValueError as exc:
            raise unauthorized("Invalid JWT Token") from exc
        if float(claims["exp"]) <= time.time():
            raise unauthorized("Expired JWT Token")
        return Session(test_mode=claims.get("mode") == "test")
