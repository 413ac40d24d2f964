"""The client's address behind reverse proxies, without trusting what the client wrote.

``X-Forwarded-For`` is a list each proxy *appends* its peer to, so only the entries added
by proxies we trust are facts; everything further left may have been written by the
client. :func:`client_ip` therefore:

1. uses the socket peer unless the peer is a trusted proxy (an untrusted peer's header is
   ignored entirely: that is the spoofing case);
2. otherwise walks the header from the right, skipping trusted proxies, and returns the
   first address that is not one (the right-most untrusted address);
3. stops at the first malformed entry (or after 64 hops): the trusted proxy that wrote it
   gave no usable client address, so that proxy (the last trusted hop reached, which is
   the peer when the bad entry is the right-most) is the best address there is: never
   something from further left, which the client controls;
4. returns the left-most entry when every entry is a trusted proxy, and the peer when the
   header is empty.

Entries may carry a port (``1.2.3.4:5678``, ``[2001:db8::1]:443``); IPv4-mapped IPv6
addresses count as IPv4. Several header lines must be joined with ``", "`` in order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

from tradeguard.errors import ConfigurationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_HOPS = 64
_MAX_TEXT = 64


def parse_ip(text: str) -> IPAddress:
    """The address in ``text`` (IPv4-mapped IPv6 as IPv4, zone dropped); ValueError if none."""
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        raise ValueError(f"invalid IP address {str(text)[:_MAX_TEXT]!r}")
    return _parse_text(text)


def canonical_ip(text: str) -> str:
    """``parse_ip(text)`` as its canonical string."""
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        raise ValueError(f"invalid IP address {str(text)[:_MAX_TEXT]!r}")
    return _canonical(text)


# Peers repeat request after request, and parsing costs more than the rest of a ban check;
# failures are not cached (lru_cache does not keep exceptions).
@lru_cache(maxsize=4096)
def _canonical(text: str) -> str:
    return str(_parse_text(text))


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> IPAddress:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(f"invalid IP address {text[:_MAX_TEXT]!r}") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            return ipaddress.IPv6Address(int(address))
    return address


def parse_networks(cidrs: Iterable[str], what: str) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) as networks; ConfigurationError names a bad one."""
    if isinstance(cidrs, str):
        raise ConfigurationError(f"{what} must be a list of CIDRs, not one string")
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            raise ConfigurationError(f"invalid CIDR {str(cidr)[:64]!r} in {what}") from None
    return tuple(networks)


def in_networks(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    """Whether ``address`` lies in any of ``networks`` (of its own version)."""
    return any(address.version == net.version and address in net for net in networks)


def _parse_hop(entry: str) -> IPAddress | None:
    text = entry.strip()
    if text.startswith("["):  # [v6] or [v6]:port
        end = text.find("]")
        rest = text[end + 1 :]
        if end < 0 or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # v4:port
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        return parse_ip(text)
    except ValueError:
        return None


class ClientIPResolver:
    """:func:`client_ip` with the trusted proxies parsed once."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = parse_networks(trusted_proxies, "trusted proxies")

    def __repr__(self) -> str:
        return f"ClientIPResolver(trusted={[str(n) for n in self._trusted]})"

    def resolve(self, peer: str, forwarded_for: str | None) -> str:
        """The client address as a canonical string; ValueError if the peer is not an IP."""
        if not forwarded_for or not forwarded_for.strip():
            return canonical_ip(peer)
        address = parse_ip(peer)
        if not in_networks(address, self._trusted):
            return str(address)
        last_trusted = address
        for hops, entry in enumerate(reversed(forwarded_for.split(","))):
            hop = _parse_hop(entry) if hops < MAX_HOPS else None
            if hop is None:
                return str(last_trusted)
            if not in_networks(hop, self._trusted):
                return str(hop)
            last_trusted = hop
        return str(last_trusted)


@lru_cache(maxsize=32)
def _resolver(trusted: tuple[str, ...]) -> ClientIPResolver:
    return ClientIPResolver(trusted)


def client_ip(peer: str, forwarded_for: str | None, trusted_proxies: Sequence[str]) -> str:
    """The client address for a request from socket ``peer`` carrying ``forwarded_for``.

    ``trusted_proxies``: CIDRs of our own reverse proxies. See the module docstring for the
    rules; ValueError when ``peer`` is not an IP address, ConfigurationError for a bad CIDR.
    """
    return _resolver(tuple(trusted_proxies)).resolve(peer, forwarded_for)
