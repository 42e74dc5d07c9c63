"""Click commands: the only place that prints, reads the environment and picks exit codes."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

# Only what every command needs is imported here; each command imports its stages in its
# body. `bsg-sync --help` (and tab completion, and a usage error) then loads click and a few
# small modules, about 0.2 s on an idle machine, instead of requests, flask, the readers and
# the emulator: importing them all up front takes about 4 times as long.
from bsg_sync import __version__
from bsg_sync.errors import BsgSyncError, Interrupted, UsageError
from bsg_sync.models import DEFAULT_CONCURRENCY, DEFAULT_MAX_RPS, Action, RowResult, Threshold
from bsg_sync.notify import (
    NotifyOn,
    NotifySettings,
    RunNews,
    news_of_error,
    news_of_outcome,
)
from bsg_sync.scrub import TerminalFilter, add_secret, for_terminal
from bsg_sync.state import DRY_RUN_RETENTION_DAYS, RETENTION_DAYS

if TYPE_CHECKING:
    from bsg_sync.sync import Hooks, SyncOutcome

DEFAULT_API_URL = "https://one-api.bsg.world"
KEY_FILE_MAX_BYTES = 4096  # a key is a few dozen characters; more is the wrong file


def _say(text: str) -> None:
    """One message on stderr, with no secret and nothing that can drive the terminal."""
    click.echo(for_terminal(text), err=True)


def _out(text: str) -> None:
    """Results on stdout, as safe for a terminal as messages (newlines kept)."""
    click.echo(for_terminal(text, multiline=True))


def _json_out(value: Any) -> None:
    """One JSON document on stdout; C1 controls escaped too (JSON only requires C0)."""
    text = json.dumps(value, ensure_ascii=False)
    click.echo(for_terminal(text, json_escapes=True))


_TRACEBACK = "bsg_sync.traceback"  # ctx.meta key: shared by the group and its commands


def _remember_traceback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_TRACEBACK] = True


# accepted before the command (`bsg-sync --traceback sync ...`) and after it
_traceback_option = click.option(
    "--traceback", is_flag=True, expose_value=False, callback=_remember_traceback,
    help="Show the Python traceback on errors (debugging).")


class _Commands(click.Group):
    """The command group: the one place a BsgSyncError becomes `bsg-sync: <sentence>` on
    stderr and its exit code (with --traceback it is raised instead, for debugging)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BsgSyncError as exc:
            if ctx.meta.get(_TRACEBACK):
                raise
            _say(f"bsg-sync: {exc}")
            sys.exit(int(exc.exit_code))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bsg-sync")
@_traceback_option
def cli() -> None:
    """Keep a BSG contact book in step with spreadsheets."""


# ---------------------------------------------------------------- emulator
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="Port (0: a free one).")
@click.option(
    "--seed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Seed data: .json (API shapes) or .csv (id,phone,groups,<field names>).",
)
@click.option("--api-key", default=None, help="The one key login accepts (default: live_*/test_*).")
@click.option("--latency-ms", default=0.0, type=click.FloatRange(min=0), help="Delay per request.")
@click.option("--fail-rate", default=0.0, type=click.FloatRange(0, 1), help="Random 500/502/503.")
@click.option(
    "--throttle-rate", default=0.0, type=click.FloatRange(0, 1), help="Random 429 with Retry-After."
)
@click.option(
    "--drop-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Random connections closed without a response.",
)
@click.option(
    "--put-semantics",
    default="merge",
    type=click.Choice(["merge", "replace"]),
    show_default=True,
    help="How PUT treats fields/groups it was not sent.",
)
@click.option(
    "--token-ttl",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    help="Bearer token lifetime in seconds (default 30 days).",
)
@click.option("--test-mode", is_flag=True, help="Every session behaves like a test_ key.")
@click.option(
    "--verified",
    multiple=True,
    type=int,
    metavar="PHONE",
    help="A verified number for test mode (repeatable).",
)
@click.option(
    "--random-seed",
    type=int,
    default=None,
    help="Seed for the random faults, so a faulty run can be repeated exactly.",
)
@click.option("--attach-max-groups", default=100, type=click.IntRange(min=1), show_default=True, help="Lists per attach/detach call (BSG's docs say 20).")
@click.option("--hlr-api-key", default=None, help="The one X-API-KEY the v1 HLR API accepts (default: any).")
@click.option("--hlr-balance", default=10.0, type=click.FloatRange(min=0), show_default=True, help="HLR balance in EUR.")
@click.option("--hlr-delay", default=0.5, type=click.FloatRange(min=0), show_default=True, help="Seconds an HLR lookup stays `sent`.")
@click.option("--hlr-max-batch", default=100, type=click.IntRange(min=1), show_default=True, help="Numbers per /hlr/create (error 12 beyond).")
@click.option("--hlr-max-pending", default=1000, type=click.IntRange(min=1), show_default=True, help="HLR lookups still `sent` at once (error 11 beyond).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
@click.option("-v", "--verbose", count=True, help="Log every request to stderr.")
def emulator(**opts: Any) -> None:
    """Run the bundled BSG One-API emulator on loopback; prints its base URL first."""
    import signal as signals
    import threading as threads

    from bsg_sync.emulator import Emulator, EmulatorConfig, SeedError
    from bsg_sync.netaddr import is_loopback

    if not (opts["allow_remote"] or is_loopback(opts["host"])):
        raise click.UsageError(f"--host {opts['host']} is not loopback; add --allow-remote.")
    keys = (
        "api_key",
        "latency_ms",
        "fail_rate",
        "throttle_rate",
        "drop_rate",
        "put_semantics",
        "token_ttl",
        "test_mode",
        "random_seed",
        "attach_max_groups",
        "hlr_api_key",
        "hlr_balance",
        "hlr_delay",
        "hlr_max_batch",
        "hlr_max_pending",
    )
    config = EmulatorConfig(verified_phones=frozenset(opts["verified"]),
                            verbose=opts["verbose"] > 0, **{k: opts[k] for k in keys})
    if opts["verbose"]:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        emu = Emulator(config, seed=opts["seed"], host=opts["host"], port=opts["port"])
    except (SeedError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    stop = threads.Event()
    signals.signal(signals.SIGTERM, lambda *_: stop.set())
    with emu:
        click.echo(emu.url)
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


# ---------------------------------------------------------------- fields / lists
if TYPE_CHECKING:
    from bsg_sync.client import BsgClient


def _api_key_from_env_or_file(api_key_file: Path | None) -> str:
    """The API key from --api-key-file, else env BSG_API_KEY; UsageError (exit 2) when none."""
    import os

    from bsg_sync.errors import UsageError

    key = _read_key_file(api_key_file) if api_key_file else os.environ.get("BSG_API_KEY", "")
    key = key.strip()
    if not key:
        raise UsageError("no API key: set BSG_API_KEY or pass --api-key-file PATH")
    add_secret(key)  # hidden from here on, before any client or web page exists
    if key.startswith("test_"):
        _say(
            "warning: this is a test_ key; BSG's test mode only accepts phone numbers "
            "verified in your account"
        )
    return key


def _read_key_file(path: Path) -> str:
    from bsg_sync.errors import UsageError

    try:
        with path.open("rb") as fh:  # at most a few KiB: /dev/zero or a log file is refused
            data = fh.read(KEY_FILE_MAX_BYTES + 1)
        mode = path.stat().st_mode
    except OSError as exc:
        raise UsageError(f"cannot read the API key file {path}: {exc.strerror}") from None
    if len(data) > KEY_FILE_MAX_BYTES:
        raise UsageError(
            f"the API key file {path} holds more than {KEY_FILE_MAX_BYTES // 1024} KiB; "
            "it should hold only the key, on its first line"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(
            f"the API key file {path} is not UTF-8 text; it should hold only the key"
        ) from None
    if sys.platform != "win32" and mode & 0o077:
        _say(f"warning: the API key file {path} is readable by other users; run: chmod 600 {path}")
    lines = text.strip().splitlines()
    if not lines:
        raise UsageError(f"the API key file {path} is empty")
    return lines[0]


def _make_client(
    api_url: str, api_key_file: Path | None, *, allow_insecure_http: bool = False, **kwargs: Any
) -> BsgClient:
    """A BsgClient from the common options; UsageError (exit 2) on a missing key or bad URL."""
    from bsg_sync.client import open_client

    key = _api_key_from_env_or_file(api_key_file)
    return open_client(api_url, key, allow_insecure_http=allow_insecure_http, **kwargs)


def _api_options(command: Any) -> Any:
    """--api-url, --api-key-file, --allow-insecure-http, as sync and pull spell them."""
    for decorate in reversed(
        (
            click.option(
                "--api-url",
                envvar="BSG_API_URL",
                default=DEFAULT_API_URL,
                show_default=True,
                help="BSG One-API base URL (env BSG_API_URL).",
            ),
            click.option(
                "--api-key-file",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Read the API key from this file (else env BSG_API_KEY).",
            ),
            click.option(
                "--allow-insecure-http",
                is_flag=True,
                help="Allow plain http to a non-loopback host.",
            ),
        )
    ):
        command = decorate(command)
    return command


_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
_verbose_option = click.option("-v", "--verbose", count=True,
                               help="More logging on stderr (-vv for debug).")
_sheet_option = click.option(
    "--sheet", "sheet_name",
    help="Workbook tab to read (default: the tab Excel opens on, else the first visible one).")
_encoding_option = click.option(
    "--encoding", help="CSV encoding, when detection picks the wrong one (e.g. cp1252).")

_state_option = click.option(
    "--state",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="BSG_STATE",
    help="State store (env BSG_STATE; default: a file in your user data dir).",
)


def _render_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns separated by two spaces (ids right-aligned)."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    lines = []
    for cells in (headers, *rows):
        parts = [
            c.rjust(w) if i == 0 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _show_account_items(
    what: str,
    fetch: Any,
    headers: tuple[str, ...],
    api_url: str,
    api_key_file: Path | None,
    allow_insecure_http: bool,
    as_json: bool,
) -> None:
    """Fetch fields or lists, then print them as JSON or as an aligned table."""
    from dataclasses import asdict

    with _make_client(api_url, api_key_file, allow_insecure_http=allow_insecure_http) as client:
        items = fetch(client)
    if as_json:
        _json_out([asdict(i) for i in items])
    elif not items:
        _say(f"the account has no {what}")
    else:
        rows = [tuple(for_terminal(str(getattr(i, h))) for h in headers) for i in items]
        _out(_render_table(headers, rows))


@cli.command()
@_api_options
@_json_option
def fields(
    api_url: str, api_key_file: Path | None, allow_insecure_http: bool, as_json: bool
) -> None:
    """Print the account's custom contact fields (id, name, type)."""
    _show_account_items(
        "custom fields",
        lambda c: c.list_fields(),
        ("id", "name", "type"),
        api_url,
        api_key_file,
        allow_insecure_http,
        as_json,
    )


@cli.command()
@_api_options
@_json_option
def lists(
    api_url: str, api_key_file: Path | None, allow_insecure_http: bool, as_json: bool
) -> None:
    """Print the account's contact lists (id, name)."""
    _show_account_items(
        "contact lists",
        lambda c: c.list_groups(),
        ("id", "name"),
        api_url,
        api_key_file,
        allow_insecure_http,
        as_json,
    )


# ---------------------------------------------------------------- init
@cli.command()
@click.argument("sheet", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Mapping file to write (default: bsg-sync.toml beside SHEET).",
)
@click.option("--force", is_flag=True, help="Overwrite the mapping file if it exists.")
@_sheet_option
@_encoding_option
@click.option(
    "--default-country",
    metavar="CC",
    help="Region for national-format numbers, e.g. GB (written to [options]).",
)
@_api_options
@click.option(
    "--offline", is_flag=True, help="Do not ask BSG for custom fields; map well-known names only."
)
def init(
    sheet: Path,
    output: Path | None,
    force: bool,
    sheet_name: str | None,
    encoding: str | None,
    default_country: str | None,
    api_url: str,
    api_key_file: Path | None,
    allow_insecure_http: bool,
    offline: bool,
) -> None:
    """Write a mapping file for SHEET from its headers and the account's custom fields."""
    import os

    from bsg_sync import mapping as mapping_mod
    from bsg_sync.models import Account

    target = output or sheet.with_name("bsg-sync.toml")
    online = not offline and bool(api_key_file or os.environ.get("BSG_API_KEY", "").strip())

    def load_account() -> Account:
        with _make_client(api_url, api_key_file, allow_insecure_http=allow_insecure_http) as c:
            return Account(fields=tuple(c.list_fields()))

    done = mapping_mod.init_mapping(
        sheet, target, force=force, sheet_name=sheet_name, encoding=encoding,
        default_country=default_country, load_account=load_account if online else None,
    )
    if not done.online:
        _say(
            "warning: mapped well-known names only (no API key, or --offline); add "
            'custom fields as "Header" = "field:<name>"'
        )
    if not done.names_a_contact:
        click.echo(
            f"warning: no column looks like a phone or a contact id; map one in {target}", err=True
        )
    _out(f"wrote {target} for {sheet.name}")
    if done.header_row != 1:
        _out(f"  header: row {done.header_row} (the rows above it look like a title or notes)")
    for header, tgt in done.guessed.items():
        _out(f"  {json.dumps(header, ensure_ascii=False)} -> {tgt}")
    if done.draft.unmapped:
        names = ", ".join(json.dumps(h, ensure_ascii=False) for h in done.draft.unmapped)
        _out(f"not mapped (sync ignores them): {names}")


# ---------------------------------------------------------------- sync / pull / demo
def _threshold(ctx: click.Context, param: click.Parameter, value: str | None) -> Threshold | None:
    if value is None:
        return None
    try:
        return Threshold.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("urllib3").setLevel(max(level, logging.INFO))
    for handler in logging.getLogger().handlers:  # records are scrubbed when made; this also
        if not any(isinstance(f, TerminalFilter) for f in handler.filters):  # escapes what a
            handler.addFilter(TerminalFilter())  # server or a sheet put in a log line


class _Progress:
    """A rows/s + ETA bar on stderr, shown only on a terminal and without -q."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self._bar: Any = None
        self._t0 = 0.0
        self._done = 0

    def stage(self, text: str) -> None:
        if self.enabled:
            _say(f"{text}…")

    def start(self, total: int) -> None:
        if not self.enabled or total == 0:
            return
        self._t0 = time.monotonic()
        self._bar = click.progressbar(
            length=total,
            label="sending",
            file=sys.stderr,
            show_eta=True,
            item_show_func=lambda _x: self._rate(),
        )
        self._bar.__enter__()

    def _rate(self) -> str:
        elapsed = time.monotonic() - self._t0
        return f"{self._done / elapsed:.0f} rows/s" if elapsed > 0 else ""

    def advance(self, result: RowResult) -> None:
        if self._bar is not None and result.action in (Action.UPDATE, Action.CREATE):
            self._done += 1
            self._bar.update(1, result)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


_SEND_OPTIONS = (  # how a run sends: sync and undo
    click.option(
        "--concurrency",
        type=click.IntRange(1, 64),
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        envvar="BSG_CONCURRENCY",
        help="Parallel requests (env BSG_CONCURRENCY).",
    ),
    click.option(
        "--max-rps",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_MAX_RPS,
        show_default=True,
        envvar="BSG_MAX_RPS",
        help="Requests per second cap (env BSG_MAX_RPS).",
    ),
    click.option("--no-rate-limit", is_flag=True, help="Remove the requests-per-second cap."),
    click.option(
        "--max-failures",
        callback=_threshold,
        metavar="N|P%",
        help="Abort (exit 3) when more rows than this fail.",
    ),
    click.option(
        "--max-changes",
        callback=_threshold,
        metavar="N|P%",
        help="Refuse (exit 3) a plan that changes more rows than this.",
    ),
)
_NOTIFY_OPTIONS = (
    click.option(
        "--notify",
        multiple=True,
        metavar="URL",
        envvar="BSG_SYNC_NOTIFY",
        help="Tell someone how the run went (repeatable; env BSG_SYNC_NOTIFY, URLs separated "
        "by spaces): json://host/path, mailtos://user:pass@host?to=a@b.c, slack://…, "
        "workflow://… (Teams); any apprise URL.",
    ),
    click.option(
        "--notify-on",
        type=click.Choice([n.value for n in NotifyOn]),
        default=NotifyOn.PROBLEMS.value,
        show_default=True,
        help="failure: the run failed or stopped (exit 2, 3, 130); problems: also when rows "
        "need fixing (exit 1); always: every run.",
    ),
    click.option(
        "--notify-failures",
        callback=_threshold,
        metavar="N|P%",
        help="With problems: alert only when more rows than this are invalid, not found or "
        "failed (a failed run always alerts).",
    ),
)


def _send_options(command: Any) -> Any:
    """--concurrency, --max-rps, --no-rate-limit, --max-failures, --max-changes."""
    for option in reversed(_SEND_OPTIONS):
        command = option(command)
    return command


def _notify_options(command: Any) -> Any:
    """--notify, --notify-on, --notify-failures."""
    for option in reversed(_NOTIFY_OPTIONS):
        command = option(command)
    return command


# ---------------------------------------------------------------- verify (HLR)
DEFAULT_HLR_URL = "https://api.bsg.world/rest"


def _hlr_key(hlr_api_key_file: Path | None) -> str:
    """The HLR key from --hlr-api-key-file, else env BSG_HLR_API_KEY; scrubbed from now on."""
    import os

    key = _read_key_file(hlr_api_key_file) if hlr_api_key_file else os.environ.get(
        "BSG_HLR_API_KEY", "")
    key = key.strip()
    if not key:
        raise UsageError("no HLR API key: set BSG_HLR_API_KEY or pass --hlr-api-key-file PATH")
    add_secret(key)
    return key


def _optional_hlr_key(hlr_api_key_file: Path | None) -> str | None:
    """serve: the HLR key if one is given (the page's number check needs it), else None."""
    import os

    if hlr_api_key_file is None and not os.environ.get("BSG_HLR_API_KEY", "").strip():
        return None
    return _hlr_key(hlr_api_key_file)


def _verify_options(command: Any) -> Any:
    """--hlr-url, --hlr-api-key-file, --verify-max-age, --max-verify-cost, --hlr-batch, …"""
    from decimal import Decimal, InvalidOperation

    def money(ctx: click.Context, param: click.Parameter, value: str | None) -> Decimal | None:
        if value is None:
            return None
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise click.BadParameter(f"{value!r} is not an amount like 5 or 2.50") from None
        if not amount.is_finite() or amount < 0:
            raise click.BadParameter(f"{value!r} is not an amount like 5 or 2.50")
        return amount

    options = (
        click.option("--hlr-url", envvar="BSG_HLR_URL", default=DEFAULT_HLR_URL,
                     show_default=True, help="BSG v1 REST API base URL (env BSG_HLR_URL)."),
        click.option("--hlr-api-key-file", type=click.Path(path_type=Path, dir_okay=False),
                     help="Read the HLR (v1) API key from this file (else env BSG_HLR_API_KEY)."),
        click.option("--verify-max-age", type=click.FloatRange(min=0), default=30.0,
                     show_default=True, help="Days after which a verified number is stale."),
        click.option("--max-verify-cost", callback=money, metavar="AMOUNT",
                     help="Refuse (exit 3) lookups costing more than this (the HLR currency)."),
        click.option("--hlr-batch", type=click.IntRange(1, 1000), default=50,
                     show_default=True, help="Numbers per HLR create request."),
        click.option("--hlr-poll-interval", type=click.FloatRange(min=0), default=2.0,
                     show_default=True, help="Seconds between polls of pending lookups."),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _verify_progress(quiet: bool) -> Callable[[int, int], None]:
    """`checking numbers: 120/5000` on stderr, on a terminal and without -q only."""
    if quiet or not sys.stderr.isatty():
        return lambda _done, _total: None

    def show(done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\rchecking numbers: {done}/{total}{end}")
        sys.stderr.flush()

    return show


def _verify_before_sync(opts: Any, key: str | None, mode: str | None, skip: bool,
                        settings: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """sync --verify / --skip-unreachable: look up (or, without --verify, read the cache of)
    the sheet's numbers; with --skip-unreachable the dead ones are handed to the sync."""
    import dataclasses

    from bsg_sync.verify import (
        Mode,
        VerifyOptions,
        cached_unreachable,
        run_verify,
        summary_json,
        summary_lines,
        unreachable_numbers,
    )

    summary = None
    if not mode:
        dead = cached_unreachable(opts, settings["verify_max_age"])
    else:
        vopts = VerifyOptions(mode=Mode(mode), max_age_days=settings["verify_max_age"],
                              max_cost=settings["max_verify_cost"], dry_run=opts.dry_run,
                              batch=settings["hlr_batch"],
                              poll_interval=settings["hlr_poll_interval"])
        hlr_key = _hlr_key(settings["hlr_api_key_file"])
        outcome = run_verify(opts, vopts, key, settings["hlr_url"], hlr_key)
        for line in summary_lines(outcome):
            _say(line)
        dead = unreachable_numbers(outcome.results)
        summary = summary_json(outcome)
        opts = dataclasses.replace(opts, verified=outcome.results)
    return (dataclasses.replace(opts, unreachable=dead) if skip else opts), summary


@cli.command()
@click.argument("sheet", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--mapping",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Mapping file (default: <sheet>.toml or bsg-sync.toml beside SHEET, then ./bsg-sync.toml).",
)
@_sheet_option
@_encoding_option
@click.option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Report path; .xlsx, .csv or .jsonl (default: <sheet>.report.xlsx beside SHEET).",
)
@click.option(
    "--errors",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the invalid/failed/not_found rows, in the sheet's own columns, here.",
)
@_state_option
@_api_options
@_json_option
@click.option("--dry-run", is_flag=True, help="Plan and report; send no write.")
@click.option("--create-missing", is_flag=True, help="Create contacts whose phone is not in BSG.")
@click.option("--offline", is_flag=True, help="Diff against the local snapshot only (no GETs).")
@click.option(
    "--keep-drift",
    is_flag=True,
    help="Where a value was changed in BSG since our last write, keep BSG's.",
)
@_send_options
@_notify_options
@_verbose_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, only errors and the summary.")
@_traceback_option
@click.option("--verify", "verify_mode", type=click.Choice(["new", "changed", "stale", "all"]),
              help="First check these numbers with BSG's HLR lookup (priced, capped; see verify).")
@click.option("--skip-unreachable", is_flag=True,
              help="Do not write rows whose number is absent/failed/undeliverable (invalid, "
              "number-unreachable); without --verify, from earlier verifications only.")
@_verify_options
def sync(
    sheet: Path,
    mapping: Path | None,
    sheet_name: str | None,
    encoding: str | None,
    report: Path | None,
    errors: Path | None,
    state: Path | None,
    api_url: str,
    api_key_file: Path | None,
    dry_run: bool,
    create_missing: bool,
    offline: bool,
    keep_drift: bool,
    concurrency: int,
    max_rps: float,
    no_rate_limit: bool,
    max_failures: Threshold | None,
    max_changes: Threshold | None,
    notify: tuple[str, ...],
    notify_on: str,
    notify_failures: Threshold | None,
    allow_insecure_http: bool,
    as_json: bool,
    verbose: int,
    quiet: bool,
    verify_mode: str | None = None,
    skip_unreachable: bool = False,
    **verify_settings: Any,
) -> None:
    """Read SHEET, map, refresh known state, diff, send the changes, report per row."""
    from bsg_sync.state import default_state_path
    from bsg_sync.sync import SyncOptions, run_sync

    _setup_logging(verbose, quiet)
    alerts = _notify_settings(notify, notify_on, notify_failures)
    opts = SyncOptions(
        sheet=sheet,
        mapping=mapping,
        sheet_name=sheet_name,
        encoding=encoding,
        report=report,
        errors=errors,
        state=state or default_state_path(),
        api_url=api_url,
        dry_run=dry_run,
        create_missing=create_missing,
        offline=offline,
        keep_drift=keep_drift,
        concurrency=concurrency,
        max_rps=None if no_rate_limit else max_rps,
        max_failures=max_failures,
        max_changes=max_changes,
        allow_insecure_http=allow_insecure_http,
    )
    t0 = time.monotonic()
    try:
        key = None if (offline and dry_run) else _api_key_from_env_or_file(api_key_file)
        verified: dict[str, Any] | None = None
        if verify_mode or skip_unreachable:
            opts, verified = _verify_before_sync(opts, key, verify_mode, skip_unreachable,
                                                 verify_settings)
        outcome = _run_with_signals(lambda hooks: run_sync(opts, key, hooks), quiet)
    except BsgSyncError as exc:
        _tell(alerts, news_of_error("sync", sheet, exc, time.monotonic() - t0))
        raise  # the alert first, then the sentence and the exit code
    _end_and_tell(alerts, "sync", outcome, as_json, verified)


def _notify_settings(urls: tuple[str, ...], on: str, failures: Threshold | None
                     ) -> NotifySettings:
    """The alert settings; a URL apprise cannot use is a usage error before the run."""
    from bsg_sync.notify import check_urls

    return NotifySettings(check_urls(urls), NotifyOn(on), failures)


def _end_and_tell(settings: NotifySettings, command: str, outcome: SyncOutcome, as_json: bool,
                  verified: dict[str, Any] | None = None) -> NoReturn:
    """A finished run: the alert before the summary (which stays the last line), then exit."""
    _tell(settings, news_of_outcome(command, outcome))
    _print_outcome(outcome, as_json, verified)
    sys.exit(int(outcome.exit_code))


def _tell(settings: NotifySettings, news: RunNews) -> None:
    """Send the alert if asked; one warning per receiver that could not be reached."""
    from bsg_sync.notify import tell

    for url in tell(settings, news):
        _say(f"warning: could not deliver the alert to {url}")


def _run_with_signals(run: Callable[[Hooks], SyncOutcome], quiet: bool) -> SyncOutcome:
    """Ctrl-C/SIGTERM before sending abort at once; while sending they stop dispatch."""
    from bsg_sync.sync import Hooks

    progress = _Progress(quiet)
    hooks = Hooks(
        on_warning=lambda w: _say(f"warning: {w}"),
        on_stage=progress.stage,
        on_result=progress.advance,
    )
    sending = threading.Event()

    def on_plan(n: int) -> None:
        sending.set()
        progress.start(n)

    hooks.on_plan = on_plan

    def handler(signum: int, frame: object) -> None:
        first = not hooks.stop.is_set()
        hooks.stop.set()  # the client cuts what is on the wire; sending drains first
        if first and not sending.is_set():
            raise KeyboardInterrupt  # reading or planning: stop where it is

    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    for s in old:
        signal.signal(s, handler)
    try:
        return run(hooks)
    except KeyboardInterrupt:
        raise Interrupted("interrupted before anything was sent") from None
    finally:
        progress.finish()
        for s, h in old.items():
            signal.signal(s, h)


def _print_outcome(outcome: SyncOutcome, as_json: bool,
                   verified: dict[str, Any] | None = None) -> None:
    from bsg_sync import report
    from bsg_sync.verify import run_sentence, run_summary

    s = outcome.summary
    checks = run_summary(outcome.verified.values())
    if as_json:
        _json_out({**report.summary_json(s), **({"verify": verified} if verified else {}),
                   "verified": checks})
    if outcome.aborted is not None:
        _say(f"bsg-sync: {outcome.aborted}")
    for line in (report.hlr_sentence(s), run_sentence(checks)):
        if line:
            _say(line)
    _say(report.summary_sentence(s))


@cli.command()
@_state_option
@_api_options
@_json_option
@_verbose_option
@_traceback_option
def pull(
    state: Path | None,
    api_url: str,
    api_key_file: Path | None,
    allow_insecure_http: bool,
    as_json: bool,
    verbose: int,
) -> None:
    """Refresh the local snapshot of the whole contact book, fields and lists."""
    from bsg_sync import refresh
    from bsg_sync.state import StateStore, default_state_path

    _setup_logging(verbose, False)
    path = state or default_state_path()
    with _make_client(api_url, api_key_file, allow_insecure_http=allow_insecure_http) as client, \
            StateStore(path) as store:
        count, account = refresh.pull_all(client, store)
    if as_json:
        _json_out(
            {
                "contacts": count,
                "fields": len(account.fields),
                "lists": len(account.groups),
                "state": str(path),
            }
        )
    _say(
        f"pulled {count} contacts, {len(account.fields)} fields and "
        f"{len(account.groups)} lists into {path}"
    )


# ---------------------------------------------------------------- runs / show / undo


def _open_store(state: Path | None) -> Any:
    from bsg_sync.state import StateStore, default_state_path

    path = state or default_state_path()
    if not path.is_file():
        raise UsageError(f"there is no state store at {path} yet: nothing has run")
    return StateStore(path)


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n)


@cli.command()
@_state_option
@_json_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many runs, newest first.")
def runs(state: Path | None, as_json: bool, limit: int) -> None:
    """List the runs in the state store (newest first): id, start, sheet, counts, exit code."""
    with _open_store(state) as store:
        found = store.runs(limit)
    if as_json:
        _json_out([_run_json(r) for r in found])
        return
    if not found:
        _say("no runs yet")
        return
    rows: list[tuple[str, ...]] = [(str(r.id), r.started_at, Path(r.sheet).name, r.sha256[:12],
             "dry run" if r.dry_run else "sent", _counts_text(r.counts) or "-",
             "-" if r.exit_code is None else str(r.exit_code)) for r in found]
    _out(_render_table(("id", "started", "sheet", "sha256", "kind", "rows", "exit"), rows))


def _run_json(r: Any) -> dict[str, Any]:
    return {"id": r.id, "started_at": r.started_at, "ended_at": r.ended_at, "sheet": r.sheet,
            "sheet_sha256": r.sha256, "dry_run": r.dry_run, "counts": r.counts,
            "exit_code": r.exit_code}


@cli.command()
@click.argument("run_id", metavar="RUN", type=click.IntRange(min=1))
@_state_option
@click.option("--report", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the run's report again here (.xlsx, .csv or .jsonl).")
@click.option("--all", "every_row", is_flag=True, help="Also list the rows that changed nothing.")
def show(run_id: int, state: Path | None, report: Path | None, every_row: bool) -> None:
    """What run RUN did, row by row (rows that changed nothing are left out unless --all)."""
    from bsg_sync import report as report_mod

    with _open_store(state) as store:
        info = store.run(run_id)
        if info is None:
            raise UsageError(f"there is no run {run_id}; `bsg-sync runs` lists them")
        results = store.run_results(run_id)
        checks = store.run_verified(run_id)
    if report is not None:
        report_mod.write_report(report, results, report_mod.summary_of_run(info, results, report))
    kind = "dry run" if info.dry_run else "run"
    lines = [f"{kind} {run_id} of {info.sheet} at {info.started_at}: "
             f"{_counts_text(info.counts) or 'not finished'}"]
    lines += _checks_lines(checks)
    for r in results:
        if every_row or r.status.value not in ("unchanged", "planned") or r.changes:
            what = r.changes or r.error or ""
            code = f" {r.error_code}" if r.error_code else ""
            contact = f" contact {r.contact_id}" if r.contact_id else ""
            lines.append(f"  row {r.row}: {r.status.value}{code}{contact}"
                         + (f": {what}" if what else ""))
    for line in lines:  # one line each: a line break inside a value is escaped
        click.echo(for_terminal(line))
    if report is not None:
        _say(f"report: {report}")


def _checks_lines(rows: list[tuple[Any, ...]]) -> list[str]:
    """show RUN: the run's HLR checks in one line (none without any)."""
    from bsg_sync.verify import run_sentence, run_summary, verified_from_row

    line = run_sentence(run_summary(verified_from_row(r) for r in rows))
    return [f"  {line}"] if line else []


@cli.command()
@click.argument("run_id", metavar="RUN", type=click.IntRange(min=1))
@click.option("--dry-run", is_flag=True, help="Show what would be restored; send no write.")
@click.option("--force", is_flag=True,
              help="Restore even where BSG no longer holds what the run wrote.")
@click.option("--delete-created", is_flag=True,
              help="Delete the contacts the run created (only as the run left them).")
@click.option("--report", type=click.Path(path_type=Path, dir_okay=False),
              help="Report path (default: ./undo-run-RUN.report.xlsx).")
@_state_option
@_api_options
@_json_option
@_send_options
@_notify_options
@_verbose_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, only errors and the summary.")
@_traceback_option
def undo(run_id: int, dry_run: bool, force: bool, delete_created: bool, report: Path | None,
         state: Path | None, api_url: str, api_key_file: Path | None, allow_insecure_http: bool,
         as_json: bool, concurrency: int, max_rps: float, no_rate_limit: bool,
         max_failures: Threshold | None, max_changes: Threshold | None,
         notify: tuple[str, ...], notify_on: str, notify_failures: Threshold | None,
         verbose: int, quiet: bool) -> None:
    """Put back what run RUN changed, only where BSG still holds what it wrote (an undo is a
    run too: previewed with --dry-run, reported, journalled, and it can be undone)."""
    from bsg_sync.state import default_state_path
    from bsg_sync.undo import UndoOptions, run_undo

    _setup_logging(verbose, quiet)
    alerts = _notify_settings(notify, notify_on, notify_failures)
    opts = UndoOptions(
        run_id=run_id, state=state or default_state_path(), api_url=api_url, report=report,
        dry_run=dry_run, force=force, delete_created=delete_created, concurrency=concurrency,
        max_rps=None if no_rate_limit else max_rps, max_failures=max_failures,
        max_changes=max_changes, allow_insecure_http=allow_insecure_http)
    what = f"run {run_id}"
    t0 = time.monotonic()
    try:
        key = _api_key_from_env_or_file(api_key_file)
        outcome = _run_with_signals(lambda hooks: run_undo(opts, key, hooks), quiet)
    except BsgSyncError as exc:
        _tell(alerts, news_of_error("undo", what, exc, time.monotonic() - t0))
        raise  # the alert first, then the sentence and the exit code
    _end_and_tell(alerts, "undo", outcome, as_json)


@cli.command()
@_state_option
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help=f"Drop every run that started more than DAYS ago (default: {RETENTION_DAYS:g} days, "
    f"{DRY_RUN_RETENTION_DAYS:g} for dry runs and web previews; a sync prunes so by itself).",
)
def prune(state: Path | None, older_than: float | None) -> None:
    """Drop old runs and their results from the state store and shrink its WAL."""
    from bsg_sync.state import StateStore, default_state_path

    path = state or default_state_path()
    days = RETENTION_DAYS if older_than is None else older_than
    dry_days = DRY_RUN_RETENTION_DAYS if older_than is None else older_than
    with StateStore(path) as store:
        pruned = store.prune(days=days, dry_run_days=dry_days)
    _say(f"pruned {pruned.runs} runs ({pruned.results} results) from {path}")


@cli.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to put the demo's sheets, reports and state (default: a new temp dir).",
)
def demo(workdir: Path | None) -> None:
    """Run a dry run, a real sync and a second sync against a bundled emulator (no account needed)."""
    from bsg_sync.demo import run_demo

    run_demo(workdir, echo=_say)


# ---------------------------------------------------------------- serve
@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on (other than loopback needs env BSG_SYNC_WEB_PASSWORD and "
    "--allowed-host).",
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: a free one).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    envvar="BSG_SYNC_ALLOWED_HOSTS",
    metavar="NAME[:PORT]",
    help="A Host the page answers to besides 127.0.0.1/localhost/[::1] on its port "
    "(repeatable; env BSG_SYNC_ALLOWED_HOSTS, space-separated); needed with a public --host.",
)
@_SEND_OPTIONS[0]
@_SEND_OPTIONS[1]
@_SEND_OPTIONS[2]
@_state_option
@_api_options
@_json_option
@click.option("--hlr-url", envvar="BSG_HLR_URL", default=DEFAULT_HLR_URL, show_default=True,
              help="BSG v1 REST API base URL for the page's “Check numbers first” step.")
@click.option("--hlr-api-key-file", type=click.Path(path_type=Path, dir_okay=False),
              help="HLR (v1) API key file (else env BSG_HLR_API_KEY); without one the page "
              "cannot check numbers.")
def serve(
    host: str,
    port: int,
    allowed_hosts: tuple[str, ...],
    concurrency: int,
    max_rps: float,
    no_rate_limit: bool,
    state: Path | None,
    api_url: str,
    api_key_file: Path | None,
    allow_insecure_http: bool,
    as_json: bool,
    hlr_url: str = DEFAULT_HLR_URL,
    hlr_api_key_file: Path | None = None,
) -> None:
    """Serve the web page for marketing staff: upload, map, preview, apply, download."""
    import os

    from bsg_sync.errors import UsageError
    from bsg_sync.state import default_state_path
    from bsg_sync.web import PASSWORD_ENV, WebConfig, check_bind, create_app, parse_allowed_hosts
    from bsg_sync.web import serve as serve_app

    _setup_logging(0, False)
    password = os.environ.get(PASSWORD_ENV) or None
    try:
        try:
            allowed = parse_allowed_hosts(allowed_hosts)
        except ValueError as exc:
            raise UsageError(f"--allowed-host: {exc}") from None
        check_bind(host, password, allowed)
        key = _api_key_from_env_or_file(api_key_file)
        config = WebConfig(
            api_url=api_url,
            api_key=key,
            state=state or default_state_path(),
            password=password,
            allow_insecure_http=allow_insecure_http,
            allowed_hosts=allowed,
            concurrency=concurrency,
            max_rps=None if no_rate_limit else max_rps,
            hlr_url=hlr_url,
            hlr_api_key=_optional_hlr_key(hlr_api_key_file),
        )
        app = create_app(config)
        serve_app(
            app,
            host,
            port,
            on_ready=lambda url: click.echo(
                json.dumps({"url": url}) if as_json else f"serving on {url}"
            ),
        )
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror}") from None


@cli.command()
@click.argument("sheet", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--mapping", type=click.Path(path_type=Path, dir_okay=False),
              help="Mapping file (found as sync finds it when not given).")
@_sheet_option
@_encoding_option
@_state_option
@_api_options
@_json_option
@click.option("--report", type=click.Path(path_type=Path, dir_okay=False),
              help="One row per number here, .csv or .jsonl (default: <sheet>.verify.csv "
              "beside SHEET).")
@click.option("--verify", "mode", type=click.Choice(["new", "changed", "stale", "all"]),
              default="stale", show_default=True,
              help="Which numbers: new to the book; also changed by the sheet; also stale "
              "or never verified; or all.")
@_verify_options
@click.option("--dry-run", is_flag=True, help="Show the count and the price; pay nothing.")
@click.option("--offline", is_flag=True, help="Tell new/changed from the local snapshot only.")
@click.option("--max-rps", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_MAX_RPS,
              show_default=True, help="HLR requests per second cap.")
@_verbose_option
@click.option("-q", "--quiet", is_flag=True, help="Only errors and the summary.")
@_traceback_option
def verify(sheet: Path, mapping: Path | None, sheet_name: str | None, encoding: str | None,
           report: Path | None, state: Path | None, api_url: str, api_key_file: Path | None,
           allow_insecure_http: bool, as_json: bool, mode: str, hlr_url: str,
           hlr_api_key_file: Path | None, verify_max_age: float, max_verify_cost: Any,
           hlr_batch: int, hlr_poll_interval: float, dry_run: bool, offline: bool,
           max_rps: float, verbose: int, quiet: bool) -> None:
    """Check SHEET's numbers with BSG's HLR lookup (priced and capped) before sending."""
    from bsg_sync.state import default_state_path
    from bsg_sync.sync import SyncOptions
    from bsg_sync.verify import (
        Mode,
        VerifyOptions,
        check_results_path,
        default_results_path,
        run_verify,
        summary_json,
        summary_lines,
        write_results,
    )

    _setup_logging(verbose, quiet)
    opts = SyncOptions(sheet=sheet, mapping=mapping, sheet_name=sheet_name, encoding=encoding,
                       state=state or default_state_path(), api_url=api_url, offline=offline,
                       allow_insecure_http=allow_insecure_http, max_rps=max_rps)
    vopts = VerifyOptions(mode=Mode(mode), max_age_days=verify_max_age, max_cost=max_verify_cost,
                          dry_run=dry_run, batch=hlr_batch, poll_interval=hlr_poll_interval)
    stop = threading.Event()
    try:
        report = report or default_results_path(sheet)
        check_results_path(report, sheet)  # before anything is paid
        key = None if offline else _api_key_from_env_or_file(api_key_file)
        hlr_key = _hlr_key(hlr_api_key_file)
        outcome = run_verify(opts, vopts, key, hlr_url, hlr_key, stop=stop,
                             on_progress=_verify_progress(quiet))
        if not dry_run:
            write_results(report, outcome.results.values())
    except KeyboardInterrupt:
        raise Interrupted("verification stopped; run again to resume (nothing is paid twice)"
                          ) from None
    if as_json:
        _json_out({**summary_json(outcome), "report_path": None if dry_run else str(report)})
    for line in summary_lines(outcome, None if dry_run else report):
        _say(line)
    sys.exit(0)


def main() -> None:
    cli(prog_name="bsg-sync")  # exits: click's standalone mode ends with sys.exit
