"""Whole-run failures, each knowing its exit code; the per-row error codes.

Per-row problems are never exceptions (they are RowResult values with an `ErrorCode`); these
are for the run. A failed API call is one too: `message` is BSG's text (what a row reports),
`str()` the run's sentence (what the CLI or the web page says when it ends the run).

    BsgSyncError (exit 1)
    ├── UsageError (exit 2)            bad options, bad mapping, bad input file; nothing sent
    │   ├── ConfigError                mapping file problems (unknown header / field / list)
    │   └── InputFileError             unreadable sheet: not a spreadsheet, encrypted, empty, …
    ├── RunRefused (exit 3)            refused or aborted: nothing (more) is sent
    │   ├── TooManyChanges             --max-changes exceeded
    │   ├── TooManyFailures            --max-failures exceeded
    │   ├── LockHeld                   another sync holds the state store
    │   ├── StateStoreError            the state store cannot be read or written
    │   └── OutputError                the report / errors file failed after sending
    ├── ApiCallError (exit 3)          an API call failed (after retries): "BSG refused a request"
    │   ├── AuthFailed                 API key rejected, or a second 401 after re-login
    │   ├── NotFound                   404, or 422 "Invalid contact id" / "... not found"
    │   ├── ValidationFailed           other 4xx (row code http-<status>)
    │   ├── ModeForbidden              403: a test_ key and an unverified number
    │   ├── Throttled, ServerError     429 / 5xx still failing: "not answering properly"
    │   ├── TransportError             dropped, cut off, bad body: "not answering properly"
    │   │   ├── Unreachable            the connection never opened: "cannot reach the BSG API"
    │   │   └── TooSlow                the answer did not arrive whole within the deadline
    │   └── Cancelled (exit 130)       the run was stopped (Ctrl-C / SIGTERM): nothing more sent
    └── Interrupted (exit 130)         Ctrl-C / SIGTERM
"""

from __future__ import annotations

from enum import Enum, IntEnum

from bsg_sync.scrub import scrub


class ExitCode(IntEnum):
    OK = 0
    ROWS_FAILED = 1
    USAGE = 2
    REFUSED = 3
    INTERRUPTED = 130


class ErrorCode(str, Enum):
    """A row's stable `error_code` and what to do about it (the README's table lists each)."""

    todo: str  # what to do (the README's table)
    meaning: str  # what it means, in words that carry none of the row's values (alerts)

    def __new__(cls, value: str, todo: str, meaning: str) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.todo = todo
        member.meaning = meaning
        return member

    def __str__(self) -> str:  # the code itself, as in the report (not ErrorCode.AUTH)
        return str.__str__(self)

    INVALID_PHONE = ("invalid-phone", "correct the number, or set `default_country`",
                     "not a possible phone number")
    MISSING_PHONE = "missing-phone", "fill it in", "the phone cell is empty"
    PHONE_PRECISION_LOST = ("phone-precision-lost",
                            "format the column as Text and re-enter the numbers",
                            "Excel turned the phone into 4.47E+11 and digits are lost")
    INVALID_ID = "invalid-id", "correct the id", "the contact id is not a whole number above 0"
    MISSING_CONTACT = "missing-contact", "add one", "the row has neither an id nor a phone"
    DUPLICATE_CONTACT = ("duplicate-contact", "keep one",
                         "two rows for one contact with different values")
    CONTROL_CHARACTER = ("control-character",
                         "retype the cell, or clean the column in the sheet",
                         "a mapped cell holds an invisible control character")
    CELL_ERROR = ("cell-error", "fix the formula, or paste the values",
                  "a mapped cell shows a spreadsheet error such as #N/A")
    DUPLICATE_ROW = "duplicate-row", "nothing", "the same row again, sent once"
    NOT_FOUND = ("not-found", "check the id/phone, or `--create-missing`",
                 "no such contact in BSG")
    HTTP_4XX = "http-422", "fix the value BSG names", "BSG refused a value of the row"
    TEST_MODE = ("test-mode", "verify the number, or use a live key",
                 "a test key can only use numbers verified in the account")
    RETRIES_EXHAUSTED = ("retries-exhausted", "run again later; only unsent rows go",
                         "BSG did not answer properly after every retry")
    AUTH = ("auth", "check BSG_API_KEY or the key file, then run again",
            "BSG rejected the API key")
    NOT_APPLIED = ("not-applied", "check the contact in BSG; run again",
                   "BSG answered but the contact came back different")
    NOT_SENT = "not-sent", "run again", "the run stopped before this row"
    NUMBER_UNREACHABLE = ("number-unreachable",
                          "correct or remove the number; `verify` again to re-check it",
                          "the number check found the number unreachable")
    CHANGED_SINCE = ("changed-since",
                     "check the contact; `undo --force` to restore anyway",
                     "the contact changed in BSG after the run")
    CREATED_BY_RUN = ("created-by-run", "`undo --delete-created` to delete it",
                      "the run created this contact")
    INTERNAL_ERROR = ("internal-error", "report it, with `-vv` output",
                      "a bug in bsg-sync while sending this row")

    @staticmethod
    def meaning_of(code: str) -> str:
        """What a row's code means; a refused write's `http-<status>` reads as BSG's refusal."""
        member = ErrorCode._value2member_map_.get(code)
        if isinstance(member, ErrorCode):
            return member.meaning
        return ErrorCode.HTTP_4XX.meaning if code.startswith("http-") else "see the report"

    @staticmethod
    def http(status: int | None) -> str:
        """The code of a refused write: `http-<status>` (http-422 when BSG gave none)."""
        return ErrorCode.HTTP_4XX.value if status is None else f"http-{status}"


class BsgSyncError(Exception):
    """Base of every error the CLI turns into an exit code and one sentence."""

    exit_code: ExitCode = ExitCode.ROWS_FAILED


class UsageError(BsgSyncError):
    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The mapping file is wrong; the message names the problem and suggests a fix."""


class InputFileError(UsageError):
    """The sheet cannot be read; the message says what is wrong and what to do."""


class RunRefused(BsgSyncError):
    exit_code = ExitCode.REFUSED


class TooManyChanges(RunRefused):
    pass


class TooManyFailures(RunRefused):
    pass


class LockHeld(RunRefused):
    pass


class StateStoreError(RunRefused):
    pass


class OutputError(RunRefused):
    """Rows were sent (and journalled) but the report or errors file could not be written."""


class Interrupted(BsgSyncError):
    exit_code = ExitCode.INTERRUPTED


# ---------------------------------------------------------------- failed API calls


class ApiCallError(BsgSyncError):
    """A failed API call. `message` is BSG's flattened text (a row's `error`), `str()` the
    run's sentence (`run_text` filled in); attempts/status for the report."""

    exit_code = ExitCode.REFUSED
    code: str = ErrorCode.RETRIES_EXHAUSTED  # the row's error_code when this fails a row
    run_text = "BSG refused a request: {message}"

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__()
        self.status = status
        self.attempts = attempts
        self.retry_after: float | None = None  # seconds, from a 429's Retry-After
        self.message = ""
        self.reword(message)

    def reword(self, message: str) -> None:
        """Replace BSG's text (and so the run's sentence), never keeping a key it quoted."""
        self.message = scrub(message)  # an answer may quote the request; never pass a key on
        self.args = (self.run_text.format(message=self.message),)


class AuthFailed(ApiCallError):  # 401 after one re-login, or 422 "API Key not found"
    code = ErrorCode.AUTH
    run_text = "{message}"  # the client's sentence already says what to check


class NotFound(ApiCallError):  # 404, or 422 with "Invalid contact id" / "... not found"
    code = ErrorCode.NOT_FOUND


class ValidationFailed(ApiCallError):  # other 422 / 400 (code becomes f"http-{status}")
    code: str = ErrorCode.HTTP_4XX

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message, status=status, attempts=attempts)
        self.code = ErrorCode.http(status)


class ModeForbidden(ApiCallError):  # 403 "This action is unauthorized for your mode"
    code = ErrorCode.TEST_MODE


_NOT_ANSWERING = "the BSG API is not answering properly: {message}"


class Throttled(ApiCallError):  # 429 still failing after retries
    run_text = _NOT_ANSWERING


class ServerError(ApiCallError):  # 5xx still failing after retries
    run_text = _NOT_ANSWERING


class TransportError(ApiCallError):  # connection refused/dropped, timeout, bad body, after retries
    run_text = _NOT_ANSWERING


class Unreachable(TransportError):  # nothing listens / no route: the connection never opened
    run_text = ("cannot reach the BSG API: {message}; check --api-url (or BSG_API_URL) "
                "and the network")


class TooSlow(TransportError):  # the answer did not arrive whole within the deadline
    pass


class Cancelled(ApiCallError):  # the run was asked to stop (Ctrl-C / SIGTERM): nothing more sent
    exit_code = ExitCode.INTERRUPTED
    code = ErrorCode.NOT_SENT
    run_text = "interrupted before anything was sent ({message})"
