"""``serve_app``: the factory every uvicorn worker calls applies the command line's logging."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from server_support import INITIAL_ADMIN_PASSWORD, LOOPBACK, TestClient

from tradeguard.logs import reset_logging
from tradeguard.server.app import LOG_JSON_VARIABLE, LOG_LEVEL_VARIABLE, serve_app
from tradeguard.server.bootstrap import bootstrap


def test_serve_app_when_log_level_passed_then_worker_logs_requests_at_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADEGUARD_ADMIN_PASSWORD", INITIAL_ADMIN_PASSWORD)
    monkeypatch.setenv(LOG_LEVEL_VARIABLE, "DEBUG")
    monkeypatch.setenv(LOG_JSON_VARIABLE, "1")
    bootstrap()
    try:
        app = serve_app()
        assert logging.getLogger().level == logging.DEBUG
        with TestClient(app, client=LOOPBACK) as client:
            answer = client.get("/healthz")
        assert answer.status_code == 200
        logged = capsys.readouterr().err
        line = next(x for x in logged.splitlines() if '"request"' in x)
        assert answer.headers["x-request-id"] in line and '"status": 200' in line
        assert INITIAL_ADMIN_PASSWORD not in logged
    finally:
        reset_logging()


def test_serve_app_when_no_log_variables_then_logging_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEGUARD_ADMIN_PASSWORD", INITIAL_ADMIN_PASSWORD)
    monkeypatch.delenv(LOG_LEVEL_VARIABLE, raising=False)
    bootstrap()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    serve_app()
    assert (list(root.handlers), root.level) == (handlers, level)


def test_serve_worker_app_when_built_then_startup_frozen_and_young_generation_larger(
    tmp_path: Path,
) -> None:
    """In a process of its own (the collector settings are process-wide)."""
    import os
    import subprocess
    import sys

    probe = (
        "import gc; from tradeguard.server.bootstrap import bootstrap; bootstrap(); "
        "from tradeguard.server.app import serve_worker_app, GC_YOUNG_THRESHOLD; "
        "before = gc.get_freeze_count(); app = serve_worker_app(); "
        "print(before, gc.get_freeze_count() > 10_000, "
        "gc.get_threshold()[0] == GC_YOUNG_THRESHOLD, type(app).__name__)"
    )
    env = {**os.environ, "TRADEGUARD_HOME": str(tmp_path), "TRADEGUARD_ADMIN_PASSWORD":
           INITIAL_ADMIN_PASSWORD}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "True", "True", "GuardedAPI"]
