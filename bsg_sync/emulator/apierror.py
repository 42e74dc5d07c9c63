"""BSG-shaped error responses, raised by any layer and rendered once by the router."""

from __future__ import annotations

from typing import Any

INVALID = "The given data was invalid."
NOT_EXPECTED = "This field was not expected."
MISSING = "This field is missing."
NOT_INTEGER = "This value should be of type integer."
NOT_STRING = "This value should be of type string."
NOT_BOOL = "This value should be of type boolean."
NOT_ARRAY = "This value should be of type array."
BAD_CHOICE = "The value you selected is not a valid choice."


class ApiError(Exception):
    """An HTTP error answer: status plus the exact JSON body BSG would send."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def business(message: str) -> ApiError:
    """422 with one of BSG's business messages and `errors: []`."""
    return ApiError(422, {"message": message, "errors": []})


def invalid(key: str, message: str) -> ApiError:
    """422 validation error on one flattened property path."""
    return ApiError(422, {"message": INVALID, "errors": {key: [message]}})


def unknown_error(key: str, message: str) -> ApiError:
    """422 with BSG's odd `Unknown error` wrapper (search values, duplicate field names)."""
    return ApiError(422, {"message": "Unknown error", "errors": {key: [message]}})


def bad_request(message: str) -> ApiError:
    return ApiError(400, {"message": message})


def unauthorized(message: str) -> ApiError:
    return ApiError(401, {"code": 401, "message": message})


def not_found() -> ApiError:
    return ApiError(404, {"message": "Not Found"})


def method_not_allowed(allowed: set[str]) -> ApiError:
    """405 with the `Allow` header HTTP requires (HEAD goes with GET, as in Symfony)."""
    if "GET" in allowed:
        allowed = allowed | {"HEAD"}
    return ApiError(405, {"message": "Method Not Allowed"}, {"Allow": ", ".join(sorted(allowed))})


def forbidden_mode() -> ApiError:
    return ApiError(403, {"message": "This action is unauthorized for your mode", "errors": []})
