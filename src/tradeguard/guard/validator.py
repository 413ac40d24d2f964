"""SecurityValidator: the request guard's one object — inspection, rate limits, IP bans."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from tradeguard.events import EventBus, SecurityEvent
from tradeguard.guard.bans import BanDecision, BanList
from tradeguard.guard.client_ip import ClientIPResolver
from tradeguard.guard.inspect import InputVerdict, escape_html, sanitize_text, validate_input
from tradeguard.guard.ratelimit import RateLimitDecision, RateLimiter, RateLimitSpec
from tradeguard.guard.request import Memo, RequestLimits, RequestVerdict, inspect_request


class SecurityValidator:
    """Input inspection, whole-request inspection, rate limiting and IP bans together.

    Detected threats and exceeded rate limits publish events and, when the client address
    is known, count as violations toward a ban. This is defence in depth: it never replaces
    parameterised queries and output encoding.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        bans: BanList,
        *,
        bus: EventBus | None = None,
        trusted_proxies: Iterable[str] = (),
        request_limits: RequestLimits | None = None,
    ) -> None:
        self.limiter = limiter
        self.bans = bans
        self._bus = bus
        self._resolver = ClientIPResolver(trusted_proxies)
        self.request_limits = request_limits or RequestLimits()
        self._safe_texts: Memo = {}  # inspect_request's memo

    def __repr__(self) -> str:
        return f"SecurityValidator(limiter={self.limiter!r})"

    def _publish(self, kind: str, **fields: object) -> None:
        if self._bus is not None and self._bus.has_subscribers:
            ip = fields.pop("ip", None)
            self._bus.publish(SecurityEvent(
                kind, ip=ip if isinstance(ip, str) else None, severity="warning",
                outcome="rejected", details=fields,
            ))  # fmt: skip

    # -- inspection --------------------------------------------------------------------

    def validate_input(
        self, value: str, *, field: str | None = None, ip: str | None = None
    ) -> InputVerdict:
        """Inspect one value (see :func:`tradeguard.guard.validate_input`); never raises."""
        verdict = validate_input(value, field=field)
        if not verdict.safe:
            kinds = sorted(verdict.kinds)
            self._publish("guard.threat_detected", ip=ip, field=field, kinds=kinds,
                          rules=[t.rule for t in verdict.threats])  # fmt: skip
            if ip is not None:
                self.record_violation(ip, "injection")
        return verdict

    def inspect_request(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes | Iterable[bytes] | None,
        *,
        client_ip: str | None = None,
        exempt: Callable[[str], bool] | None = None,
    ) -> RequestVerdict:
        """Inspect a whole request (sizes, content type, JSON, every string but ``exempt``)."""
        verdict = inspect_request(method, path, query, headers, body, client_ip=client_ip,
                                  limits=self.request_limits, exempt=exempt,
                                  memo=self._safe_texts)  # fmt: skip
        if not verdict.allowed:
            kinds = sorted({t.kind for t in verdict.threats})
            self._publish(
                "guard.request_rejected", ip=client_ip, reason=verdict.reason,
                field=verdict.field, kinds=kinds,
            )  # fmt: skip
            if client_ip is not None and verdict.reason == "THREAT_DETECTED":
                self.record_violation(client_ip, "injection")
        return verdict

    sanitize_text = staticmethod(sanitize_text)
    escape_html = staticmethod(escape_html)

    # -- rate limits -------------------------------------------------------------------

    def rate_limit(self, identity: str, action: str, cost: int = 1) -> RateLimitDecision:
        """Decide one request of ``action`` by ``identity`` (GCRA over every window)."""
        return self.limiter.rate_limit(identity, action, cost)

    def check_rate_limit(self, identity: str, action: str) -> tuple[bool, str]:
        """The seed's form: ``(allowed, message)``."""
        return self.limiter.check_rate_limit(identity, action)

    def configure_rate_limit(self, action: str, spec: str | RateLimitSpec) -> None:
        """Set the windows of ``action`` from a spec such as ``"10/second;300/minute"``."""
        self.limiter.configure_rate_limit(action, spec)

    # -- bans --------------------------------------------------------------------------

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: the peer, or X-Forwarded-For's right-most untrusted hop
        when the peer is a trusted proxy."""
        return self._resolver.resolve(peer, forwarded_for)

    def record_violation(self, ip: str, kind: str) -> BanDecision | None:
        """Count a violation; returns the ban it started, if any."""
        return self.bans.record_violation(ip, kind)

    def is_blocked(self, ip: str) -> float | None:
        """Seconds left on the address's ban, or None."""
        return self.bans.is_blocked(ip)

    def ban(self, ip: str, duration: float) -> BanDecision:
        """Ban an address for ``duration`` seconds."""
        return self.bans.ban(ip, duration)

    def unban(self, ip: str) -> bool:
        """Lift a ban."""
        return self.bans.unban(ip)
