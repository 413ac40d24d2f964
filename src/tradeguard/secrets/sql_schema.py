"""Tables of the local secrets store."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

key_encryption_keys = Table(
    "tg_secret_kek",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
)

secrets = Table(
    "tg_secret",
    metadata,
    Column("namespace", String(200), primary_key=True),
    Column("path", String(2100), primary_key=True),
    Column("current_version", Integer, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

secret_versions = Table(
    "tg_secret_version",
    metadata,
    Column("namespace", String(200), primary_key=True),
    Column("path", String(2100), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("created_at", Double, nullable=False),
    Column("deleted_at", Double, nullable=True),
    Column("destroyed", Boolean, nullable=False, default=False),
    # NULL once destroyed; the foreign key keeps a KEK alive while any data key uses it
    Column(
        "kek_version",
        Integer,
        ForeignKey("tg_secret_kek.version", ondelete="RESTRICT"),
        nullable=True,
        index=True,
    ),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("ciphertext", LargeBinary, nullable=True),
)
