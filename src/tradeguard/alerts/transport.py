"""One signed HTTP POST of an alert body, and how receivers verify it.

The signature scheme (see :mod:`tradeguard.alerts.webhook` for the whole protocol)::

    X-Tradeguard-Timestamp: <unix seconds, decimal>
    X-Tradeguard-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

Stdlib only (``urllib.request``). Redirects are refused, and loopback endpoints never go
through an environment proxy. Nothing here logs or returns the URL's path, query or secret.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import IO, Final, Literal
from urllib.parse import urlsplit

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import AlertConfigError

SIGNATURE_HEADER: Final = "X-Tradeguard-Signature"
TIMESTAMP_HEADER: Final = "X-Tradeguard-Timestamp"
DELIVERY_HEADER: Final = "X-Tradeguard-Delivery"
_MAX_RESPONSE: Final = 64 * 1024

Outcome = Literal["ok", "retry", "fatal"]


def sign(secret: bytes | str, body: bytes, timestamp: str) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of ``timestamp.body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    material = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(key, material, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes | str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = 300.0,
) -> bool:
    """For receivers: is ``signature`` valid for ``body`` and is ``timestamp`` recent enough?

    ``now`` is the receiver's unix time (default: the system clock); timestamps further than
    ``tolerance`` seconds from it are refused. The comparison is constant-time.
    """
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    current = SYSTEM_CLOCK.now().timestamp() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, body, timestamp).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback IP address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: an alert must not be re-sent to wherever a response points."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


@dataclass(frozen=True, slots=True)
class Result:
    """How one attempt ended: ``ok``, ``retry`` (transient) or ``fatal``; ``detail`` for logs."""

    outcome: Outcome
    detail: str
    retry_after: float | None = None


def _classify(status: int, retry_after: str | None) -> Result:
    if 200 <= status < 300:
        return Result("ok", f"HTTP {status}")
    if status == 429 or status >= 500:
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return Result("retry", f"HTTP {status}", seconds)
    return Result("fatal", f"HTTP {status}")


class SignedPoster:
    """POSTs bodies to one checked URL, signed with the secret and the clock's time.

    Raises :class:`AlertConfigError` for a URL that is not http(s), has no host, embeds
    credentials, or is plain http to a non-loopback host without ``allow_insecure``; for an
    empty secret; and for a timeout that is not positive. ``target`` (scheme, host, port) is
    the only part of the URL fit for logs.
    """

    def __init__(
        self,
        url: str,
        secret: bytes | str,
        *,
        timeout: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
        allow_insecure: bool = False,
    ) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise AlertConfigError("webhook url must be an http(s) URL with a host")
        if parts.username is not None or parts.password is not None:
            raise AlertConfigError("webhook url must not embed credentials; sign with the secret")
        try:
            port = parts.port
        except ValueError:
            raise AlertConfigError("webhook url has an invalid port") from None
        loopback = is_loopback(parts.hostname)
        if scheme == "http" and not loopback and not allow_insecure:
            raise AlertConfigError(
                f"webhook url for host {parts.hostname!r} must use https; plain http is only "
                "allowed to loopback hosts unless allow_insecure=True"
            )
        key = secret.encode() if isinstance(secret, str) else secret
        if not isinstance(key, bytes) or not key:
            raise AlertConfigError("webhook secret must be non-empty bytes or str")
        if not timeout > 0:
            raise AlertConfigError("webhook timeout must be > 0 seconds")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.target = f"{scheme}://{host}" + (f":{port}" if port is not None else "")
        self.timeout = timeout
        self._url = url
        self._secret = key
        self._clock = clock
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if loopback:  # never route loopback traffic through an environment proxy
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"SignedPoster({self.target!r})"

    def post(self, body: bytes, delivery: str) -> Result:
        """Make one attempt; never raises for network or HTTP failures."""
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tradeguard-alerts",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, body, timestamp),
            DELIVERY_HEADER: delivery,
        }
        # The scheme was checked to be http(s) in __init__.
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(_MAX_RESPONSE)
                status = int(response.status)
        except urllib.error.HTTPError as err:
            try:
                return _classify(err.code, err.headers.get("Retry-After"))
            finally:
                err.close()
        except (OSError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            return Result("retry", f"{type(reason).__name__}: {reason}")
        return _classify(status, None)
