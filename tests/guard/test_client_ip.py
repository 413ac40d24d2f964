"""The client address behind proxies: X-Forwarded-For is believed only from trusted peers,
and only as far left as trusted proxies wrote it."""

from __future__ import annotations

import pytest

from tradeguard.errors import ConfigurationError
from tradeguard.guard.client_ip import ClientIPResolver, client_ip, parse_ip

PROXIES = ("10.0.0.0/8", "192.168.1.1/32", "fd00::/8")


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # an untrusted peer: its header is ignored, however plausible (spoofing)
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("203.0.113.9", "10.0.0.5, 127.0.0.1", "203.0.113.9"),
        # a trusted peer without a header (a health check) or with an empty one
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "   ", "10.0.0.2"),
        # one proxy
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        # a chain of proxies: the right-most untrusted entry is the client
        ("10.0.0.2", "198.51.100.1, 10.0.0.7, 192.168.1.1", "198.51.100.1"),
        # whatever the client prepended is left of the real address and ignored
        ("10.0.0.2", "1.1.1.1, 8.8.8.8, 198.51.100.1, 10.0.0.7", "198.51.100.1"),
        ("10.0.0.2", "10.0.0.99, 198.51.100.1", "198.51.100.1"),  # a forged 'proxy' hop
        # every hop is our own: the left-most is where the request began
        ("10.0.0.2", "10.0.0.3, 10.0.0.4", "10.0.0.3"),
        # malformed: stop at the trusted hop that wrote it, never look further left
        ("10.0.0.2", "198.51.100.1, garbage", "10.0.0.2"),
        ("10.0.0.2", "198.51.100.1, unknown, 10.0.0.7", "10.0.0.7"),
        ("10.0.0.2", "198.51.100.1,, 10.0.0.7", "10.0.0.7"),
        ("10.0.0.2", "198.51.100.1, 10.0.0.7, 300.1.1.1", "10.0.0.2"),
        ("10.0.0.2", "garbage, 198.51.100.1", "198.51.100.1"),  # left of the client: moot
        # ports and brackets
        ("10.0.0.2", "198.51.100.1:5678", "198.51.100.1"),
        ("10.0.0.2", "[2001:db8::1]:443, 10.0.0.7:80", "2001:db8::1"),
        ("10.0.0.2", "[2001:db8::2]", "2001:db8::2"),
        ("10.0.0.2", "198.51.100.1:http", "10.0.0.2"),
        ("10.0.0.2", "[2001:db8::1]x", "10.0.0.2"),
        # IPv6 proxies and clients, canonical output
        ("fd00::1", "2001:DB8:0:0::7, fd00::2", "2001:db8::7"),
        ("fd00::1", "203.0.113.50", "203.0.113.50"),
        ("2001:db8::5", "198.51.100.1", "2001:db8::5"),  # untrusted IPv6 peer
        ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),  # IPv4-mapped peer
        ("10.0.0.2", "::ffff:198.51.100.1", "198.51.100.1"),
    ],
)
def test_client_ip_when_headers_vary_then_rightmost_untrusted(
    peer: str, xff: str | None, expected: str
) -> None:
    assert client_ip(peer, xff, PROXIES) == expected


def test_client_ip_when_no_trusted_proxies_then_always_the_peer() -> None:
    assert client_ip("10.0.0.2", "198.51.100.1", []) == "10.0.0.2"


def test_client_ip_when_header_is_very_long_then_stops_after_64_hops() -> None:
    header = ", ".join(["198.51.100.1"] + ["10.0.0.7"] * 100)
    assert client_ip("10.0.0.2", header, PROXIES) == "10.0.0.7"
    assert client_ip("10.0.0.2", ", ".join(["198.51.100.1"] + ["10.0.0.7"] * 63), PROXIES) == (
        "198.51.100.1"
    )


@pytest.mark.parametrize("peer", ["", "unix:/run/app.sock", "10.0.0.2:443", "example.com"])
def test_client_ip_when_peer_is_not_an_ip_then_value_error(peer: str) -> None:
    with pytest.raises(ValueError, match="invalid IP address"):
        client_ip(peer, "198.51.100.1", PROXIES)


def test_trusted_proxies_when_malformed_then_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"invalid CIDR 'ten/8' in trusted proxies"):
        ClientIPResolver(["ten/8"])
    with pytest.raises(ConfigurationError, match="list of CIDRs"):
        ClientIPResolver("10.0.0.0/8")


def test_parse_ip_when_zoned_or_mapped_then_plain_address() -> None:
    assert str(parse_ip("fe80::1%eth0")) == "fe80::1"
    assert str(parse_ip(" ::ffff:192.0.2.1 ")) == "192.0.2.1"
