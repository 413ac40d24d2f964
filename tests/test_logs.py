"""Logging: JSON lines or readable text, one chain for structlog and stdlib, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from tradeguard.errors import ConfigurationError
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.logs import configure_logging, get_logger, reset_logging, scrub_tokens

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
API_KEY = "tg_" + "Q7x9" * 8


class TTY(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    reset_logging()
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_logs_when_json_then_one_object_per_line_with_standard_keys() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    log = get_logger("tradeguard.test")
    log.info("order checked", order_id=7)
    log.warning("slow backend", ms=250)
    first, second = lines(out)
    assert first["event"] == "order checked"
    assert first["order_id"] == 7
    assert first["level"] == "info"
    assert first["logger"] == "tradeguard.test"
    assert first["timestamp"].endswith("Z")
    assert "T" in first["timestamp"]
    assert second["level"] == "warning"
    assert second["ms"] == 250


def test_logs_when_credentials_passed_as_keys_then_redacted_at_any_depth() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    get_logger("t").info(
        "login",
        user="ada",
        password="hunter2",
        headers={"Authorization": "Bearer t0ken"},
        nested=[{"deep": {"api_key": "k-123", "mfa_code": "424242"}}],
    )
    text = out.getvalue()
    for leaked in ("hunter2", "t0ken", "k-123", "424242"):
        assert leaked not in text
    (record,) = lines(out)
    assert record["password"] == "[redacted]"
    assert record["headers"] == {"Authorization": "[redacted]"}
    assert record["nested"] == [{"deep": {"api_key": "[redacted]", "mfa_code": "[redacted]"}}]
    assert record["user"] == "ada"


def test_logs_when_tokens_appear_inside_strings_then_redacted() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    get_logger("t").info(
        f"got {JWT} from client",
        note=f"key={API_KEY};",
        items=["Authorization: Bearer abc.def-ghi"],
    )
    text = out.getvalue()
    assert JWT not in text
    assert "eyJ" not in text
    assert API_KEY not in text
    assert "abc.def-ghi" not in text
    (record,) = lines(out)
    assert record["event"] == "got [redacted] from client"
    assert record["note"] == "key=[redacted];"
    assert record["items"] == ["Authorization: [redacted]"]


def test_scrub_tokens_when_text_is_ordinary_then_unchanged() -> None:
    ordinary = "table tg_audit_record, user eyJohn.doe, bearer-less text, tg_short"
    assert scrub_tokens(ordinary) == ordinary
    assert scrub_tokens({"a": (1, f"x {JWT}")}) == {"a": [1, "x [redacted]"]}


@pytest.mark.parametrize("hostile", ["eyJ" * 20_000, "eyJa." * 20_000, "bearer " * 20_000])
def test_scrub_tokens_when_input_is_adversarial_then_time_stays_linear(hostile: str) -> None:
    started = time.process_time()  # CPU time: a busy machine does not make this flaky
    scrub_tokens(hostile)
    assert time.process_time() - started < 0.5  # a backtracking pattern takes seconds here


def test_logs_when_stdlib_record_then_rendered_by_the_same_chain() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    logging.getLogger("some.library").warning(
        "connecting with %s", f"Bearer {JWT}", extra={"secret": "s3cr3t", "attempt": 2}
    )
    (record,) = lines(out)
    assert record["logger"] == "some.library"
    assert record["level"] == "warning"
    assert record["event"] == "connecting with [redacted]"
    assert record["secret"] == "[redacted]"
    assert record["attempt"] == 2
    assert record["timestamp"].endswith("Z")
    assert "s3cr3t" not in out.getvalue()


def test_logs_when_event_subscriber_fails_then_library_error_is_a_json_line() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    bus = EventBus()

    def broken(event: SecurityEvent) -> None:
        raise RuntimeError(f"cannot handle {JWT}")

    bus.subscribe(broken)
    bus.publish(SecurityEvent("secret.read"))
    (record,) = lines(out)
    assert record["logger"] == "tradeguard.events"
    assert record["level"] == "error"
    assert "secret.read" in record["event"]
    assert "RuntimeError: cannot handle [redacted]" in record["exception"]
    assert JWT not in out.getvalue()


def test_logs_when_exception_logged_then_traceback_in_exception_key() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    try:
        raise ValueError("bad order")
    except ValueError:
        get_logger("t").exception("check failed", token="tok-1")
    (record,) = lines(out)
    assert record["level"] == "error"
    assert "ValueError: bad order" in record["exception"]
    assert record["token"] == "[redacted]"


def test_logs_when_console_then_readable_text_without_colours() -> None:
    out = io.StringIO()
    configure_logging(json=False, stream=out)
    get_logger("tradeguard.test").info("login", user="ada", password="hunter2")
    text = out.getvalue()
    assert "login" in text
    assert "user=ada" in text
    assert "password=[redacted]" in text
    assert "[tradeguard.test]" in text
    assert "hunter2" not in text
    assert "\x1b[" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_logs_when_json_unset_and_terminal_then_console_with_colours() -> None:
    out = TTY()
    configure_logging(stream=out)
    get_logger("t").info("hello", password="hunter2")
    text = out.getvalue()
    assert "\x1b[" in text
    assert "hello" in text
    assert "hunter2" not in text


def test_logs_when_json_unset_and_not_terminal_then_json() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger("t").info("hello")
    assert lines(out)[0]["event"] == "hello"


def test_logs_when_configured_twice_then_one_handler_and_one_line() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(json=True, stream=first)
    configure_logging(json=True, stream=second)
    ours = [h for h in logging.getLogger().handlers if type(h).__name__ == "_Handler"]
    assert len(ours) == 1
    get_logger("t").info("once")
    structlog.get_logger("app").info("twice?")
    assert first.getvalue() == ""
    assert [r["event"] for r in lines(second)] == ["once", "twice?"]


def test_logs_when_level_warning_then_info_dropped() -> None:
    out = io.StringIO()
    configure_logging(json=True, level="warning", stream=out)
    log = get_logger("t")
    log.info("quiet")
    logging.getLogger("lib").info("quiet too")
    log.warning("loud")
    assert [r["event"] for r in lines(out)] == ["loud"]


@pytest.mark.parametrize("level", ["LOUD", "", True])
def test_logs_when_level_unknown_then_configuration_error(level: Any) -> None:
    with pytest.raises(ConfigurationError, match="log level"):
        configure_logging(level=level)


def test_logs_when_no_stream_given_then_stderr_of_the_moment_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    then, now = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", then)
    configure_logging(json=True)
    monkeypatch.setattr(sys, "stderr", now)
    get_logger("t").warning("to stderr", password="p4ss")
    assert then.getvalue() == ""
    assert lines(now)[0]["event"] == "to stderr"
    assert "p4ss" not in now.getvalue()


def test_get_logger_when_never_configured_then_still_redacts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reset_logging()
    with caplog.at_level(logging.INFO, logger="tradeguard.unconfigured"):
        get_logger("tradeguard.unconfigured").info("login", password="hunter2", note=JWT)
    (record,) = caplog.records
    assert "hunter2" not in caplog.text
    assert JWT not in caplog.text
    assert record.msg["password"] == "[redacted]"  # type: ignore[index]
    assert record.msg["note"] == "[redacted]"  # type: ignore[index]


def test_logs_when_reset_then_handler_removed() -> None:
    configure_logging(json=True, stream=io.StringIO())
    reset_logging()
    assert not [h for h in logging.getLogger().handlers if type(h).__name__ == "_Handler"]
