"""The hash chain, pure: canonical encoding of a record and its HMAC-SHA256.

A record's MAC covers the JSON array ``[seq, time, type, actor, subject, ip, outcome,
severity, details, prev_hash]`` (``details`` as its canonical JSON text), encoded compactly
as UTF-8. The key lives in the SecretsManager, so whoever can write the database but lacks
the key cannot forge a record or re-link the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json import encoder as _json_encoder
from types import MappingProxyType
from typing import Any

from tradeguard.events import SecurityEvent

_log = logging.getLogger(__name__)
GENESIS = "0" * 64
Row = tuple[Any, ...]  # seq, time, type, actor, subject, ip, outcome, severity, details, prev, hash


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, datetime):
        return format_time(value)
    return str(value)


def _compiled(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode`` without rebuilding the C encoder on every call.

    No circular-reference check (the markers dict could not be shared between threads): a
    cycle ends in RecursionError instead of ValueError. Same output as ``encoder.encode``.
    """
    make = getattr(_json_encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has _json
        return encoder.encode
    encode = make(
        None, encoder.default, _json_encoder.encode_basestring, None, encoder.key_separator,
        encoder.item_separator, encoder.sort_keys, encoder.skipkeys, encoder.allow_nan,
    )  # fmt: skip
    join = "".join
    return lambda value: join(encode(value, 0))


_details_json = _compiled(json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=_json_default
))  # fmt: skip
_material = _compiled(json.JSONEncoder(ensure_ascii=False, separators=(",", ":")))
_quote = _json_encoder.encode_basestring  # the C function when _json is there


def canonical_details(details: Mapping[str, Any]) -> str:
    """Canonical JSON text of event details (sorted keys; non-JSON values as str)."""
    if not details:
        return "{}"
    if type(details) is MappingProxyType:  # as the bus delivers it
        try:
            return _details_json(details.copy())
        except AttributeError:  # a proxy over a mapping without copy()
            return _details_json(dict(details))
    return _details_json(details if type(details) is dict else dict(details))


_prefixes: dict[tuple[int, int, int, int, int, int], str] = {}


def format_time(when: datetime) -> str:
    """Fixed-width UTC ISO-8601 with microseconds, so text order is time order.

    A naive datetime is taken as UTC (never as the machine's local time). The text up to
    the second is cached: a stream of events shares it.
    """
    if when.tzinfo is not None and when.tzinfo is not UTC and when.utcoffset():
        when = when.astimezone(UTC)
    second = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    prefix = _prefixes.get(second)
    if prefix is None:
        if len(_prefixes) > 4096:
            _prefixes.clear()
        prefix = _prefixes[second] = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.".format(*second)
    return f"{prefix}{when.microsecond:06d}Z"


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One link of the chain, exactly as stored."""

    seq: int
    time: str
    type: str
    actor: str | None
    subject: str | None
    ip: str | None
    outcome: str | None
    severity: str
    details: str
    prev_hash: str
    hash: str

    def details_dict(self) -> dict[str, Any]:
        """The details, parsed."""
        value = json.loads(self.details)
        return value if isinstance(value, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the JSON-lines export format)."""
        return {
            "seq": self.seq, "time": self.time, "type": self.type, "actor": self.actor,
            "subject": self.subject, "ip": self.ip, "outcome": self.outcome,
            "severity": self.severity, "details": self.details_dict(),
            "prev_hash": self.prev_hash, "hash": self.hash,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """Inverse of :meth:`to_dict` (details re-canonicalised)."""
        return cls(
            seq=int(data["seq"]), time=str(data["time"]), type=str(data["type"]),
            actor=data.get("actor"), subject=data.get("subject"), ip=data.get("ip"),
            outcome=data.get("outcome"), severity=str(data["severity"]),
            details=canonical_details(data.get("details") or {}),
            prev_hash=str(data["prev_hash"]), hash=str(data["hash"]),
        )  # fmt: skip


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class KeyedMac:
    """HMAC-SHA256 under one key, keyed once: RFC 2104 over hashlib's SHA-256 states.

    Each MAC copies the two pre-keyed states instead of re-deriving them from the key.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        block = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._outer = hashlib.sha256(block.translate(_OPAD))

    def __repr__(self) -> str:
        return "KeyedMac(sha256)"

    def hexdigest(self, message: bytes) -> str:
        """HMAC-SHA256 of ``message``, hex."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


MacKey = bytes | KeyedMac


def keyed(key: MacKey) -> KeyedMac:
    """``key`` ready for many MACs."""
    return key if isinstance(key, KeyedMac) else KeyedMac(key)


def mac_of_row(key: MacKey, row: Sequence[Any]) -> str:
    """HMAC-SHA256 (hex) of ``[seq, time, ..., details, prev_hash]`` in that order."""
    material = _material(row if type(row) in (tuple, list) else list(row))
    return keyed(key).hexdigest(material.encode("utf-8"))


def check_rows(
    mac: KeyedMac, rows: Iterable[Sequence[Any]], seq: int, prev_hash: str
) -> tuple[int, str] | None:
    """Walk stored rows (columns in MAC order, then the hash) from ``seq`` after ``prev_hash``.

    Returns the next seq and the last hash, or None at the first row out of place, not
    linked to its predecessor, or whose MAC is wrong (the full walk then says which).
    """
    inner_copy, outer_copy, material = mac._inner.copy, mac._outer.copy, _material
    for row in rows:
        if row[0] != seq or row[9] != prev_hash:
            return None
        inner = inner_copy()
        inner.update(material(row[:10]).encode("utf-8"))
        outer = outer_copy()
        outer.update(inner.digest())
        if outer.hexdigest() != row[10]:
            return None
        prev_hash = row[10]
        seq += 1
    return seq, prev_hash


def record_mac(key: MacKey, seq: int, fields: tuple[Any, ...], prev_hash: str) -> str:
    """HMAC-SHA256 (hex) of a record's canonical form; ``fields`` = time..details."""
    return mac_of_row(key, (seq, *fields, prev_hash))


def fields_of(record: AuditRecord) -> tuple[Any, ...]:
    """The MAC-covered fields between seq and prev_hash."""
    return (
        record.time, record.type, record.actor, record.subject, record.ip, record.outcome,
        record.severity, record.details,
    )  # fmt: skip


def record_is_authentic(key: MacKey, record: AuditRecord, *, as_seq: int | None = None) -> bool:
    """Whether the stored hash is the MAC of the record (taken at ``as_seq`` if given)."""
    seq = record.seq if as_seq is None else as_seq
    expected = record_mac(key, seq, fields_of(record), record.prev_hash)
    return hmac.compare_digest(expected, record.hash)


Head = tuple[Any, Any, Any, Any, Any, Any]  # type, actor, subject, ip, outcome, severity
# A head as stored (text or None in every field) -> its text inside the MAC material, and
# the head as the SQLite store binds it (None as 0, which the statement turns into NULL:
# sqlite3 binds an int far faster than None).
HeadCache = dict[Head, tuple[str, Head]]
_heads: HeadCache = {}
_HEAD_CACHE_LIMIT = 4096


def _encoded_head(head: Head) -> tuple[Head, str, Head]:
    """``head`` as stored, its text inside the MAC material, and its bound form.

    A field that is neither text nor None (an int actor, a list) is stored, and MACed, as
    its text (:func:`_clean`): stored and MACed alike, so the record verifies.
    """
    if not all(value is None or type(value) is str for value in head):
        head = tuple(_clean(value) for value in head)  # type: ignore[assignment]
        entry = _heads.get(head)
        if entry is not None:
            return head, *entry
    if len(_heads) >= _HEAD_CACHE_LIMIT:
        _heads.clear()
    type_, actor, subject, ip, outcome, severity = head
    text = _material(head)[1:-1]
    bound: Head = (  # "" stays "": only None becomes the 0 that the statement turns to NULL
        type_, 0 if actor is None else actor, 0 if subject is None else subject,
        0 if ip is None else ip, 0 if outcome is None else outcome, severity,
    )  # fmt: skip
    _heads[head] = (text, bound)
    return head, text, bound


def _clean(value: object) -> str | None:
    """Text safe to store and encode: lone surrogates replaced, other objects as ``str``."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text.encode("utf-8", "replace").decode("utf-8")


def quarantined(event: SecurityEvent, error: BaseException) -> SecurityEvent:
    """A recordable stand-in for an event that cannot be encoded (a cycle in its details,
    a lone surrogate, an unhashable field): the same who/what, the details replaced by why."""
    _log.warning("audit: event %r could not be encoded (%s); recording it without details",
                 _clean(event.type), type(error).__name__)  # fmt: skip
    severity = event.severity if event.severity in ("info", "warning", "critical") else "warning"
    return SecurityEvent(
        _clean(event.type) or "audit.unencodable_event", actor=_clean(event.actor),
        subject=_clean(event.subject), ip=_clean(event.ip), outcome=_clean(event.outcome),
        severity=severity, time=event.time if isinstance(event.time, datetime) else None,
        details={"unencodable_details": type(error).__name__},
    )  # fmt: skip


def seal_rows(
    mac: KeyedMac,
    seq: int,
    prev_hash: str,
    events: Iterable[SecurityEvent],
    now: Callable[[], datetime],
    *,
    params: list[Any] | None = None,
) -> list[Row]:
    """The rows for ``events`` at ``seq + 1``, ``seq + 2``, … chained after ``prev_hash``.

    Each row is ``(seq, time, type, actor, subject, ip, outcome, severity, details,
    prev_hash, hash)``; the MAC material is built once per record, byte for byte what
    :func:`mac_of_row` would encode. ``now`` stamps events without a time (once per call).
    With ``params``, each row's values are also appended to it, flat, with 0 for None in
    ``actor, subject, ip, outcome`` (see :data:`HeadCache`).
    """
    rows: list[Row] = []
    add = rows.append
    extend = params.extend if params is not None else None
    lookup = _heads.get
    inner_copy, outer_copy = mac._inner.copy, mac._outer.copy
    quote, details_json, proxy = _quote, _details_json, MappingProxyType
    quoted_prev = quote(prev_hash)
    default_time: str | None = None
    for original in events:
        seq += 1
        event = original
        for attempt in (1, 2):
            try:
                when = event.time
                if when is not None:
                    stamp = format_time(when)
                elif default_time is not None:
                    stamp = default_time
                else:
                    stamp = default_time = format_time(now())
                details = event.details
                if not details:
                    text = "{}"
                elif type(details) is proxy:  # as the bus delivers it: a quick dict copy
                    try:
                        text = details_json(details.copy())
                    except AttributeError:  # a proxy over a mapping without copy()
                        text = details_json(dict(details))
                else:
                    text = details_json(details if type(details) is dict else dict(details))
                head = (event.type, event.actor, event.subject, event.ip, event.outcome,
                        event.severity)  # fmt: skip
                try:
                    entry = lookup(head)
                except TypeError:  # an unhashable field
                    entry = None
                if entry is None:
                    head, encoded, bound = _encoded_head(head)
                else:
                    encoded, bound = entry
                material = f'[{seq},"{stamp}",{encoded},{quote(text)},{quoted_prev}]'.encode()
                break
            except (ValueError, TypeError, RecursionError, UnicodeError) as exc:
                if attempt == 2:
                    raise
                # never let one event stall the chain: record what can be recorded
                event = quarantined(original, exc)
        inner = inner_copy()
        inner.update(material)
        outer = outer_copy()
        outer.update(inner.digest())
        digest = outer.hexdigest()
        add((seq, stamp, *head, text, prev_hash, digest))
        if extend is not None:
            extend((seq, stamp, *bound, text, prev_hash, digest))
        prev_hash = digest
        quoted_prev = f'"{digest}"'
    return rows


def seal_event(
    key: MacKey, seq: int, event: SecurityEvent, prev_hash: str, now: datetime
) -> AuditRecord:
    """Make the record for ``event`` at position ``seq`` after ``prev_hash``."""
    return AuditRecord(*seal_rows(keyed(key), seq - 1, prev_hash, (event,), lambda: now)[0])


def checkpoint_mac(key: MacKey, kind: str, seq: int, hash_: str) -> str:
    """MAC of a checkpoint (the signed head, or a prune anchor)."""
    return mac_of_row(key, ("checkpoint", kind, seq, hash_))
