"""The error tree and the per-row codes: every code is in the README's table, with its advice."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bsg_sync import errors
from bsg_sync.errors import ErrorCode, ExitCode

README = Path(__file__).resolve().parent.parent / "README.md"
_ROW = re.compile(r"^\| `(?P<code>[a-z0-9-]+)`[^|]*\|(?P<what>[^|]+)\|(?P<todo>[^|]+)\|$")


def _readme_codes() -> dict[str, str]:
    """code -> "what to do", from the README's `| error_code | what happened | what to do |`."""
    text = README.read_text(encoding="utf-8")
    table = text.split("| error_code | what happened | what to do |", 1)[1].split("\n\n", 1)[0]
    found = {}
    for line in table.splitlines():
        match = _ROW.match(line.strip())
        if match:
            found[match["code"]] = match["todo"].strip()
    return found


def test_the_readme_table_lists_every_error_code_with_its_advice() -> None:
    listed = _readme_codes()
    assert sorted(listed) == sorted(c.value for c in ErrorCode)
    assert {c.value: c.todo for c in ErrorCode} == listed


def test_an_error_code_is_its_text_wherever_it_is_written() -> None:
    assert str(ErrorCode.NOT_FOUND.value) == "not-found"
    assert f"{ErrorCode.NOT_FOUND}" == str(ErrorCode.NOT_FOUND) == "not-found"
    assert ErrorCode.http(400) == "http-400"


@pytest.mark.parametrize(
    ("exc", "exit_code", "sentence"),
    [
        (errors.AuthFailed("BSG did not accept the API key"), ExitCode.REFUSED,
         "BSG did not accept the API key"),
        (errors.NotFound("Invalid contact id"), ExitCode.REFUSED,
         "BSG refused a request: Invalid contact id"),
        (errors.ServerError("HTTP 503"), ExitCode.REFUSED,
         "the BSG API is not answering properly: HTTP 503"),
        (errors.TooSlow("no complete answer"), ExitCode.REFUSED,
         "the BSG API is not answering properly: no complete answer"),
        (errors.Unreachable("could not connect to h"), ExitCode.REFUSED,
         "cannot reach the BSG API: could not connect to h; check --api-url (or BSG_API_URL) "
         "and the network"),
        (errors.Cancelled("stopped"), ExitCode.INTERRUPTED,
         "interrupted before anything was sent (stopped)"),
    ],
)
def test_a_failed_call_knows_its_run_sentence_and_exit_code(
    exc: errors.ApiCallError, exit_code: ExitCode, sentence: str
) -> None:
    assert isinstance(exc, errors.BsgSyncError)
    assert (exc.exit_code, str(exc)) == (exit_code, sentence)
    assert exc.message in sentence  # BSG's own text, for the row


def test_a_reworded_call_keeps_no_quoted_key() -> None:
    from bsg_sync.scrub import add_secret

    add_secret("live_secret_for_errors_test")
    exc = errors.ValidationFailed("x", status=400)
    exc.reword("echo: live_secret_for_errors_test")
    assert "live_secret_for_errors_test" not in str(exc) + exc.message + repr(exc.args)


def test_every_code_has_a_meaning_for_alerts() -> None:
    assert all(c.meaning for c in ErrorCode)
    assert ErrorCode.meaning_of("invalid-phone") == "not a possible phone number"
    assert ErrorCode.meaning_of("http-404") == ErrorCode.HTTP_4XX.meaning
    assert ErrorCode.meaning_of("something-new") == "see the report"
