"""The ``tradeguard`` command line: init, secrets and keys, through CliRunner and a subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import assert_ok, assert_one_line_error, run
from typer.testing import Result

import tradeguard

API_KEY = "AKvalue-1234567890"
API_SECRET = "s3cr3t-value-ZYXW"


def user_paths(listing: str) -> list[str]:
    """Listed paths without the system's own (the audit key lives under tradeguard/)."""
    return [line for line in listing.splitlines() if not line.startswith("tradeguard/")]


def assert_hidden(result: Result, *values: str) -> None:
    for value in values:
        assert value not in result.stdout
        assert value not in result.stderr


def store_alpaca() -> None:
    assert_ok(run("secrets", "put", "brokers/alpaca", f"api_key={API_KEY}", f"secret={API_SECRET}"))


# -- init --------------------------------------------------------------------------------


def test_init_when_fresh_home_then_home_0700_and_key_file_0600(isolated_home: Path) -> None:
    result = run("init")

    assert_ok(result)
    key_file = isolated_home / "master.key"
    assert stat.S_IMODE(isolated_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (isolated_home / "tradeguard.db").exists()
    assert_hidden(result, key_file.read_text().strip())
    assert "initialised" in result.stdout


def test_init_when_run_twice_then_already_initialised_and_key_unchanged(
    isolated_home: Path,
) -> None:
    assert_ok(run("init"))
    key_file = isolated_home / "master.key"
    before = key_file.read_text()

    result = run("init")

    assert_ok(result)
    assert "already initialised" in result.stdout
    assert key_file.read_text() == before
    assert_hidden(result, before.strip())


def test_init_when_master_key_env_set_then_no_key_file_written(
    isolated_home: Path, master_key_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEGUARD_MASTER_KEY", master_key_text)
    tradeguard.reset()

    result = run("init")

    assert_ok(result)
    assert "already initialised" in result.stdout
    assert "TRADEGUARD_MASTER_KEY" in result.stdout
    assert not (isolated_home / "master.key").exists()
    assert (isolated_home / "tradeguard.db").exists()
    assert_hidden(result, master_key_text)


def test_init_when_key_lost_but_store_holds_keys_then_refuses_new_key(isolated_home: Path) -> None:
    assert_ok(run("init"))
    store_alpaca()
    (isolated_home / "master.key").unlink()

    result = run("init")

    assert_one_line_error(result, contains="already holds encrypted keys")
    assert not (isolated_home / "master.key").exists()


def test_init_when_keyring_unusable_then_one_line_error(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("keyring")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")

    result = run("init", "--keyring")

    assert_one_line_error(result, contains="no usable OS keyring")
    assert not (isolated_home / "master.key").exists()


def test_init_when_key_file_readable_by_others_then_one_line_error(isolated_home: Path) -> None:
    assert_ok(run("init"))
    (isolated_home / "master.key").chmod(0o644)

    result = run("init")

    assert_one_line_error(result, contains="chmod 600")


def test_init_when_home_is_a_file_then_one_line_error(isolated_home: Path) -> None:
    isolated_home.write_text("not a directory")

    result = run("init")

    assert_one_line_error(result, contains="is not a directory")


def test_init_when_home_exists_open_to_others_then_warns_and_keeps_mode(
    isolated_home: Path,
) -> None:
    isolated_home.mkdir(mode=0o755)
    isolated_home.chmod(0o755)

    result = run("init")

    assert_ok(result)
    assert result.stderr.startswith("warning: ")
    assert "chmod 700" in result.stderr
    assert stat.S_IMODE(isolated_home.stat().st_mode) == 0o755
    assert stat.S_IMODE((isolated_home / "master.key").stat().st_mode) == 0o600


def test_version_option_then_prints_package_version() -> None:
    result = run("--version")

    assert_ok(result)
    assert result.stdout == f"tradeguard {tradeguard.__version__}\n"


# -- put / get ---------------------------------------------------------------------------


def test_put_when_stored_then_prints_version_and_no_value() -> None:
    result = run("secrets", "put", "brokers/alpaca", f"api_key={API_KEY}")

    assert_ok(result)
    assert result.stdout == "stored brokers/alpaca version 1\n"
    assert_hidden(result, API_KEY)


def test_get_when_not_revealed_then_value_masked() -> None:
    store_alpaca()

    result = run("secrets", "get", "brokers/alpaca")

    assert_ok(result)
    assert result.stdout.splitlines() == ["api_key = ********", "secret = ********"]
    assert_hidden(result, API_KEY, API_SECRET)


def test_get_when_revealed_then_roundtrip_values() -> None:
    store_alpaca()

    result = run("secrets", "get", "brokers/alpaca", "--reveal")

    assert_ok(result)
    assert result.stdout.splitlines() == [f"api_key = {API_KEY}", f"secret = {API_SECRET}"]


def test_get_when_field_and_reveal_then_prints_bare_value() -> None:
    store_alpaca()

    result = run("secrets", "get", "brokers/alpaca", "--field", "api_key", "--reveal")

    assert_ok(result)
    assert result.stdout == f"{API_KEY}\n"


def test_get_when_field_not_revealed_then_only_that_key_masked() -> None:
    store_alpaca()

    result = run("secrets", "get", "brokers/alpaca", "--field", "secret")

    assert_ok(result)
    assert result.stdout == "secret = ********\n"
    assert_hidden(result, API_KEY, API_SECRET)


def test_get_when_field_missing_then_exit_1_naming_fields() -> None:
    store_alpaca()

    result = run("secrets", "get", "brokers/alpaca", "--field", "nope", "--reveal")

    assert_one_line_error(result, contains="no field 'nope'")
    assert_hidden(result, API_KEY, API_SECRET)


def test_get_when_json_not_revealed_then_masked_json() -> None:
    store_alpaca()

    result = run("secrets", "get", "brokers/alpaca", "--json")

    assert_ok(result)
    assert json.loads(result.stdout) == {"api_key": "********", "secret": "********"}
    assert_hidden(result, API_KEY, API_SECRET)


def test_get_when_json_revealed_then_values_in_json() -> None:
    store_alpaca()

    result = run("secrets", "get", "brokers/alpaca", "--json", "--reveal")

    assert_ok(result)
    assert json.loads(result.stdout) == {"api_key": API_KEY, "secret": API_SECRET}


def test_get_when_version_given_then_that_version() -> None:
    assert_ok(run("secrets", "put", "bot", "token=old"))
    assert_ok(run("secrets", "put", "bot", "token=new"))

    old = run("secrets", "get", "bot", "--version", "1", "--field", "token", "--reveal")
    new = run("secrets", "get", "bot", "--field", "token", "--reveal")

    assert (old.stdout, new.stdout) == ("old\n", "new\n")


def test_get_when_path_missing_then_exit_1_one_line() -> None:
    result = run("secrets", "get", "brokers/missing")

    assert_one_line_error(result, contains="secret not found: brokers/missing")


@pytest.mark.parametrize("path", ["../x", "/abs", "a//b", "a b"])
def test_put_when_path_invalid_then_exit_1(path: str) -> None:
    result = run("secrets", "put", path, "k=v")

    assert_one_line_error(result, contains="secret path")


# -- put input ---------------------------------------------------------------------------


def test_put_when_value_is_dash_then_whole_stdin_is_the_value() -> None:
    pem = "-----BEGIN KEY-----\nabc\n-----END KEY-----"

    result = run("secrets", "put", "tls", "pem=-", "name=bot", input=pem + "\n")

    assert_ok(result)
    assert_hidden(result, "abc")
    shown = run("secrets", "get", "tls", "--json", "--reveal")
    assert json.loads(shown.stdout) == {"pem": pem, "name": "bot"}


def test_put_when_several_dash_values_then_one_stdin_line_each() -> None:
    assert_ok(run("secrets", "put", "x", "a=-", "b=-", input="first\nsecond\n"))

    shown = run("secrets", "get", "x", "--json", "--reveal")

    assert json.loads(shown.stdout) == {"a": "first", "b": "second"}


def test_put_when_dash_value_and_empty_stdin_then_exit_2() -> None:
    result = run("secrets", "put", "x", "a=-", input="")

    assert result.exit_code == 2
    assert "no value for a on stdin" in result.stderr
    assert user_paths(run("secrets", "list").stdout) == []


def test_put_when_stdin_is_tty_then_prompts_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tradeguard.cli.common.stdin_is_tty", lambda: True)

    result = run("secrets", "put", "x", "token=-", input=f"{API_SECRET}\n")

    assert_ok(result)
    assert "value for token" in result.output
    assert_hidden(result, API_SECRET)
    assert run("secrets", "get", "x", "--field", "token", "--reveal").stdout == f"{API_SECRET}\n"


def test_put_when_env_file_from_stdin_then_dotenv_parsed_and_positional_wins() -> None:
    env = (
        "# broker credentials\n"
        "\n"
        f"export API_KEY='{API_KEY}'\n"
        f'SECRET="{API_SECRET}"\n'
        "PLAIN=a=b#c\n"
        "MODE=paper\n"
    )

    result = run("secrets", "put", "alp", "--from-env-file", "-", "MODE=live", input=env)

    assert_ok(result)
    assert_hidden(result, API_KEY, API_SECRET)
    shown = json.loads(run("secrets", "get", "alp", "--json", "--reveal").stdout)
    assert shown == {"API_KEY": API_KEY, "SECRET": API_SECRET, "PLAIN": "a=b#c", "MODE": "live"}


def test_put_when_env_file_path_then_read_from_file(tmp_path: Path) -> None:
    env_file = tmp_path / "bot.env"
    env_file.write_text(f"TOKEN={API_SECRET}\r\n")

    assert_ok(run("secrets", "put", "bot", "--from-env-file", str(env_file)))

    assert run("secrets", "get", "bot", "--field", "TOKEN", "--reveal").stdout == f"{API_SECRET}\n"


def test_put_when_env_file_line_malformed_then_exit_2_without_echoing_it() -> None:
    result = run("secrets", "put", "x", "--from-env-file", "-", input=f"OK=1\n{API_SECRET}\n")

    assert result.exit_code == 2
    assert "line 2" in result.stderr
    assert_hidden(result, API_SECRET)


def test_put_when_env_file_missing_then_exit_2(tmp_path: Path) -> None:
    result = run("secrets", "put", "x", "--from-env-file", str(tmp_path / "absent.env"))

    assert result.exit_code == 2
    assert "cannot read env file" in result.stderr


def test_put_when_pair_has_no_equals_then_exit_2_without_echoing_it() -> None:
    result = run("secrets", "put", "x", "novalue")

    assert result.exit_code == 2
    assert "KEY=VALUE pair 1" in result.stderr
    assert_hidden(result, "novalue")


@pytest.mark.parametrize(
    "args",
    [
        ["x"],  # nothing to store
        ["x", "=v"],  # empty key
        ["x", "a=1", "a=2"],  # duplicate key
        ["x", "a=-", "--from-env-file", "-"],  # stdin used twice
        ["x", "a=1", "--cas", "-1"],  # negative cas
    ],
)
def test_put_when_usage_wrong_then_exit_2(args: list[str]) -> None:
    result = run("secrets", "put", *args, input="b=2\n")

    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert user_paths(run("secrets", "list").stdout) == []


def test_put_when_cas_conflict_then_exit_1_one_line() -> None:
    assert_ok(run("secrets", "put", "bot", "token=one"))

    result = run("secrets", "put", "bot", "token=two", "--cas", "0")

    assert_one_line_error(result, contains="version conflict on bot")
    assert_hidden(result, "two")
    assert run("secrets", "get", "bot", "--field", "token", "--reveal").stdout == "one\n"


def test_put_when_cas_matches_then_next_version() -> None:
    assert_ok(run("secrets", "put", "bot", "token=one", "--cas", "0"))

    result = run("secrets", "put", "bot", "token=two", "--cas", "1")

    assert_ok(result)
    assert result.stdout == "stored bot version 2\n"


# -- list / history / lifecycle ----------------------------------------------------------


def test_list_when_prefix_then_only_matching_paths_one_per_line() -> None:
    for path in ("brokers/alpaca", "brokers/ibkr", "data/polygon"):
        assert_ok(run("secrets", "put", path, "k=v"))

    everything = run("secrets", "list")
    brokers = run("secrets", "list", "brokers/")

    assert user_paths(everything.stdout) == ["brokers/alpaca", "brokers/ibkr", "data/polygon"]
    assert "tradeguard/audit/hmac-key" in everything.stdout.splitlines()  # system keys are listed
    assert brokers.stdout.splitlines() == ["brokers/alpaca", "brokers/ibkr"]


def test_list_when_prefix_invalid_then_exit_1() -> None:
    assert_one_line_error(run("secrets", "list", "/etc"), contains="prefix")


def test_history_when_several_versions_then_rows_and_current_marked() -> None:
    for value in ("a", "b", "c"):
        assert_ok(run("secrets", "put", "bot", f"token={value}"))
    assert_ok(run("secrets", "delete", "bot", "--version", "2"))

    result = run("secrets", "history", "bot")

    assert_ok(result)
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    cells = [[c.strip() for c in row.split("│")[1:-1]] for row in rows]
    assert [c[0] for c in cells] == ["1", "2", "3 (current)"]
    assert [c[2] == "-" for c in cells] == [True, False, True]
    assert [c[3] for c in cells] == ["no", "no", "no"]


def test_history_when_path_missing_then_exit_1() -> None:
    assert_one_line_error(run("secrets", "history", "nope"), contains="secret not found")


def test_delete_then_undelete_when_current_version_then_falls_back_and_returns() -> None:
    assert_ok(run("secrets", "put", "bot", "token=one"))
    assert_ok(run("secrets", "put", "bot", "token=two"))

    deleted = run("secrets", "delete", "bot")
    after_delete = run("secrets", "get", "bot", "--field", "token", "--reveal")
    undeleted = run("secrets", "undelete", "bot")
    after_undelete = run("secrets", "get", "bot", "--field", "token", "--reveal")

    assert_ok(deleted)
    assert_ok(undeleted)
    assert after_delete.stdout == "one\n"
    assert after_undelete.stdout == "two\n"


def test_delete_when_every_version_then_get_fails_and_undelete_restores_one() -> None:
    assert_ok(run("secrets", "put", "bot", "token=one"))
    assert_ok(run("secrets", "put", "bot", "token=two"))

    deleted = run("secrets", "delete", "bot", "--version", "1", "--version", "2")
    missing = run("secrets", "get", "bot")
    assert_ok(run("secrets", "undelete", "bot", "--version", "1"))

    assert deleted.stdout == "deleted bot versions 1, 2\n"
    assert_one_line_error(missing, contains="secret not found")
    assert run("secrets", "get", "bot", "--field", "token", "--reveal").stdout == "one\n"


def test_delete_when_version_absent_then_exit_1() -> None:
    assert_ok(run("secrets", "put", "bot", "token=one"))

    assert_one_line_error(run("secrets", "delete", "bot", "--version", "9"), contains="version 9")


def test_destroy_when_not_confirmed_then_secret_kept() -> None:
    store_alpaca()

    result = run("secrets", "destroy", "brokers/alpaca", input="n\n")

    assert result.exit_code == 1
    assert "destroyed" not in result.stdout
    assert run("secrets", "get", "brokers/alpaca", "--field", "api_key", "--reveal").stdout == (
        f"{API_KEY}\n"
    )


def test_destroy_when_confirmed_then_whole_path_gone() -> None:
    store_alpaca()

    result = run("secrets", "destroy", "brokers/alpaca", input="y\n")

    assert_ok(result)
    assert "destroyed brokers/alpaca (all versions)" in result.stdout
    assert user_paths(run("secrets", "list").stdout) == []
    assert_one_line_error(run("secrets", "get", "brokers/alpaca"), contains="not found")


def test_destroy_when_yes_and_version_then_only_that_version_destroyed() -> None:
    assert_ok(run("secrets", "put", "bot", "token=one"))
    assert_ok(run("secrets", "put", "bot", "token=two"))

    result = run("secrets", "destroy", "bot", "--version", "1", "--yes")

    assert_ok(result)
    assert result.stdout == "destroyed bot version 1\n"
    assert_one_line_error(run("secrets", "get", "bot", "--version", "1"), contains="version 1")
    assert run("secrets", "get", "bot", "--field", "token", "--reveal").stdout == "two\n"
    undestroy = run("secrets", "undelete", "bot", "--version", "1")
    assert_one_line_error(undestroy, contains="destroyed")
    assert run("secrets", "get", "bot", "--version", "1").exit_code == 1


def test_destroy_when_path_missing_then_exit_1_before_prompting() -> None:
    result = run("secrets", "destroy", "nope")

    assert_one_line_error(result, contains="secret not found: nope")
    assert "Destroy" not in result.stdout


# -- keys --------------------------------------------------------------------------------


def test_keys_rotate_then_versions_advance_and_get_still_works() -> None:
    store_alpaca()

    first = run("keys", "rotate")
    second = run("keys", "rotate")
    tradeguard.reset()  # a fresh process: nothing cached in memory
    after = run("secrets", "get", "brokers/alpaca", "--json", "--reveal")

    assert first.stdout == "rotated: key version 2\n"
    assert second.stdout == "rotated: key version 3\n"
    assert json.loads(after.stdout) == {"api_key": API_KEY, "secret": API_SECRET}


def test_cli_when_master_key_wrong_then_integrity_error_one_line(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_ok(run("init"))
    store_alpaca()
    (isolated_home / "master.key").unlink()
    monkeypatch.setenv("TRADEGUARD_MASTER_KEY", "A" * 43)
    tradeguard.reset()

    result = run("secrets", "get", "brokers/alpaca")

    assert_one_line_error(result, contains="integrity")


# -- a real process ----------------------------------------------------------------------


def cli(home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRADEGUARD_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "tradeguard.cli", *args],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_subprocess_when_init_put_get_then_works_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "proc-home"

    init = cli(home, "init")
    put = cli(home, "secrets", "put", "brokers/alpaca", "api_key=-", input=API_KEY)
    masked = cli(home, "secrets", "get", "brokers/alpaca")
    raw = cli(home, "secrets", "get", "brokers/alpaca", "--field", "api_key", "--reveal")

    assert init.returncode == 0, init.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "master.key").stat().st_mode) == 0o600
    assert put.returncode == 0, put.stderr
    assert put.stdout == "stored brokers/alpaca version 1\n"
    assert masked.stdout == "api_key = ********\n"
    assert API_KEY not in put.stdout + put.stderr + masked.stdout + masked.stderr
    assert raw.stdout == f"{API_KEY}\n"


@pytest.mark.slow
def test_subprocess_when_secret_missing_then_exit_1_one_stderr_line(tmp_path: Path) -> None:
    home = tmp_path / "proc-home"
    assert cli(home, "init").returncode == 0

    result = cli(home, "secrets", "get", "brokers/none")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "error: secret not found: brokers/none\n"
