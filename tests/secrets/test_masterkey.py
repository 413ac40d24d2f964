"""Where the master key comes from, and the refusals that keep it safe."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

import tradeguard
from tradeguard.errors import ConfigurationError, SecretIntegrityError
from tradeguard.secrets import build_secrets_manager
from tradeguard.secrets.masterkey import (
    create_key_file,
    encode_key,
    load_master_key,
    read_key_file,
    store_in_keyring,
)
from tradeguard.settings import Settings


def test_fresh_home_when_first_store_then_key_file_created_0600(isolated_home: Path) -> None:
    tradeguard.store_secret("brokers/alpaca", {"api_key": "key", "secret": "secret"})
    assert tradeguard.get_secret("brokers/alpaca") == {"api_key": "key", "secret": "secret"}
    key_file = isolated_home / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(isolated_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((isolated_home / "tradeguard.db").stat().st_mode) == 0o600


def test_home_when_key_file_lost_then_refuses_to_create_new_key(isolated_home: Path) -> None:
    tradeguard.store_secret("a/b", {"k": "v"})
    tradeguard.reset()
    (isolated_home / "master.key").unlink()
    with pytest.raises(ConfigurationError, match="already holds keys"):
        tradeguard.get_secret("a/b")
    assert not (isolated_home / "master.key").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_key_file_when_group_or_other_can_access_then_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k"
    create_key_file(path)
    os.chmod(path, mode)
    with pytest.raises(ConfigurationError, match="chmod 600") as info:
        read_key_file(path)
    assert path.read_text().strip() not in str(info.value)


def test_key_file_when_exists_then_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k"
    first = create_key_file(path)
    with pytest.raises(ConfigurationError, match="already exists"):
        create_key_file(path)
    assert read_key_file(path) == first


@pytest.mark.parametrize(
    "text", ["", "not base64 !!", encode_key(b"short"), encode_key(os.urandom(33))]
)
def test_env_key_when_malformed_then_error_names_source_not_value(
    isolated_home: Path, text: str
) -> None:
    settings = Settings(home=isolated_home, master_key=text)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="TRADEGUARD_MASTER_KEY") as info:
        load_master_key(settings)
    if text:
        assert text not in str(info.value)


def test_env_key_when_set_then_preferred_over_file(isolated_home: Path) -> None:
    create_key_file(isolated_home / "master.key")
    key = os.urandom(32)
    padded = base64.urlsafe_b64encode(key).decode()  # padding accepted too
    settings = Settings(home=isolated_home, master_key=padded)  # type: ignore[arg-type]
    assert load_master_key(settings) == key


def test_key_file_setting_when_missing_then_error(isolated_home: Path) -> None:
    settings = Settings(home=isolated_home, master_key_file=isolated_home / "absent.key")
    with pytest.raises(ConfigurationError, match="does not exist"):
        build_secrets_manager(settings)


def test_wrong_master_key_when_reading_then_integrity_error_naming_path(
    settings_for: Callable[..., Settings],
) -> None:
    with build_secrets_manager(settings_for()) as manager:
        manager.store_secret("brokers/alpaca", {"secret": "value-123"})
    other = encode_key(os.urandom(32))
    with build_secrets_manager(settings_for(master_key=other)) as wrong:
        with pytest.raises(SecretIntegrityError) as info:
            wrong.get_secret("brokers/alpaca")
    assert info.value.path == "brokers/alpaca" and info.value.version == 1
    assert "master key" in str(info.value)
    assert other not in str(info.value) and "value-123" not in str(info.value)


def test_keyring_when_no_backend_then_configuration_error(isolated_home: Path) -> None:
    pytest.importorskip("keyring")
    with pytest.raises(ConfigurationError, match="keyring"):
        store_in_keyring(Settings(home=isolated_home))


def test_settings_repr_when_secrets_set_then_masked(isolated_home: Path) -> None:
    settings = Settings(
        home=isolated_home,
        master_key="super-secret-master",  # type: ignore[arg-type]
        vault_token="hvs.token-value",  # type: ignore[arg-type]
        database_url="postgresql://u:dbpassword@h/db",  # type: ignore[arg-type]
    )
    shown = repr(settings) + str(settings)
    for secret in ("super-secret-master", "hvs.token-value", "dbpassword"):
        assert secret not in shown
