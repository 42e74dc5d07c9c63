"""Click commands: the only place that prints, reads the environment and picks exit codes."""

from __future__ import annotations

import sys

import click

from bsg_sync import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bsg-sync")
def cli() -> None:
    """Keep a BSG contact book in step with spreadsheets."""


# ---------------------------------------------------------------- emulator (owner: emulator)
@cli.command()
def emulator() -> None:
    """Run the bundled BSG One-API emulator on loopback."""
    raise click.ClickException("not implemented yet")


# ---------------------------------------------------------------- fields / lists (owner: client)
@cli.command()
def fields() -> None:
    """Print the account's custom contact fields (id, name, type)."""
    raise click.ClickException("not implemented yet")


@cli.command()
def lists() -> None:
    """Print the account's contact lists (id, name)."""
    raise click.ClickException("not implemented yet")


# ---------------------------------------------------------------- init (owner: mapping)
@cli.command()
def init() -> None:
    """Write a mapping file for SHEET from its headers."""
    raise click.ClickException("not implemented yet")


# ---------------------------------------------------------------- sync / pull / demo (owner: lead)
@cli.command()
def sync() -> None:
    """Read SHEET, map, refresh known state, diff, send the changes, report per row."""
    raise click.ClickException("not implemented yet")


@cli.command()
def pull() -> None:
    """Refresh the local snapshot of the whole contact book, fields and lists."""
    raise click.ClickException("not implemented yet")


@cli.command()
def demo() -> None:
    """Run a dry run, a real sync and a second sync against a bundled emulator."""
    raise click.ClickException("not implemented yet")


def main() -> None:
    cli(prog_name="bsg-sync")
    sys.exit(0)
