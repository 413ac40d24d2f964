"""``tradeguard audit``: tail, search, verify and export the hash-chained audit log.

Records print one per line as ``seq time type actor subject outcome`` (``-`` for an empty
field), or with ``--json`` as one JSON object per line, hashes included. Reading the log
goes through :func:`tradeguard.get_audit_log`, so opening it (reading the audit key) is
itself recorded, like every other event on the default bus.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Annotated

import typer

from tradeguard.audit import AuditLog, AuditRecord
from tradeguard.cli.common import STDIN, fail, new_typer
from tradeguard.facade import get_audit_log, get_settings

audit_app = new_typer("Read, search, verify and export the tamper-evident audit log.")

POLL_INTERVAL = 0.5
FOLLOW_PAGE = 1000
# How ``tail --follow`` waits between polls; tests replace it to stop the loop.
POLL_SLEEP: Callable[[float], None] = time.sleep

Emit = Callable[[AuditRecord], None]


def parse_iso(value: str | None, option: str = "--since") -> datetime | None:
    """An ISO-8601 date or time (``Z`` allowed; naive means UTC); bad text is exit 2."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time (e.g. 2026-01-31 or 2026-01-31T09:30:00Z)",
            param_hint=option,
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def open_log() -> AuditLog:
    """The default AuditLog; refuses an embedded database that does not exist yet.

    Opening the log creates what is missing, so a mistyped ``TRADEGUARD_HOME`` would
    otherwise get a fresh key and an empty chain, and ``verify`` would call it ok.
    """
    settings = get_settings()
    if settings.database_url is None and not settings.database_path.exists():
        fail(
            f"no audit log at {settings.database_path}: check TRADEGUARD_HOME, "
            "or run `tradeguard init`"
        )
    return get_audit_log()


def format_line(record: AuditRecord) -> str:
    """``seq time type actor subject outcome``; empty fields as ``-``."""
    fields = (record.actor, record.subject, record.outcome)
    rest = " ".join("-" if value is None or value == "" else value for value in fields)
    return f"{record.seq} {record.time} {record.type} {rest}"


def format_json(record: AuditRecord) -> str:
    """The record as one compact JSON line (the export format)."""
    return json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":"))


def printer(as_json: bool) -> Emit:
    """Something that prints a record on stdout, as text or JSON."""
    fmt = format_json if as_json else format_line

    def emit(record: AuditRecord) -> None:
        typer.echo(fmt(record))

    return emit


def poll_new(log: AuditLog, after_seq: int, emit: Emit) -> int:
    """Emit every committed record after ``after_seq``; returns the last seq emitted."""
    while True:
        records = log.query(after_seq=after_seq, limit=FOLLOW_PAGE)
        for record in records:
            emit(record)
            after_seq = record.seq
        if len(records) < FOLLOW_PAGE:
            return after_seq


def follow(
    log: AuditLog,
    after_seq: int,
    emit: Emit,
    *,
    interval: float = POLL_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
    max_polls: int | None = None,
) -> int:
    """Poll for new records every ``interval`` s (forever unless ``max_polls``)."""
    polls = 0
    while max_polls is None or polls < max_polls:
        after_seq = poll_new(log, after_seq, emit)
        polls += 1
        if max_polls is None or polls < max_polls:
            sleep(interval)
    return after_seq


LinesOpt = Annotated[
    int, typer.Option("-n", "--lines", min=0, metavar="N", help="How many records to show.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", metavar="ISO", help="Only records at or after this time (UTC)."),
]
UntilOpt = Annotated[
    str | None,
    typer.Option("--until", metavar="ISO", help="Only records before this time (UTC)."),
]
TypeOpt = Annotated[
    str | None,
    typer.Option("--type", metavar="T", help="Event type; a trailing * matches a prefix."),
]
ActorOpt = Annotated[str | None, typer.Option("--actor", metavar="A", help="Only this actor.")]


@audit_app.command("tail")
def tail(
    lines: LinesOpt = 20,
    follow_: Annotated[
        bool,
        typer.Option("-f", "--follow", help="Keep printing new records until Ctrl-C."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the last N records, oldest first; with --follow, then every new one."""
    log = open_log()
    emit = printer(as_json)
    records = log.query(limit=lines, newest_first=True) if lines else []
    for record in reversed(records):
        emit(record)
    if not follow_:
        return
    last = records[0].seq if records else _head_seq(log)
    try:
        follow(log, last, emit, sleep=POLL_SLEEP)  # typer.echo flushes each line
    except KeyboardInterrupt:
        return


def _head_seq(log: AuditLog) -> int:
    newest = log.query(limit=1, newest_first=True)
    return newest[0].seq if newest else 0


@audit_app.command("search")
def search(
    since: SinceOpt = None,
    until: UntilOpt = None,
    type_: TypeOpt = None,
    actor: ActorOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, metavar="N", help="At most N records (the first).")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Show the records matching every filter, oldest first (at most --limit)."""
    start, end = parse_iso(since), parse_iso(until, "--until")
    records = open_log().query(since=start, until=end, type=type_, actor=actor, limit=limit + 1)
    emit = printer(as_json)
    for record in records[:limit]:
        emit(record)
    if len(records) > limit:
        typer.echo(
            f"note: more than {limit} records match; narrow with --since or raise --limit",
            err=True,
        )


@audit_app.command("verify")
def verify() -> None:
    """Check every record's MAC and link up to the signed head; exit 1 if broken."""
    result = open_log().verify()
    if result.ok:
        typer.echo(f"ok: {result.checked} records verified")
        return
    typer.echo(f"broken at seq {result.first_bad}: {result.reason}", err=True)
    raise typer.Exit(1)


def _open_output(name: str) -> IO[str]:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


@audit_app.command("export")
def export(
    format_: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="Output format: jsonl.")
    ] = "jsonl",
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write to FILE (created 0600); '-': stdout."
        ),
    ] = STDIN,
    since: SinceOpt = None,
    until: UntilOpt = None,
    type_: TypeOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Write records as JSON lines with their hashes; an unfiltered export verifies alone."""
    if format_ != "jsonl":
        raise typer.BadParameter(
            f"unsupported format {format_!r}: only jsonl", param_hint="--format"
        )
    filters = {
        "since": parse_iso(since),
        "until": parse_iso(until, "--until"),
        "type": type_,
        "actor": actor,
    }
    log = open_log()
    if output == STDIN:
        log.export(sys.stdout, **filters)
        return
    with _open_output(output) as out:
        count = log.export(out, **filters)
    typer.echo(f"exported {count} records to {output}")


__all__ = ["audit_app", "follow", "format_line", "open_log", "parse_iso", "poll_new"]
