"""Whole-run failures, each knowing its exit code.

Per-row problems are never exceptions (they are RowResult values); these are for the run.

    BsgSyncError (exit 1)
    ├── UsageError (exit 2)            bad options, bad mapping, bad input file; nothing sent
    │   ├── ConfigError                mapping file problems (unknown header / field / list)
    │   └── InputFileError             unreadable sheet: not a spreadsheet, encrypted, empty, …
    ├── RunRefused (exit 3)            refused or aborted: nothing (more) is sent
    │   ├── AuthError                  API key rejected, or a second 401 after re-login
    │   ├── ApiUnreachable             connection refused / DNS / repeated timeouts before any work
    │   ├── TooManyChanges             --max-changes exceeded
    │   ├── TooManyFailures            --max-failures exceeded
    │   ├── LockHeld                   another sync holds the state store
    │   ├── StateStoreError            the state store cannot be read or written
    │   └── OutputError                the report / errors file failed after sending
    └── Interrupted (exit 130)         Ctrl-C / SIGTERM
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ROWS_FAILED = 1
    USAGE = 2
    REFUSED = 3
    INTERRUPTED = 130


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


class AuthError(RunRefused):
    pass


class ApiUnreachable(RunRefused):
    pass


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
