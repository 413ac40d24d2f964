"""HashiCorp Vault / OpenBao KV v2 through hvac (the ``vault`` extra).

Versions, check-and-set, soft delete, undelete, destroy and metadata map onto KV v2
natively. Transport failures become :class:`BackendUnavailable`; Vault's own refusals are
translated into the matching tradeguard error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from tradeguard.errors import (
    BackendUnavailable,
    ConfigurationError,
    SecretNotFound,
    SecretsError,
    VersionConflict,
)
from tradeguard.secrets.models import SecretMetadata, VersionInfo
from tradeguard.secrets.vault_url import VaultAddress

T = TypeVar("T")


def _parse_time(value: str | None) -> datetime | None:
    """Vault's RFC 3339 times carry nanoseconds; Python takes microseconds."""
    if not value:
        return None
    text = value.rstrip("Z")
    if "." in text:
        head, fraction = text.split(".", 1)
        text = f"{head}.{fraction[:6]}"
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


class VaultSecretsBackend:
    """KV v2 at ``address.mount``; ``rotate_key`` rotates Vault's barrier key (needs sys/rotate)."""

    kind = "vault"

    def __init__(self, address: VaultAddress, token: str, *, timeout: float = 5.0) -> None:
        try:
            import hvac
            import hvac.exceptions
            import requests
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError(
                "the Vault backend needs hvac: pip install 'tradeguard[vault]'"
            ) from exc
        self._hvac_errors = hvac.exceptions
        self._transport_errors: tuple[type[BaseException], ...] = (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            hvac.exceptions.VaultDown,
            hvac.exceptions.BadGateway,
            hvac.exceptions.InternalServerError,
            hvac.exceptions.VaultNotInitialized,
        )
        self.address = address
        self._client = hvac.Client(
            url=address.url,
            token=token,
            timeout=timeout,
            namespace=address.namespace,
            verify=address.ca_bundle if address.ca_bundle else True,
        )
        self._kv = self._client.secrets.kv.v2

    def __repr__(self) -> str:
        return f"VaultSecretsBackend({self.address.label!r})"

    def _call(self, path: str | None, operation: Callable[[], T]) -> T:
        errors = self._hvac_errors
        try:
            return operation()
        except self._transport_errors as exc:
            raise BackendUnavailable(
                f"Vault at {self.address.label} is unavailable ({type(exc).__name__})"
            ) from exc
        except (errors.Unauthorized, errors.Forbidden) as exc:
            raise SecretsError(
                f"Vault refused the token for {path or 'this operation'} "
                f"({type(exc).__name__}): check TRADEGUARD_VAULT_TOKEN and its policy"
            ) from exc
        except errors.RateLimitExceeded as exc:
            raise BackendUnavailable("Vault is rate-limiting this client; retry later") from exc

    def put(self, path: str, data: Mapping[str, str], *, cas: int | None) -> int:
        """Create a version (CAS enforced by Vault)."""
        errors = self._hvac_errors
        try:
            response = self._call(
                path,
                lambda: self._kv.create_or_update_secret(
                    path=path, secret=dict(data), cas=cas, mount_point=self.address.mount
                ),
            )
        except errors.InvalidRequest as exc:
            if cas is None or "check-and-set" not in str(exc):
                raise SecretsError(f"Vault rejected the write to {path} (HTTP 400)") from exc
            current = self._current_version(path)
            raise VersionConflict(path, cas, current) from None
        return int(response["data"]["version"])

    def _current_version(self, path: str) -> int:
        try:
            return self.metadata(path).current_version
        except SecretNotFound:
            return 0

    def _read(self, path: str, version: int | None) -> dict[str, Any] | None:
        errors = self._hvac_errors
        try:
            response = self._call(
                path,
                lambda: self._kv.read_secret_version(
                    path=path,
                    version=version,
                    mount_point=self.address.mount,
                    raise_on_deleted_version=False,
                ),
            )
        except errors.InvalidPath:
            return None
        data: dict[str, Any] = response.get("data") or {}
        return data if data.get("data") is not None else None

    def get(self, path: str, version: int | None) -> tuple[int, dict[str, str]]:
        """One read for a live latest version; on a deleted latest, the highest live one."""
        found = self._read(path, version)
        if found is None and version is None:
            live = [v.version for v in self.metadata(path).versions if v.live]
            if live:
                found = self._read(path, live[-1])
        if found is None:
            raise SecretNotFound(path, version)
        values = {str(k): str(v) for k, v in found["data"].items()}
        return int(found["metadata"]["version"]), values

    def list(self, prefix: str) -> list[str]:
        """Walk the mount from the folder that holds ``prefix`` and filter by it."""
        folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        found: list[str] = []
        pending = [folder]
        while pending:
            current = pending.pop()
            try:
                response = self._call(
                    current,
                    lambda c=current: self._kv.list_secrets(  # type: ignore[misc]
                        path=c, mount_point=self.address.mount
                    ),
                )
            except self._hvac_errors.InvalidPath:
                continue
            for key in response["data"]["keys"]:
                full = current + key
                if key.endswith("/"):
                    if full.startswith(prefix) or prefix.startswith(full):
                        pending.append(full)
                elif full.startswith(prefix):
                    found.append(full)
        return sorted(found)

    def metadata(self, path: str) -> SecretMetadata:
        """KV v2 metadata of ``path``."""
        try:
            response = self._call(
                path,
                lambda: self._kv.read_secret_metadata(path=path, mount_point=self.address.mount),
            )
        except self._hvac_errors.InvalidPath:
            raise SecretNotFound(path) from None
        data = response["data"]
        versions = tuple(
            VersionInfo(
                version=int(number),
                created_at=_parse_time(info.get("created_time")) or datetime.fromtimestamp(0, UTC),
                deleted_at=_parse_time(info.get("deletion_time")),
                destroyed=bool(info.get("destroyed")),
            )
            for number, info in sorted(data["versions"].items(), key=lambda kv: int(kv[0]))
        )
        epoch = datetime.fromtimestamp(0, UTC)
        return SecretMetadata(
            path=path,
            current_version=int(data["current_version"]),
            created_at=_parse_time(data.get("created_time")) or epoch,
            updated_at=_parse_time(data.get("updated_time")) or epoch,
            versions=versions,
        )

    def _targets(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        meta = self.metadata(path)
        if versions is None:
            return (meta.current_version,)
        for number in versions:
            if meta.version(number) is None:
                raise SecretNotFound(path, number)
        return versions

    def delete(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Soft-delete versions."""
        targets = self._targets(path, versions)
        self._call(
            path,
            lambda: self._kv.delete_secret_versions(
                path=path, versions=list(targets), mount_point=self.address.mount
            ),
        )
        return targets

    def undelete(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Undo soft deletes; a destroyed version cannot come back."""
        targets = self._targets(path, versions)
        meta = self.metadata(path)
        for number in targets:
            info = meta.version(number)
            if info is not None and info.destroyed:
                raise SecretNotFound(path, number, why="destroyed; it cannot be restored")
        self._call(
            path,
            lambda: self._kv.undelete_secret_versions(
                path=path, versions=list(targets), mount_point=self.address.mount
            ),
        )
        return targets

    def destroy(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Destroy versions, or the whole path with its metadata."""
        if versions is None:
            targets = tuple(v.version for v in self.metadata(path).versions)
            self._call(
                path,
                lambda: self._kv.delete_metadata_and_all_versions(
                    path=path, mount_point=self.address.mount
                ),
            )
            return targets
        targets = self._targets(path, versions)
        self._call(
            path,
            lambda: self._kv.destroy_secret_versions(
                path=path, versions=list(targets), mount_point=self.address.mount
            ),
        )
        return targets

    def rotate_key(self) -> int:
        """Rotate Vault's barrier encryption key; returns the new key term."""
        self._call(None, self._client.sys.rotate_encryption_key)
        status = self._call(None, self._client.sys.get_encryption_key_status)
        data = status.get("data", status)
        return int(data["term"])

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.adapter.close()

    def ping(self) -> bool:
        """Whether Vault answers and is unsealed."""
        try:
            health = self._call(None, lambda: self._client.sys.read_health_status(method="GET"))
        except BackendUnavailable:
            return False
        return isinstance(health, dict) and not health.get("sealed", True)
