"""The ``tradeguard`` command line."""

from tradeguard.cli.app import app, main

__all__ = ["app", "main"]
