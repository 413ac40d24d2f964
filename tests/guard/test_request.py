"""Whole-request inspection: limits first, then every string, with stable reason codes."""

from __future__ import annotations

import json

import pytest

from tradeguard.guard.request import (
    MEMO_MAX_ENTRIES,
    RequestLimits,
    inspect_request,
    read_limited,
)

JSON = {"content-type": "application/json"}


def check(body: bytes | None = None, *, path: str = "/v1/orders/check", query: str = "",
          headers: dict[str, str] | None = None, limits: RequestLimits | None = None):  # type: ignore[no-untyped-def]  # fmt: skip
    return inspect_request("POST", path, query, headers if headers is not None else JSON, body,
                           client_ip="10.0.0.1", limits=limits)  # fmt: skip


def test_clean_order_when_inspected_then_allowed_and_parsed() -> None:
    body = json.dumps({"symbol": "AAPL", "side": "buy", "quantity": 10, "note": "O'Brien's"})
    verdict = check(body.encode())
    assert verdict.allowed and verdict.json["symbol"] == "AAPL"


def test_content_length_when_over_limit_then_413_before_reading() -> None:
    def never_read():  # type: ignore[no-untyped-def]
        raise AssertionError("the body must not be read")
        yield b""

    verdict = inspect_request("POST", "/x", "", {"Content-Length": str(2 * 1024 * 1024),
                              "Content-Type": "application/json"}, never_read())  # fmt: skip
    assert (verdict.allowed, verdict.reason, verdict.status) == (False, "BODY_TOO_LARGE", 413)


def test_streamed_body_when_over_limit_then_stops_reading() -> None:
    read: list[int] = []

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(100):
            read.append(i)
            yield b"x" * 1024

    verdict = check(chunks(), limits=RequestLimits(max_body_bytes=10 * 1024))  # type: ignore[arg-type]
    assert verdict.reason == "BODY_TOO_LARGE" and len(read) == 11


@pytest.mark.parametrize("value", ["-1", "abc", "1e9", "99999999999999999999"])
def test_content_length_when_malformed_then_refused(value: str) -> None:
    verdict = check(b"{}", headers={**JSON, "content-length": value})
    assert verdict.reason == "INVALID_CONTENT_LENGTH"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "MALFORMED_JSON"),
        (b'{"a": NaN}', "MALFORMED_JSON"),
        (b'{"a": 1, "a": 2}', "JSON_DUPLICATE_KEY"),
        (b"[" * 33 + b"]" * 33, "JSON_TOO_DEEP"),
        (b"[" * 100_000, "JSON_TOO_DEEP"),
        (json.dumps({f"k{i}": i for i in range(1001)}).encode(), "JSON_TOO_MANY_KEYS"),
        (b"\xff\xfe", "INVALID_ENCODING"),
    ],
)
def test_json_when_malformed_or_oversized_then_reason(body: bytes, reason: str) -> None:
    verdict = check(body)
    assert (verdict.allowed, verdict.reason, verdict.status) == (False, reason, 400)


def test_json_at_limits_when_inspected_then_allowed() -> None:
    assert check(b"[" * 32 + b"]" * 32).allowed
    mixed = {"a": [{"b": [{"c": [{"d": "x"}]}]}]}  # 7 levels of objects inside lists
    assert check(json.dumps(mixed).encode(), limits=RequestLimits(max_json_depth=7)).allowed
    refused = check(json.dumps(mixed).encode(), limits=RequestLimits(max_json_depth=6))
    assert refused.reason == "JSON_TOO_DEEP"
    assert check(json.dumps({f"k{i}": i for i in range(1000)}).encode()).allowed


def test_json_when_several_hostile_leaves_then_first_in_document_order_named() -> None:
    body = {"a": {"b": "fine", "c": "1' OR '1'='1"}, "d": ["<script>alert(1)</script>"]}
    assert check(json.dumps(body).encode()).field == "a.c"
    body = {"z": ["ok", "<svg onload=alert(1)>"], "a": "1; DROP TABLE users"}
    assert check(json.dumps(body).encode()).field == "z[1]"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"symbol": "AAPL' OR '1'='1"}, "symbol"),
        ({"order": {"note": "<script>alert(1)</script>"}}, "order.note"),
        ({"legs": [{"file": "../../etc/passwd"}]}, "legs[0].file"),
        ({"<img src=x onerror=alert(1)>": 1}, "<img src=x onerror=alert(1)> (key)"),
    ],
)
def test_json_leaf_when_hostile_then_threat_named_by_field_not_value(
    body: dict[str, object], where: str
) -> None:
    verdict = check(json.dumps(body).encode())
    assert (verdict.allowed, verdict.reason, verdict.field) == (False, "THREAT_DETECTED", where)
    assert verdict.threats and all("alert(1)" not in t.detail for t in verdict.threats)


def test_query_and_path_when_hostile_then_refused() -> None:
    assert check(None, query="q=1%27%20UNION%20SELECT%20password%20FROM%20users--").field == (
        "query.q"
    )
    assert check(None, path="/v1/secrets/..%2f..%2fetc%2fpasswd").field == "path"
    assert check(None, path="/v1/secrets/brokers/alpaca", query="prefix=brokers").allowed


def test_content_type_when_not_allowed_then_415() -> None:
    verdict = check(b"<xml/>", headers={"content-type": "application/xml"})
    assert (verdict.reason, verdict.status) == ("UNSUPPORTED_CONTENT_TYPE", 415)


def test_headers_and_url_when_oversized_then_refused() -> None:
    many = {f"x-h{i}": "v" for i in range(101)}
    assert check(b"{}", headers={**JSON, **many}).reason == "TOO_MANY_HEADERS"
    assert check(b"{}", headers={**JSON, "x-big": "v" * 20_000}).reason == "HEADERS_TOO_LARGE"
    assert check(None, query="q=" + "a" * 9000).reason == "URL_TOO_LONG"


def test_form_body_when_hostile_then_refused() -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert check(b"name=O%27Brien&city=Paris", headers=form).allowed
    assert check(b"q=%3Cscript%3Ealert(1)%3C/script%3E", headers=form).field == "form.q"


def test_read_limited_when_within_then_joined() -> None:
    assert read_limited([b"ab", b"cd"], 4) == b"abcd"


def test_memo_when_values_repeat_then_same_verdicts_and_bounded() -> None:
    memo: dict[tuple[bool, str], bool] = {}
    bodies = [
        {"symbol": "AAPL", "note": "hello"},
        {"symbol": "AAPL' OR '1'='1", "note": "hello"},
        {"file": "/etc/passwd"},  # absolute path: refused only in a path-like field
        {"note": "/etc/passwd"},
        {"file": "/etc/passwd"},
    ]
    for _ in range(2):
        for body in bodies:
            raw = json.dumps(body).encode()
            plain = inspect_request("POST", "/v1/x", "", JSON, raw)
            memoised = inspect_request("POST", "/v1/x", "", JSON, raw, memo=memo)
            assert (memoised.allowed, memoised.reason, memoised.field) == (
                plain.allowed, plain.reason, plain.field,
            )  # fmt: skip
    assert (False, "AAPL' OR '1'='1") not in memo and (True, "/etc/passwd") not in memo
    for i in range(MEMO_MAX_ENTRIES + 10):
        inspect_request("POST", "/v1/x", "", JSON, json.dumps({"v": f"text {i}"}).encode(),
                        memo=memo)  # fmt: skip
    assert len(memo) <= MEMO_MAX_ENTRIES
