"""A JSON-lines file sink for shipping the chain to a SIEM (one record per line, with hashes)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from tradeguard.audit.chain import AuditRecord


class JsonLinesSink:
    """Appends committed records to a file (mode 0600), flushed after each batch.

    The lines carry ``seq``, ``prev_hash`` and ``hash``, so the copy can be verified on its
    own with the audit key (:func:`read_jsonl` + ``verify_chain``): a second, independent
    witness of the head that survives someone truncating the database.
    """

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._fsync = fsync
        self._lock = threading.Lock()

    def __call__(self, records: list[AuditRecord]) -> None:
        lines = "".join(
            json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
            for r in records
        )
        with self._lock:
            self._file.write(lines)
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


def write_jsonl(records: Iterable[AuditRecord], out: IO[str]) -> int:
    """Write records as JSON lines to ``out``; returns how many."""
    count = 0
    for record in records:
        out.write(json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def read_jsonl(lines: Iterable[str]) -> Iterator[AuditRecord]:
    """Parse JSON lines back into records (blank lines skipped)."""
    for line in lines:
        if line.strip():
            yield AuditRecord.from_dict(json.loads(line))
