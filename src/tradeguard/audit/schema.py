"""Tables of the audit log."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

metadata = MetaData()
_SEQ = BigInteger().with_variant(Integer, "sqlite")

records = Table(
    "tg_audit_record",
    metadata,
    # on SQLite an INTEGER PRIMARY KEY is the rowid itself: no second index to maintain
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("time", String(32), nullable=False, index=True),
    Column("type", String(128), nullable=False, index=True),
    Column("actor", String(256), nullable=True, index=True),
    Column("subject", String(2100), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("outcome", String(64), nullable=True),
    Column("severity", String(16), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# The signed head: one row, updated in the same transaction as every append. It is the
# serialisation point that makes appends from many processes one gap-free chain.
head = Table(
    "tg_audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
)

# Prune anchors: the last pruned record's (seq, hash), signed, where verification restarts.
checkpoints = Table(
    "tg_audit_checkpoint",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("time", String(32), nullable=False),
    Column("mac", String(64), nullable=False),
)
