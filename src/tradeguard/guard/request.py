"""Whole-request inspection: sizes, content type, JSON shape, and every string in it.

Order of the checks (cheap and content-free first): URL length, header count and size,
body size (from Content-Length before any byte is read, else while streaming), content
type, then the path, each query value and each JSON string leaf through
:func:`~tradeguard.guard.inspect.validate_input`. A rejection names a stable reason code
and the field, never the offending value.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from tradeguard.errors import ConfigurationError
from tradeguard.guard.inspect import Threat, validate_input

MIB = 1024 * 1024
MAX_JSON_DEPTH = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestLimits:
    """Bounds a request must stay within."""

    max_body_bytes: int = MIB
    max_url_chars: int = 8192
    max_headers: int = 100
    max_header_bytes: int = 16_384
    max_json_depth: int = 32
    max_json_keys: int = 1000
    max_query_fields: int = 256
    max_field_chars: int = 64 * 1024
    content_types: tuple[str, ...] = ("application/json", "application/x-www-form-urlencoded")

    def __post_init__(self) -> None:
        for name in (
            "max_body_bytes",
            "max_url_chars",
            "max_headers",
            "max_header_bytes",
            "max_json_depth",
            "max_json_keys",
            "max_query_fields",
            "max_field_chars",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigurationError(f"RequestLimits.{name} must be a positive int")
        if self.max_json_depth > MAX_JSON_DEPTH:  # the walk over parsed JSON recurses
            raise ConfigurationError(f"RequestLimits.max_json_depth is at most {MAX_JSON_DEPTH}")


@dataclass(frozen=True, slots=True)
class RequestVerdict:
    """``allowed``, or the stable ``reason`` code, the ``field`` and any threats found."""

    allowed: bool
    reason: str | None = None
    field: str | None = None
    status: int = 200
    threats: tuple[Threat, ...] = ()
    json: Any = None

    @classmethod
    def refuse(
        cls, reason: str, status: int, field: str | None = None, threats: tuple[Threat, ...] = ()
    ) -> RequestVerdict:
        """A rejection."""
        return cls(False, reason, field, status, threats)


def check_content_length(value: str | None, limits: RequestLimits) -> RequestVerdict | None:
    """Refuse from the header alone (before reading the body); None when fine or absent."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        return RequestVerdict.refuse("INVALID_CONTENT_LENGTH", 400, "content-length")
    if int(text) > limits.max_body_bytes:
        return RequestVerdict.refuse("BODY_TOO_LARGE", 413, "body")
    return None


class BodyTooLarge(Exception):
    """Raised by :func:`read_limited` once the stream passes the limit (internal)."""


def read_limited(chunks: Iterable[bytes], limit: int) -> bytes:
    """Join a streamed body, stopping as soon as it exceeds ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


class _TooDeep(Exception):
    """Containers nest deeper than the limit (internal)."""


def _leaves(value: Any, max_depth: int) -> list[tuple[str, str]] | None:
    """(field path, text) for every string key and leaf of parsed JSON, in document order;
    None when containers nest deeper than ``max_depth``. Recursion stops at that depth, so
    it stays far inside the interpreter's limit (``max_depth`` is at most a few hundred)."""
    found: list[tuple[str, str]] = []
    add = found.append

    def walk(item: Any, where: str, depth: int) -> None:
        if depth > max_depth:
            raise _TooDeep
        if type(item) is dict:
            for key, child in item.items():
                name = f"{where}.{key}" if where else key
                add((f"{name} (key)", key))
                kind = type(child)
                if kind is str:
                    add((name, child))
                elif kind is dict or kind is list:
                    walk(child, name, depth + 1)
        else:
            for index, child in enumerate(item):
                kind = type(child)
                if kind is str:
                    add((f"{where}[{index}]", child))
                elif kind is dict or kind is list:
                    walk(child, f"{where}[{index}]", depth + 1)

    kind = type(value)
    if kind is str:
        add(("", value))
    elif kind is dict or kind is list:
        try:
            walk(value, "", 1)
        except _TooDeep:
            return None
    return found


class _CountingDecoder(json.JSONDecoder):
    """Counts keys (at most ``max_keys``) and refuses a repeated key while decoding."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.keys = 0
        super().__init__(object_pairs_hook=self._object, parse_constant=_reject_constant)

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        self.keys += len(pairs)
        if self.keys > self.max_keys:
            raise OverflowError
        result = dict(pairs)
        if len(result) != len(pairs):
            raise KeyError("a repeated key")
        return result


_decoders = threading.local()  # one decoder per thread: building one costs a scanner


def _decoder(max_keys: int) -> _CountingDecoder:
    decoder: _CountingDecoder | None = getattr(_decoders, "decoder", None)
    if decoder is None or decoder.max_keys != max_keys:
        decoder = _decoders.decoder = _CountingDecoder(max_keys)
    decoder.keys = 0
    return decoder


def _parse_json(body: bytes, limits: RequestLimits) -> tuple[Any, RequestVerdict | None]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None, RequestVerdict.refuse("INVALID_ENCODING", 400, "body")
    try:
        return _decoder(limits.max_json_keys).decode(text), None
    except OverflowError:
        return None, RequestVerdict.refuse("JSON_TOO_MANY_KEYS", 400, "body")
    except KeyError:
        return None, RequestVerdict.refuse("JSON_DUPLICATE_KEY", 400, "body")
    except RecursionError:  # the C parser's own guard, far past max_json_depth
        return None, RequestVerdict.refuse("JSON_TOO_DEEP", 400, "body")
    except ValueError:
        return None, RequestVerdict.refuse("MALFORMED_JSON", 400, "body")


def _reject_constant(_: str) -> None:
    raise ValueError("NaN and Infinity are not JSON")


MEMO_MAX_CHARS = 128
Memo = dict[tuple[str | None, str], bool]
"""Short texts found safe, by the field they were inspected as (None: the URL path)."""
MEMO_MAX_ENTRIES = 4096


def _inspect(
    where: str, text: str, limits: RequestLimits, memo: Memo | None
) -> RequestVerdict | None:
    """None when ``text`` is safe in field ``where``; short safe texts are remembered in
    ``memo`` by field and text."""
    key = None
    if memo is not None and len(text) <= MEMO_MAX_CHARS:
        key = (where, text)
        if key in memo:
            return None
    verdict = validate_input(text, field=where, max_chars=limits.max_field_chars)
    if verdict.safe:
        if key is not None and memo is not None:
            if len(memo) >= MEMO_MAX_ENTRIES:
                memo.clear()
            memo[key] = True
        return None
    return RequestVerdict.refuse("THREAT_DETECTED", 400, where, verdict.threats)


def inspect_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | Iterable[bytes] | None,
    *,
    client_ip: str | None = None,
    limits: RequestLimits | None = None,
    exempt: Callable[[str], bool] | None = None,
    memo: Memo | None = None,
) -> RequestVerdict:
    """Inspect a whole request; the verdict says allowed, or why not (code and field).

    ``headers`` are matched case-insensitively; ``query`` is the raw query string; ``body``
    is the raw bytes or an iterable of chunks (read no further than the limit). The parsed
    JSON body is returned on ``verdict.json`` so a caller need not parse it again.
    ``client_ip`` is accepted for the caller's logging; bans and rate limits are separate.
    ``exempt(field)`` names JSON leaves that are opaque credentials (passwords, secret
    values: hashed or encrypted, never interpolated), which are not inspected for injection;
    their size and type are still bounded. ``memo`` (owned by the caller, e.g. a
    :class:`~tradeguard.guard.validator.SecurityValidator`) remembers short values already
    found safe: form values repeat request after request.
    """
    del client_ip
    limits = limits or RequestLimits()
    lowered = {k.lower(): v for k, v in headers.items()}
    if len(path) + len(query) > limits.max_url_chars:
        return RequestVerdict.refuse("URL_TOO_LONG", 414, "url")
    if len(lowered) > limits.max_headers:
        return RequestVerdict.refuse("TOO_MANY_HEADERS", 431, "headers")
    if sum(len(k) + len(v) for k, v in lowered.items()) > limits.max_header_bytes:
        return RequestVerdict.refuse("HEADERS_TOO_LARGE", 431, "headers")
    early = check_content_length(lowered.get("content-length"), limits)
    if early is not None:
        return early
    try:
        raw = body if isinstance(body, bytes) else read_limited(body or (), limits.max_body_bytes)
    except BodyTooLarge:
        return RequestVerdict.refuse("BODY_TOO_LARGE", 413, "body")
    if len(raw) > limits.max_body_bytes:
        return RequestVerdict.refuse("BODY_TOO_LARGE", 413, "body")
    try:
        decoded_path = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return RequestVerdict.refuse("INVALID_ENCODING", 400, "path")
    # the URL path is always absolute: inspect it as text (traversal, injection), not as a
    # file-name field, which would refuse any leading '/'
    if memo is None or (None, decoded_path) not in memo:
        verdict = validate_input(decoded_path, max_chars=limits.max_url_chars)
        if not verdict.safe:
            return RequestVerdict.refuse("THREAT_DETECTED", 400, "path", verdict.threats)
        if memo is not None and len(decoded_path) <= MEMO_MAX_CHARS:
            if len(memo) >= MEMO_MAX_ENTRIES:
                memo.clear()
            memo[None, decoded_path] = True
    try:
        pairs = parse_qsl(
            query, keep_blank_values=True, max_num_fields=limits.max_query_fields, errors="strict"
        ) if query else []  # fmt: skip
    except (ValueError, UnicodeDecodeError):
        return RequestVerdict.refuse("MALFORMED_QUERY", 400, "query")
    for name, value in pairs:
        refused = _inspect(f"query.{name}", value, limits, memo) or _inspect(
            "query (name)", name, limits, memo
        )
        if refused is not None:
            return refused
    parsed: Any = None
    if raw:
        content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type not in limits.content_types:
            return RequestVerdict.refuse("UNSUPPORTED_CONTENT_TYPE", 415, "content-type")
        if content_type == "application/json":
            parsed, problem = _parse_json(raw, limits)
            if problem is not None:
                return problem
            leaves = _leaves(parsed, limits.max_json_depth)
            if leaves is None:
                return RequestVerdict.refuse("JSON_TOO_DEEP", 400, "body")
            for where, text in leaves:
                if memo is not None and (where, text) in memo:  # found safe before
                    continue
                if exempt is not None and exempt(where):
                    if len(text) > limits.max_field_chars:
                        return RequestVerdict.refuse("FIELD_TOO_LONG", 400, where)
                    continue
                refused = _inspect(where or "body", text, limits, memo)
                if refused is not None:
                    return refused
        else:
            try:
                form = parse_qsl(
                    raw.decode("utf-8"),
                    keep_blank_values=True,
                    max_num_fields=limits.max_query_fields,
                    errors="strict",
                )
            except (ValueError, UnicodeDecodeError):
                return RequestVerdict.refuse("MALFORMED_FORM", 400, "body")
            for name, value in form:
                refused = _inspect(f"form.{name}", value, limits, memo)
                if refused is not None:
                    return refused
    return RequestVerdict(True, json=parsed)
