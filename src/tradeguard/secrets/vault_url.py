"""Parsing ``vault+https://host:port/?mount=secret`` without ever echoing the URL."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tradeguard.errors import ConfigurationError

_ALLOWED_PARAMS = frozenset({"mount", "namespace", "ca"})


@dataclass(frozen=True, slots=True)
class VaultAddress:
    """Where the Vault server is and which KV v2 mount to use."""

    url: str
    mount: str
    namespace: str | None
    ca_bundle: str | None

    @property
    def label(self) -> str:
        """A name for this Vault mount, safe to store and log (no credentials)."""
        return f"vault:{urlsplit(self.url).netloc}/{self.mount}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_vault_url(raw: str) -> VaultAddress:
    """Validate a ``vault+https://`` (or loopback-only ``vault+http://``) URL."""
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("vault+https", "vault+http"):
        raise ConfigurationError(f"not a Vault URL scheme: {scheme!r}")
    if parts.username or parts.password:
        raise ConfigurationError(
            "do not put credentials in the Vault URL; set TRADEGUARD_VAULT_TOKEN instead"
        )
    host = parts.hostname
    if not host:
        raise ConfigurationError("the Vault URL needs a host")
    if scheme == "vault+http" and not is_loopback(host):
        raise ConfigurationError(
            "vault+http:// is accepted only for a loopback host; use vault+https:// for "
            "a remote Vault"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError("the Vault URL has an invalid port") from exc
    params = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(params) - _ALLOWED_PARAMS)
    if unknown:
        raise ConfigurationError(
            f"unknown Vault URL parameter(s): {', '.join(unknown)} (known: mount, namespace, ca)"
        )
    mount = params.get("mount", ["secret"])[-1].strip("/")
    if not mount:
        raise ConfigurationError("the Vault mount cannot be empty")
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    base = f"{scheme.removeprefix('vault+')}://{netloc}"
    namespace = params.get("namespace", [None])[-1] or None
    ca = params.get("ca", [None])[-1] or None
    return VaultAddress(url=base, mount=mount, namespace=namespace, ca_bundle=ca)
