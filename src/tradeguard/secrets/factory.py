"""Build a SecretsManager from Settings: the backend is chosen by URL."""

from __future__ import annotations

from sqlalchemy import Engine, func, inspect, select

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import ConfigurationError
from tradeguard.events import EventBus
from tradeguard.secrets.backend import SecretsBackend
from tradeguard.secrets.manager import SecretsManager
from tradeguard.secrets.masterkey import create_key_file, default_key_file, load_master_key
from tradeguard.secrets.sql_backend import SqlSecretsBackend
from tradeguard.secrets.sql_schema import key_encryption_keys
from tradeguard.settings import Settings
from tradeguard.storage import create_database_engine, scheme_of

VAULT_CACHE_JITTER = 0.2


def store_is_empty(engine: Engine) -> bool:
    """Whether the database holds no key-encryption keys (a new master key is safe)."""
    if not inspect(engine).has_table(key_encryption_keys.name):
        return True
    with engine.connect() as conn:
        return not conn.execute(select(func.count()).select_from(key_encryption_keys)).scalar()


def resolve_master_key(settings: Settings, engine: Engine, *, create: bool) -> bytes:
    """The master key; with ``create``, a new key file only for a store that holds no keys."""
    key = load_master_key(settings)
    if key is not None:
        return key
    if create and settings.master_key_file is None and store_is_empty(engine):
        return create_key_file(default_key_file(settings))
    raise ConfigurationError(
        "no master key found: set TRADEGUARD_MASTER_KEY or TRADEGUARD_MASTER_KEY_FILE, or run "
        "`tradeguard init` for a new home (the store already holds keys, so a new master key "
        "would not open them)"
    )


def build_local_backend(
    settings: Settings, engine: Engine, *, clock: Clock, create_key: bool
) -> SqlSecretsBackend:
    """The SQL-backed store over ``engine``."""
    master = resolve_master_key(settings, engine, create=create_key)
    return SqlSecretsBackend(engine, master, clock=clock)


def build_secrets_manager(
    settings: Settings,
    *,
    bus: EventBus | None = None,
    clock: Clock = SYSTEM_CLOCK,
    engine: Engine | None = None,
    create_key: bool = True,
) -> SecretsManager:
    """A SecretsManager for ``settings.secrets_url`` (unset: the local store)."""
    bus = bus if bus is not None else EventBus(clock=clock)
    url = settings.secrets_url.get_secret_value() if settings.secrets_url else None
    scheme = scheme_of(url) if url else "local"
    jitter = 0.0
    backend: SecretsBackend
    if url is not None and scheme in ("vault+https", "vault+http"):
        from tradeguard.secrets.mirrored import MirroredBackend
        from tradeguard.secrets.vault_backend import VaultSecretsBackend
        from tradeguard.secrets.vault_url import parse_vault_url

        address = parse_vault_url(url)
        token = settings.resolved_vault_token()
        if not token:
            raise ConfigurationError(
                "the Vault backend needs a token: set TRADEGUARD_VAULT_TOKEN (or VAULT_TOKEN)"
            )
        engine = engine or create_database_engine(settings.resolved_database_url())
        from tradeguard.secrets.sql_mirror import SqlMirrorStore

        master = resolve_master_key(settings, engine, create=create_key)
        mirror = SqlMirrorStore(engine, master, namespace=address.label, clock=clock)
        primary = VaultSecretsBackend(address, token, timeout=settings.vault_timeout)
        backend = MirroredBackend(primary, mirror, bus)
        jitter = VAULT_CACHE_JITTER
    elif scheme == "local" or scheme.split("+")[0] in ("sqlite", "postgresql", "postgres"):
        if engine is None:
            engine = create_database_engine(url or settings.resolved_database_url())
        backend = build_local_backend(settings, engine, clock=clock, create_key=create_key)
    else:
        raise ConfigurationError(
            f"unsupported secrets URL scheme {scheme!r}: leave TRADEGUARD_SECRETS_URL unset for "
            "the local store, or use vault+https://HOST:PORT/?mount=MOUNT"
        )
    return SecretsManager(
        backend,
        bus=bus,
        clock=clock,
        cache_ttl=settings.secrets_cache_ttl,
        cache_size=settings.secrets_cache_size,
        cache_jitter=jitter,
        actor=settings.actor,
    )
