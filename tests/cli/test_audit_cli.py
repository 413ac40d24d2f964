"""``tradeguard audit``: tail (and follow), search, verify and export, through CliRunner."""

from __future__ import annotations

import io
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_support import assert_ok, run
from sqlalchemy import create_engine, text
from typer.testing import Result

import tradeguard
from tradeguard.audit import AuditRecord, read_jsonl, verify_chain
from tradeguard.audit.key import load_or_create_audit_key
from tradeguard.cli import audit_cmd
from tradeguard.events import SecurityEvent

T0 = datetime(2100, 3, 2, 14, 30, tzinfo=UTC)  # after the records of opening the log


def assert_usage_error(result: Result, *, contains: str = "") -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.output
    assert contains in result.stderr


def publish(*events: SecurityEvent) -> None:
    """Publish on the default bus and wait until the audit log has committed them."""
    bus = tradeguard.get_event_bus()
    for event in events:
        bus.publish(event)
    assert tradeguard.get_audit_log().flush()


def order(n: int, *, actor: str = "bot-1", kind: str = "order.approved") -> SecurityEvent:
    return SecurityEvent(
        kind,
        actor=actor,
        subject="AAPL",
        outcome="ok",
        details={"n": n},
        time=T0 + timedelta(minutes=n),
    )


def seed() -> list[AuditRecord]:
    """Six orders (plus the records of opening the log); returns every record, ascending."""
    publish(
        order(1),
        order(2),
        order(3, kind="order.rejected", actor="bot-2"),
        order(4),
        order(5, kind="auth.login"),
        order(6, actor="bot-2"),
    )
    return tradeguard.get_audit_log().query(limit=None)


def seqs(stdout: str) -> list[int]:
    return [int(line.split()[0]) for line in stdout.splitlines()]


def audit_key() -> bytes:
    return load_or_create_audit_key(tradeguard.get_secrets_manager())


# -- no log yet -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["tail", "search", "verify", "export"])
def test_command_when_home_has_no_database_then_exit_1_and_nothing_created(
    isolated_home: Path, command: str
) -> None:
    result = run("audit", command)

    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: no audit log at ")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert not isolated_home.exists()


def test_search_when_since_invalid_and_no_database_then_usage_error_first(
    isolated_home: Path,
) -> None:
    assert_usage_error(run("audit", "search", "--since", "soon"), contains="--since")
    assert not isolated_home.exists()


# -- tail --------------------------------------------------------------------------------


def test_tail_when_n_given_then_last_n_oldest_first_one_line_each() -> None:
    records = seed()

    result = run("audit", "tail", "-n", "3")

    assert_ok(result)
    assert seqs(result.stdout) == [r.seq for r in records[-3:]]
    last = records[-1]
    assert result.stdout.splitlines()[-1] == f"{last.seq} {last.time} order.approved bot-2 AAPL ok"


def test_tail_when_fields_empty_then_dash() -> None:
    publish(SecurityEvent("audit.verified"))

    result = run("audit", "tail", "-n", "1")

    assert_ok(result)
    assert result.stdout.split()[2:] == ["audit.verified", "-", "-", "-"]


def test_tail_when_json_then_one_parsable_record_per_line() -> None:
    records = seed()

    result = run("audit", "tail", "-n", "2", "--json")

    assert_ok(result)
    parsed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [AuditRecord.from_dict(p) for p in parsed] == records[-2:]
    assert parsed[-1]["details"] == {"n": 6}


def test_tail_when_lines_negative_then_usage_error() -> None:
    assert_usage_error(run("audit", "tail", "-n", "-1"))


def test_poll_new_when_records_appear_then_each_emitted_once_in_order() -> None:
    records = seed()
    log = tradeguard.get_audit_log()
    seen: list[AuditRecord] = []

    last = audit_cmd.poll_new(log, records[-1].seq, seen.append)
    assert (seen, last) == ([], records[-1].seq)

    publish(order(7), order(8))
    last = audit_cmd.poll_new(log, last, seen.append)

    assert [r.details_dict()["n"] for r in seen] == [7, 8]
    assert last == seen[-1].seq
    assert audit_cmd.poll_new(log, last, seen.append) == last
    assert len(seen) == 2


def test_poll_new_when_more_than_a_page_then_all_emitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_cmd, "FOLLOW_PAGE", 2)
    records = seed()
    seen: list[AuditRecord] = []

    audit_cmd.poll_new(tradeguard.get_audit_log(), 0, seen.append)

    assert seen == records


def test_follow_when_max_polls_then_sleeps_between_polls_only() -> None:
    records = seed()
    log = tradeguard.get_audit_log()
    seen: list[AuditRecord] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        publish(order(10 + len(sleeps)))

    last = audit_cmd.follow(log, records[-1].seq, seen.append, sleep=sleep, max_polls=3)

    assert sleeps == [0.5, 0.5]
    assert [r.details_dict()["n"] for r in seen] == [11, 12]
    assert last == seen[-1].seq


def test_tail_follow_when_new_records_then_printed_until_ctrl_c(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed()
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            publish(order(20, actor="late"))
            return
        raise KeyboardInterrupt

    monkeypatch.setattr(audit_cmd, "POLL_SLEEP", sleep)

    result = run("audit", "tail", "-n", "1", "--follow")

    assert_ok(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[2:] == ["order.approved", "bot-2", "AAPL", "ok"]
    assert lines[1].split()[2:] == ["order.approved", "late", "AAPL", "ok"]
    assert polls == [0.5, 0.5]


# -- search ------------------------------------------------------------------------------


def details_n(stdout: str) -> list[int]:
    return [json.loads(line)["details"]["n"] for line in stdout.splitlines()]


def test_search_when_type_prefix_then_only_that_family() -> None:
    seed()

    result = run("audit", "search", "--type", "order.*", "--json")

    assert_ok(result)
    assert details_n(result.stdout) == [1, 2, 3, 4, 6]


def test_search_when_exact_type_then_no_prefix_match() -> None:
    seed()
    publish(order(7, kind="order.approved.late"))

    result = run("audit", "search", "--type", "order.approved", "--json")

    assert_ok(result)
    assert details_n(result.stdout) == [1, 2, 4, 6]


def test_search_when_actor_then_only_that_actor() -> None:
    seed()

    result = run("audit", "search", "--actor", "bot-2")

    assert_ok(result)
    assert [line.split()[3] for line in result.stdout.splitlines()] == ["bot-2", "bot-2"]


def test_search_when_since_and_until_then_half_open_window() -> None:
    seed()

    result = run(
        "audit", "search", "--since", "2100-03-02T14:33:00Z", "--until", "2100-03-02T14:36:00",
        "--json",
    )  # fmt: skip

    assert_ok(result)
    assert details_n(result.stdout) == [3, 4, 5]


def test_search_when_since_has_offset_then_converted_to_utc() -> None:
    seed()

    result = run("audit", "search", "--since", "2100-03-02T16:35:00+02:00", "--json")

    assert_ok(result)
    assert details_n(result.stdout) == [5, 6]


def test_search_when_filters_combined_then_all_apply() -> None:
    seed()

    result = run(
        "audit", "search", "--type", "order.*", "--actor", "bot-1", "--since", "2100-03-02T14:32Z",
        "--json",
    )  # fmt: skip

    assert_ok(result)
    assert details_n(result.stdout) == [2, 4]


def test_search_when_more_than_limit_then_first_n_and_note_on_stderr() -> None:
    seed()

    result = run("audit", "search", "--type", "order.*", "--limit", "2", "--json")

    assert_ok(result)
    assert details_n(result.stdout) == [1, 2]
    assert "more than 2 records match" in result.stderr


def test_search_when_nothing_matches_then_empty_and_exit_0() -> None:
    seed()

    result = run("audit", "search", "--actor", "nobody")

    assert_ok(result)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--since", "yesterday"], "--since"),
        (["--until", "2026-13-01"], "--until"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_search_when_option_invalid_then_usage_error(args: list[str], option: str) -> None:
    assert_usage_error(run("audit", "search", *args), contains=option)


# -- verify ------------------------------------------------------------------------------


def test_verify_when_intact_then_ok_with_count_and_exit_0() -> None:
    records = seed()

    result = run("audit", "verify")

    assert_ok(result)
    assert result.stdout == f"ok: {len(records)} records verified\n"
    assert result.stderr == ""


def tamper(home: Path, sql: str) -> None:
    engine = create_engine(f"sqlite:///{home / 'tradeguard.db'}")
    with engine.begin() as conn:
        assert conn.execute(text(sql)).rowcount == 1
    engine.dispose()


def test_verify_when_record_modified_then_exit_1_naming_its_seq(isolated_home: Path) -> None:
    records = seed()
    assert records[2].seq == 3
    tradeguard.reset()  # a fresh process: the log is reopened after the tampering
    tamper(isolated_home, "UPDATE tg_audit_record SET actor='mallory' WHERE seq=3")

    result = run("audit", "verify")

    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("broken at seq 3: modified")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_verify_when_record_deleted_then_exit_1_naming_the_gap(isolated_home: Path) -> None:
    seed()
    tradeguard.reset()
    tamper(isolated_home, "DELETE FROM tg_audit_record WHERE seq=4")

    result = run("audit", "verify")

    assert result.exit_code == 1
    assert result.stderr.startswith("broken at seq 4: deleted")


# -- export ------------------------------------------------------------------------------


def test_export_when_stdout_then_jsonl_that_verifies_with_the_key() -> None:
    records = seed()

    result = run("audit", "export", "--format", "jsonl")

    assert_ok(result)
    exported = list(read_jsonl(io.StringIO(result.stdout)))
    assert exported[: len(records)] == records
    verdict = verify_chain(audit_key(), exported, head=None)
    assert verdict.ok, verdict
    assert verdict.checked == len(exported)


def test_export_when_a_line_is_edited_then_the_copy_fails_verification() -> None:
    seed()
    lines = run("audit", "export").stdout.splitlines()
    forged = json.loads(lines[3])
    forged["actor"] = "mallory"
    lines[3] = json.dumps(forged)

    verdict = verify_chain(audit_key(), read_jsonl(lines), head=None)

    assert (verdict.ok, verdict.first_bad) == (False, 4)


def test_export_when_output_file_then_written_0600_and_count_printed(tmp_path: Path) -> None:
    records = seed()
    target = tmp_path / "audit.jsonl"

    result = run("audit", "export", "--output", str(target))

    assert_ok(result)
    exported = list(read_jsonl(target.read_text().splitlines()))
    assert result.stdout == f"exported {len(exported)} records to {target}\n"
    assert exported[: len(records)] == records
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert verify_chain(audit_key(), exported, head=None).ok


def test_export_when_filtered_then_only_matching_records() -> None:
    seed()

    result = run("audit", "export", "--type", "order.*", "--actor", "bot-2")

    assert_ok(result)
    assert [r.details_dict()["n"] for r in read_jsonl(result.stdout.splitlines())] == [3, 6]


def test_export_when_format_not_jsonl_then_usage_error_and_nothing_written(
    tmp_path: Path,
) -> None:
    target = tmp_path / "audit.csv"

    result = run("audit", "export", "--format", "csv", "--output", str(target))

    assert_usage_error(result, contains="jsonl")
    assert result.stdout == ""
    assert not target.exists()


def test_export_when_output_dir_missing_then_one_line_error(tmp_path: Path) -> None:
    seed()

    result = run("audit", "export", "--output", str(tmp_path / "missing" / "a.jsonl"))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
