"""The ``tradeguard`` command line (the Typer app lives in ``tradeguard.cli.app``)."""

from tradeguard.cli.app import main

__all__ = ["main"]
