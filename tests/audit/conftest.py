"""Shared by the audit tests: one audit key for the session, an SQLite store, a shared URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_support import KEY

from tradeguard.audit import SqlAuditStore
from tradeguard.storage import create_database_engine


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlAuditStore]:
    """A fresh SQLite audit store under ``KEY``."""
    built = SqlAuditStore(create_database_engine(f"sqlite:///{tmp_path / 'a.db'}"), KEY)
    yield built
    built.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL several stores (or processes) can share: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return str(request.getfixturevalue("postgres_url"))
