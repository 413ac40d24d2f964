"""``tradeguard serve``: what it refuses before binding anything (CliRunner, no server)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.cli.cli_support import assert_one_line_error, run


@pytest.mark.parametrize("host", ["0.0.0.0", "203.0.113.7", "::"])  # noqa: S104
def test_serve_when_public_address_without_tls_then_refused(host: str) -> None:
    result = run("serve", "--host", host, "--port", "8799")
    assert_one_line_error(result, contains="needs --tls-cert/--tls-key")


def test_serve_when_behind_proxy_without_trusted_proxies_then_refused() -> None:
    result = run("serve", "--host", "0.0.0.0", "--insecure-behind-proxy")  # noqa: S104
    assert_one_line_error(result, contains="TRADEGUARD_TRUSTED_PROXIES")


def test_serve_when_only_one_tls_file_then_refused(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    result = run("serve", "--tls-cert", str(cert))
    assert_one_line_error(result, contains="both --tls-cert and --tls-key")


def test_serve_when_port_out_of_range_then_usage_error() -> None:
    assert run("serve", "--port", "70000").exit_code == 2


def test_serve_when_refused_then_nothing_was_created() -> None:
    home = Path(os.environ["TRADEGUARD_HOME"])
    assert not home.exists()
    assert_one_line_error(run("serve", "--host", "203.0.113.7"))
    assert not home.exists()
