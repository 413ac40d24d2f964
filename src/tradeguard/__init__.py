"""tradeguard: the security layer a Python trading bot runs behind.

The safe calls live here; building blocks live in the submodules::

    import tradeguard
    tradeguard.store_secret("brokers/alpaca", {"api_key": "key", "secret": "secret"})
    creds = tradeguard.get_secret("brokers/alpaca")
"""

from tradeguard.clock import Clock, FixedClock, SystemClock
from tradeguard.errors import (
    AccountLocked,
    AlertConfigError,
    AuditError,
    AuditWriteFailed,
    AuthError,
    BackendUnavailable,
    ConfigurationError,
    InvalidCredentials,
    InvalidMFACode,
    InvalidSecretPath,
    InvalidSecretValue,
    IPBlocked,
    MFARequired,
    OrderRejected,
    PermissionDenied,
    RateLimitExceeded,
    RequestRejected,
    RiskError,
    SecretIntegrityError,
    SecretNotFound,
    SecretsError,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenReuseDetected,
    TokenRevoked,
    TradeguardError,
    ValidationError,
    VersionConflict,
)
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.facade import (
    configure,
    get_alert_engine,
    get_audit_log,
    get_clock,
    get_event_bus,
    get_secret,
    get_secrets_manager,
    get_settings,
    reset,
    store_secret,
)
from tradeguard.secrets import SecretMetadata, SecretsManager, VersionInfo
from tradeguard.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AccountLocked",
    "AlertConfigError",
    "AuditError",
    "AuditWriteFailed",
    "AuthError",
    "BackendUnavailable",
    "Clock",
    "ConfigurationError",
    "EventBus",
    "FixedClock",
    "IPBlocked",
    "InvalidCredentials",
    "InvalidMFACode",
    "InvalidSecretPath",
    "InvalidSecretValue",
    "MFARequired",
    "OrderRejected",
    "PermissionDenied",
    "RateLimitExceeded",
    "RequestRejected",
    "RiskError",
    "SecretIntegrityError",
    "SecretMetadata",
    "SecretNotFound",
    "SecretsError",
    "SecretsManager",
    "SecurityEvent",
    "Settings",
    "SystemClock",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenReuseDetected",
    "TokenRevoked",
    "TradeguardError",
    "ValidationError",
    "VersionConflict",
    "VersionInfo",
    "__version__",
    "configure",
    "get_alert_engine",
    "get_audit_log",
    "get_clock",
    "get_event_bus",
    "get_secret",
    "get_secrets_manager",
    "get_settings",
    "reset",
    "store_secret",
]
