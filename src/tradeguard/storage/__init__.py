"""Storage: database URL -> SQLAlchemy engine, with the pragmas and schema tradeguard needs."""

from tradeguard.storage.database import (
    begin_read,
    begin_write,
    create_database_engine,
    is_sqlite,
    scheme_of,
)

__all__ = ["begin_read", "begin_write", "create_database_engine", "is_sqlite", "scheme_of"]
