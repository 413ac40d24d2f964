"""The Vault backend beyond the contract: URLs, tokens, and the local fallback during an outage."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from servers import BaoServer, start_bao
from tradeguard.errors import BackendUnavailable, ConfigurationError, SecretNotFound
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.secrets import SecretsManager, build_secrets_manager
from tradeguard.secrets.vault_url import is_loopback, parse_vault_url
from tradeguard.settings import Settings

pytestmark = pytest.mark.vault


@pytest.mark.parametrize(
    "url",
    [
        "vault+http://vault.example.com:8200/",
        "vault+http://10.0.0.5:8200/",
        "vault+http://127.0.0.1.evil.com/",
    ],
)
def test_url_when_plain_http_to_remote_host_then_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="loopback"):
        parse_vault_url(url)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "[::1]", "localhost"])
def test_url_when_plain_http_to_loopback_then_accepted(host: str) -> None:
    address = parse_vault_url(f"vault+http://{host}:8200/?mount=kv")
    assert address.url.startswith("http://") and address.mount == "kv"
    assert is_loopback(host.strip("[]"))


def test_url_when_https_then_defaults_and_label_hide_nothing_secret() -> None:
    address = parse_vault_url("vault+https://vault.internal:8200/")
    assert address.url == "https://vault.internal:8200"
    assert address.mount == "secret"
    assert address.label == "vault:vault.internal:8200/secret"


def test_url_when_credentials_embedded_then_refused_without_echo() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_vault_url("vault+https://user:hunter2@vault.internal/")
    assert "hunter2" not in str(info.value)


def test_url_when_unknown_parameter_then_named() -> None:
    with pytest.raises(ConfigurationError, match="tls_skip"):
        parse_vault_url("vault+https://v.internal/?tls_skip=1")


def test_secrets_url_when_unknown_scheme_then_names_scheme_not_url(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(secrets_url="consul://admin:topsecretpw@consul.internal/kv")
    with pytest.raises(ConfigurationError) as info:
        build_secrets_manager(settings)
    assert "'consul'" in str(info.value)
    assert "topsecretpw" not in str(info.value) and "consul.internal" not in str(info.value)


def test_vault_when_no_token_then_configuration_error(
    settings_for: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigurationError, match="TRADEGUARD_VAULT_TOKEN"):
        build_secrets_manager(settings_for(secrets_url="vault+http://127.0.0.1:1/"))


def test_vault_when_token_wrong_then_secrets_error_without_token(
    vault_url: str, settings_for: Callable[..., Settings]
) -> None:
    bad = "s.definitely-not-valid-token"
    with build_secrets_manager(settings_for(secrets_url=vault_url, vault_token=bad)) as manager:
        with pytest.raises(Exception) as info:
            manager.store_secret("a/b", {"k": "v"})
    assert "refused the token" in str(info.value)
    assert bad not in str(info.value)


@pytest.fixture
def private_bao() -> Iterator[BaoServer]:
    """A server of this test's own, so it can be stopped mid-test."""
    server = start_bao()
    yield server
    server.stop()


@pytest.fixture
def outage_manager(
    private_bao: BaoServer, settings_for: Callable[..., Settings]
) -> Iterator[tuple[SecretsManager, BaoServer, list[SecurityEvent]]]:
    private_bao.new_mount("kvfallback")
    bus = EventBus()
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    settings = settings_for(
        secrets_url=f"vault+http://127.0.0.1:{private_bao.port}/?mount=kvfallback",
        vault_token=private_bao.token,
        vault_timeout=2.0,
    )
    with build_secrets_manager(settings, bus=bus) as manager:
        yield manager, private_bao, seen


def test_fallback_when_vault_stops_then_reads_served_from_mirror_and_writes_fail(
    outage_manager: tuple[SecretsManager, BaoServer, list[SecurityEvent]],
) -> None:
    manager, server, seen = outage_manager
    manager.store_secret("brokers/alpaca", {"api_key": "k1", "secret": "s1"})
    manager.store_secret("brokers/alpaca", {"api_key": "k2", "secret": "s2"})
    manager.store_secret("brokers/ib", {"token": "ib-1"})
    manager.store_secret("brokers/deleted", {"token": "old"})
    manager.delete_secret("brokers/deleted")
    assert manager.get_secret("brokers/alpaca", version=1) == {"api_key": "k1", "secret": "s1"}

    server.stop()
    manager.clear_cache()

    assert manager.get_secret("brokers/alpaca") == {"api_key": "k2", "secret": "s2"}
    assert manager.get_secret("brokers/alpaca", version=1) == {"api_key": "k1", "secret": "s1"}
    assert manager.get_secret("brokers/ib") == {"token": "ib-1"}
    outage_events = [e for e in seen if e.type == "secret.backend_unavailable"]
    assert len(outage_events) == 3
    assert outage_events[0].subject == "brokers/alpaca"
    assert outage_events[0].severity == "warning"
    assert "s2" not in repr(outage_events)

    with pytest.raises(BackendUnavailable):
        manager.get_secret("brokers/deleted")  # deleted in Vault: the mirror must not revive it
    with pytest.raises(BackendUnavailable):
        manager.get_secret("brokers/never-read")
    with pytest.raises(BackendUnavailable):
        manager.store_secret("brokers/alpaca", {"api_key": "k3"})
    with pytest.raises(BackendUnavailable):
        manager.delete_secret("brokers/alpaca")
    with pytest.raises(BackendUnavailable):
        manager.rotate_key()
    with pytest.raises(BackendUnavailable):
        manager.list_secrets()

    manager.clear_cache()  # the failed write did not land in the mirror either
    assert manager.get_secret("brokers/alpaca") == {"api_key": "k2", "secret": "s2"}


def test_fallback_when_destroyed_in_vault_then_mirror_forgets(
    outage_manager: tuple[SecretsManager, BaoServer, list[SecurityEvent]],
) -> None:
    manager, server, _ = outage_manager
    manager.store_secret("x/y", {"k": "v1"})
    manager.store_secret("x/y", {"k": "v2"})
    manager.get_secret("x/y", version=1)
    manager.destroy_secret("x/y", versions=[2])
    server.stop()
    manager.clear_cache()
    with pytest.raises(BackendUnavailable):
        manager.get_secret("x/y", version=2)
    assert manager.get_secret("x/y") == {"k": "v1"}


def test_mirror_when_read_then_sealed_under_its_own_namespace(
    outage_manager: tuple[SecretsManager, BaoServer, list[SecurityEvent]],
    settings_for: Callable[..., Settings],
) -> None:
    manager, _, _ = outage_manager
    manager.store_secret("only/in/vault", {"k": "v"})
    with build_secrets_manager(settings_for()) as local:
        with pytest.raises(SecretNotFound):
            local.get_secret("only/in/vault")
