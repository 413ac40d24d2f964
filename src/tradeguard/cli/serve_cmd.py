"""``tradeguard serve``: bootstrap the embedded state on first run, then run the service."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer

from tradeguard.cli.common import fail
from tradeguard.facade import get_settings, reset


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 8700,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    insecure_behind_proxy: Annotated[
        bool,
        typer.Option(
            help="Serve plain HTTP on a non-loopback address behind a TLS proxy "
            "(needs TRADEGUARD_TRUSTED_PROXIES)."
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option(help="debug logs every request; info logs refusals and errors.")
    ] = "info",
    log_json: Annotated[
        bool | None, typer.Option("--log-json/--log-text", help="Log format (default: auto).")
    ] = None,
) -> None:
    """Run the HTTP service (first run: creates the home, keys and an admin user)."""
    try:
        import uvicorn

        from tradeguard.server.app import LOG_JSON_VARIABLE, LOG_LEVEL_VARIABLE
        from tradeguard.server.bootstrap import bootstrap
    except ImportError:
        fail("the service needs the server extra: pip install 'tradeguard[server]'")
    if (tls_cert is None) != (tls_key is None):
        fail("give both --tls-cert and --tls-key, or neither")
    settings = get_settings()
    if not _loopback(host) and tls_cert is None:
        if not insecure_behind_proxy:
            fail(f"binding {host} (not loopback) needs --tls-cert/--tls-key, or "
                 "--insecure-behind-proxy with TRADEGUARD_TRUSTED_PROXIES")  # fmt: skip
        if not settings.trusted_proxies:
            fail("--insecure-behind-proxy needs TRADEGUARD_TRUSTED_PROXIES (the proxy's CIDRs)")
    from tradeguard.logs import configure_logging

    configure_logging(json=log_json, level=log_level.upper())
    os.environ[LOG_LEVEL_VARIABLE] = log_level.upper()  # for the worker processes
    os.environ[LOG_JSON_VARIABLE] = {True: "1", False: "0", None: ""}[log_json]
    bootstrap()
    if workers > 1:
        reset()  # each worker builds its own defaults; flush this process's audit queue first
    uvicorn.run(
        "tradeguard.server.app:serve_worker_app", factory=True, host=host, port=port,
        workers=workers, ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None, access_log=False,
        log_config=None, server_header=False, proxy_headers=False,
        timeout_keep_alive=5, limit_concurrency=1024, h11_max_incomplete_event_size=16_384,
    )  # fmt: skip
