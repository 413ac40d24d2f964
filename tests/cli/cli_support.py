"""Helpers shared by the CLI tests: run in-process and check the error conventions."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from tradeguard.cli.app import app


def run(*args: str, input: str | None = None) -> Result:
    """Invoke the CLI in-process."""
    return CliRunner().invoke(app, list(args), input=input)


def assert_ok(result: Result) -> None:
    """Exit 0."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr, result.exception)


def assert_one_line_error(result: Result, *, contains: str = "") -> None:
    """Exit 1, exactly one ``error:`` line on stderr, handled (no traceback)."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    assert contains in result.stderr
