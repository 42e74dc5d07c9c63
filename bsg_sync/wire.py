"""BSG One-API wire shapes and error text: contact bodies, answers, error sentences (pure)."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

from bsg_sync.errors import (
    ApiCallError,
    AuthFailed,
    ModeForbidden,
    NotFound,
    ServerError,
    Throttled,
    TransportError,
    ValidationFailed,
)
from bsg_sync.models import Contact

MAX_CONTACT_GROUPS = 100  # ids in one contact write's `groups` (BSG: "100 elements or less")

_NOT_FOUND = re.compile(r"not found|invalid contact id", re.IGNORECASE)
_VAGUE_MESSAGES = {"unknown error", "an internal error occurred", ""}
_ANONYMOUS_KEYS = {"any_field", "text", "message"}  # keys that mean nothing to a person
# BSG's documented refusals of a key: the only login answers ever quoted (an answer may echo
# the request, and the request holds the key)
_LOGIN_REFUSALS = ("API Key not found", "Invalid API Key", "API Key is disabled")


# ---------------------------------------------------------------- contacts


def parse_contact(obj: dict[str, Any]) -> Contact:
    """Normalise a contact object from the wire (fields object / [] / list of {id,value}).

    Raises ValueError when the object is not a contact.
    """
    if not isinstance(obj, dict) or "id" not in obj or "phone" not in obj:
        raise ValueError("a contact needs an id and a phone")
    hlr_last_check = obj.get("hlr_last_check")
    return Contact(
        id=int(obj["id"]),
        phone=phone_digits(obj["phone"]),
        fields=_parse_fields(obj.get("fields")),
        groups=_parse_groups(obj.get("groups")),
        hlr_status=_opt_str(obj.get("hlr_status")),
        hlr_last_check=_opt_str(hlr_last_check),
    )


def phone_digits(value: Any) -> str:
    """A phone as BSG sends it (a number, a float, or text) reduced to its digits."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"\D", "", str(value))


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _parse_fields(raw: Any) -> dict[int, str]:
    if not raw:
        return {}
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, list):
        pairs = [(item["id"], item.get("value")) for item in raw if isinstance(item, dict)]
    else:
        raise ValueError(f"contact fields of type {type(raw).__name__}")
    return {int(k): "" if v is None else str(v) for k, v in pairs}


def _parse_groups(raw: Any) -> frozenset[int]:
    if not raw:
        return frozenset()
    if not isinstance(raw, list):
        raise ValueError(f"contact groups of type {type(raw).__name__}")
    return frozenset(int(g["id"]) if isinstance(g, dict) else int(g) for g in raw)


def write_body(target: Contact, before: Contact | None = None) -> dict[str, Any]:
    """Wire body for PUT/POST that turns `before` (BSG's state read just now) into `target`.

    {"phone": int, "fields": [{"id", "value"}], "groups": [ids]}: every field value of the
    target (a field `before` holds and the target does not is sent as "" to clear it), and
    the target's lists. BSG caps `groups` at 100 ids: beyond that, the lists the write adds
    go first and `body_groups_left_out` names the rest, which the caller attaches separately.
    """
    fields = dict(target.fields)
    if before is not None:
        fields.update({fid: "" for fid in before.fields if fid not in fields})
    return {
        "phone": int(target.phone),
        "fields": [{"id": k, "value": fields[k]} for k in sorted(fields)],
        "groups": _body_groups(target, before),
    }


def _body_groups(target: Contact, before: Contact | None) -> list[int]:
    if len(target.groups) <= MAX_CONTACT_GROUPS:
        return sorted(target.groups)
    had = before.groups if before is not None else frozenset()
    first = sorted(target.groups - had) + sorted(target.groups & had)
    return sorted(first[:MAX_CONTACT_GROUPS])


def body_groups_left_out(body: dict[str, Any], target: Contact) -> frozenset[int]:
    """The target's lists a body could not carry (over BSG's 100-id cap)."""
    return target.groups - frozenset(body.get("groups", ()))


# ---------------------------------------------------------------- error answers


def flatten_error(payload: Any, status: int | None = None) -> str:
    """One readable sentence from any BSG error body: message + errors + stray keys."""
    if not isinstance(payload, dict):
        text = str(payload).strip() if payload else ""
        return text or status_text(status)
    message = payload.get("message")
    message = message.strip() if isinstance(message, str) else ""
    details: list[str] = []
    _collect(payload.get("errors"), "", details)
    for key, value in payload.items():
        if key not in ("message", "errors", "code"):
            _collect(value, key, details)
    details = list(dict.fromkeys(details))  # same text twice reads badly
    if message.lower() in _VAGUE_MESSAGES and details:
        return "; ".join(details)
    if not details:
        return message or status_text(status)
    return f"{message.rstrip('.:')}: {'; '.join(details)}"


def _collect(value: Any, key: str, out: list[str]) -> None:
    """Append "key: text" for every string under value (dicts, lists, {"text": ...})."""
    if isinstance(value, str):
        text = value.strip()
        if text:
            out.append(text if key in _ANONYMOUS_KEYS or not key else f"{key}: {text}")
    elif isinstance(value, dict):
        for sub, item in value.items():
            _collect(item, str(sub) if key in _ANONYMOUS_KEYS or not key else key, out)
    elif isinstance(value, list):
        for item in value:
            _collect(item, key, out)


def status_text(status: int | None) -> str:
    """`HTTP 503 Service Unavailable`: the sentence for an answer that gave no reason."""
    if status is None:
        return "BSG gave no reason"
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def error_for(status: int, payload: Any, attempts: int) -> ApiCallError:
    """Map a non-2xx answer (after retries) to the ApiCallError subclass the callers handle."""
    message = flatten_error(payload, status)
    kind: type[ApiCallError]
    if status == 401:
        kind = AuthFailed
    elif status == 403:
        kind = ModeForbidden
    elif status == 404 or (status == 422 and _NOT_FOUND.search(message)):
        kind = NotFound
    elif status == 429:
        kind = Throttled
    elif status >= 500:
        kind = ServerError
    else:
        kind = ValidationFailed
    return kind(message, status=status, attempts=attempts)


def unquoted_login_error(exc: ApiCallError) -> ApiCallError:
    """The login failure in our own words: a login answer may echo the key, so none of its
    text is kept (a transport error without a status is already our own sentence)."""
    if exc.status is None:
        return exc
    if isinstance(exc, TransportError):
        text = f"BSG answered the login with HTTP {exc.status} but not with the API's JSON"
    else:
        text = f"BSG answered the login with {status_text(exc.status)}"
    exc.reword(text)
    return exc


def login_refusal(payload: dict[str, Any], status: int) -> str:
    """BSG's reason for refusing the key when it is one of its documented sentences."""
    text = flatten_error(payload, status)
    for known in _LOGIN_REFUSALS:
        if known.lower() in text.lower():
            return known
    return status_text(status)


# ---------------------------------------------------------------- answers


def decode_success(status: int, raw: bytes) -> dict[str, Any]:
    """The JSON object of a 2xx answer; anything else is a TransportError (retried)."""
    if status == 204:
        return {}
    if not raw.strip():
        raise TransportError(f"BSG answered HTTP {status} with an empty body", status=status)
    try:
        payload = json.loads(raw)
    except ValueError:
        raise TransportError(
            f"BSG answered HTTP {status} with a body that is not valid JSON "
            f"(cut off, or not the API?): {_snippet(raw)!r}", status=status) from None
    if not isinstance(payload, dict):
        raise TransportError(f"BSG answered HTTP {status} with JSON that is not an object",
                             status=status)
    return payload


def decode_lenient(raw: bytes) -> dict[str, Any]:
    """The JSON object of an error answer, or {} when there is none (an HTML error page)."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {"errors": payload}


def _snippet(raw: bytes) -> str:
    text = " ".join(raw[:200].decode("utf-8", "replace").split())
    return text[:60] + ("…" if len(text) > 60 else "")


def answer_data(payload: dict[str, Any]) -> Any:
    """The answer's `data` member (TransportError without one: not the API's answer)."""
    if "data" not in payload:
        raise TransportError("BSG answered without the expected `data` member")
    return payload["data"]


def answer_list(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of a list answer's `data`."""
    data = answer_data(payload)
    if not isinstance(data, list):
        raise TransportError("BSG answered with `data` that is not a list")
    return [item for item in data if isinstance(item, dict)]


def answer_total(payload: dict[str, Any]) -> int | None:
    """A paged answer's total (`total`, or `meta.page.total`), None when it gives none."""
    total = payload.get("total")
    if total is None:
        meta = payload.get("meta")
        page = meta.get("page") if isinstance(meta, dict) else None
        total = page.get("total") if isinstance(page, dict) else None
    try:
        return None if total is None else int(total)
    except (TypeError, ValueError):
        return None


def answer_contact(payload: Any) -> Contact:
    """The contact an answer carries (TransportError when it cannot be read as one)."""
    try:
        return parse_contact(payload)
    except (ValueError, TypeError, KeyError) as exc:
        raise TransportError(f"BSG sent a contact this client cannot read ({exc})") from None
