"""Auth benchmark: token validation (hot and first), the PyJWT anchor, and login cost.

Run: ``python bench/auth_bench.py [--quick]``. One run prints medians (and p95), the
ratios, and PASS/FAIL against the targets, for EdDSA (the default) and HS256.

Setup: SQLite in a temporary ``TRADEGUARD_HOME`` per configuration, built with
``build_secrets_manager(Settings(home=...))`` + ``build_auth_handler(settings, secrets)``;
one TRADER user; one login gives the live session. Tokens for the "first validation" rows
are issued up front with ``handler.tokens.issue`` for that session (not timed), and each is
validated exactly once. "status reload" is the hot token on a second handler over the same
database with ``auth_state_ttl=0``: signature cached, status loaded on every call (what a
token used less than once per ``auth_state_ttl`` pays). The anchor is ``jwt.decode`` with
the ring's key object, the same algorithm, ``iss``/``aud`` and required claims.

Method: ``time.perf_counter_ns``. Each round runs, in a shuffled order, 10 batches of 200
hot validations per algorithm, 50 single timed calls of each first-validation row and of
the PyJWT anchor, and two single logins and raw argon2 verifies, after one discarded warm-up
round, so load from other processes hits all alike. Hot rows give the median (p95) of the
per-call batch means; the rest the median (p95) of the single calls, which a preempted call
cannot shift. The garbage collector stays on.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import argon2
import jwt
from pydantic import SecretStr
from sqlalchemy import event

from benchlib import batch_mean, fmt, machine_lines, median, p95, per_round, single_calls
from tradeguard.auth import AuthHandler, Role, build_auth_handler
from tradeguard.auth.keys import Algorithm
from tradeguard.secrets import build_secrets_manager
from tradeguard.settings import Settings

TARGET_HOT_SPEEDUP = 10.0  # PyJWT decode / repeated validate_token
TARGET_FIRST_RATIO = 1.3  # first validate_token / PyJWT decode
REQUIRED = ["iss", "aud", "sub", "jti", "iat", "nbf", "exp", "typ", "sid"]
HOT_BATCHES, HOT_BATCH, BATCH, LOGINS = 10, 200, 50, 2
OPS = HOT, STALE, FIRST, TOKENS, PYJWT = (
    "validate_token, hot",
    "validate_token, status reload",
    "validate_token, first",
    "tokens.validate, first",
    "PyJWT jwt.decode",
)
LOGIN, ARGON2 = "authenticate (login)", "argon2id verify, raw"


@dataclass
class Config:
    """One algorithm's handler, its live session and the tokens to validate."""

    alg: Algorithm
    home: Path
    handler: AuthHandler
    stale: AuthHandler  # auth_state_ttl=0: the token status is loaded on every call
    username: str
    password: str
    hot: str
    fresh: Iterator[str]
    key: Any

    def validate_hot(self) -> list[float]:
        self.handler.validate_token(self.hot)  # untimed: status entry fresh for the batch
        run = self.handler.validate_token
        return [batch_mean(lambda: run(self.hot), HOT_BATCH) for _ in range(HOT_BATCHES)]

    def validate_stale(self) -> list[float]:
        return single_calls(lambda: self.stale.validate_token(self.hot), BATCH)

    def validate_first(self) -> list[float]:
        return single_calls(lambda: self.handler.validate_token(next(self.fresh)), BATCH)

    def tokens_only(self) -> dict[str, Any]:
        return self.handler.tokens.validate(next(self.fresh), expected_type="access")

    def tokens_first(self) -> list[float]:
        return single_calls(self.tokens_only, BATCH)

    def pyjwt(self) -> dict[str, Any]:
        tokens = self.handler.tokens
        return jwt.decode(self.hot, self.key, algorithms=[self.alg], audience=tokens.audience,
                          issuer=tokens.issuer, options={"require": REQUIRED})  # fmt: skip

    def pyjwt_calls(self) -> list[float]:
        return single_calls(self.pyjwt, BATCH)

    def login(self) -> list[float]:
        return single_calls(lambda: self.handler.authenticate(self.username, self.password), LOGINS)

    def statements(self) -> list[int]:
        """SQL statements sent by one first validate_token, one hot, one tokens.validate."""
        seen: list[object] = []
        event.listen(self.handler.store.engine, "before_cursor_execute", lambda *a: seen.append(a))
        self.handler.validate_token(self.hot)  # status fresh: the hot call below is hot
        counts = []
        for op in (lambda: self.handler.validate_token(next(self.fresh)),
                   lambda: self.handler.validate_token(self.hot), self.tokens_only):  # fmt: skip
            seen.clear()
            op()
            counts.append(len(seen))
        return counts


def build(alg: Algorithm, fresh_count: int) -> Config:
    """A handler on a fresh home, a user, a login and ``fresh_count`` unused access tokens."""
    home = Path(tempfile.mkdtemp(prefix=f"tg-bench-auth-{alg}-"))
    hs256 = SecretStr(secrets.token_urlsafe(32)) if alg == "HS256" else None
    settings = Settings(home=home, jwt_algorithm=alg, jwt_secret=hs256)
    manager = build_secrets_manager(settings)
    handler = build_auth_handler(settings, manager)
    stale = build_auth_handler(settings.model_copy(update={"auth_state_ttl": 0.0}), manager)
    username, password = "alice", secrets.token_urlsafe(18)
    user = handler.create_user(username, password, role=Role.TRADER)
    pair = handler.authenticate(username, password)
    claims = {"username": user.username, "role": user.role.value}
    fresh = [
        handler.tokens.issue(
            subject=user.id, token_type="access", session_id=pair.session_id, claims=claims
        ).token
        for _ in range(fresh_count)
    ]
    key = handler.tokens.ring.current.public_key
    assert handler.tokens.ring.current.algorithm == alg
    assert hs256 is None or key == hs256.get_secret_value().encode()
    config = Config(alg, home, handler, stale, username, password, pair.access_token, iter(fresh),
                    key)  # fmt: skip
    assert handler.validate_token(config.hot).role is stale.validate_token(config.hot).role
    assert config.pyjwt()["sid"] == pair.session_id
    return config


def machine_info() -> list[str]:
    return machine_lines(("PyJWT", "cryptography", "argon2-cffi", "SQLAlchemy"))


def main() -> int:
    parser = argparse.ArgumentParser(description="tradeguard auth benchmark")
    parser.add_argument("--quick", action="store_true", help="10 rounds instead of 30")
    rounds = 10 if parser.parse_args().quick else 30
    for name in [n for n in os.environ if n.startswith("TRADEGUARD_")]:
        del os.environ[name]
    print("tradeguard auth benchmark" + ("  [--quick]" if rounds == 10 else ""))
    for line in machine_info():
        print("  " + line)
    fresh = 2 * BATCH * (rounds + 1) + 10  # two first-validation rows, warm-up round included
    configs = [build("EdDSA", fresh), build("HS256", fresh)]
    try:
        default = configs[0]
        os.environ["TRADEGUARD_HOME"] = str(default.home)
        stored = default.handler.store.user_by_name(default.username)
        assert stored is not None
        stored_hash, password = stored.password_hash, default.password
        params = argon2.extract_parameters(stored_hash)
        raw = argon2.PasswordHasher.from_parameters(params)
        misses = [c.handler.tokens.cache_misses for c in configs]
        steps: list[tuple[str, Callable[[], list[float]]]] = [
            (LOGIN, default.login),
            (ARGON2, lambda: single_calls(lambda: raw.verify(stored_hash, password), LOGINS)),
        ]
        for c in configs:
            runs = (
                c.validate_hot,
                c.validate_stale,
                c.validate_first,
                c.tokens_first,
                c.pyjwt_calls,
            )
            steps += [(f"{c.alg} {n}", run) for n, run in zip(OPS, runs, strict=True)]
        samples: dict[str, list[float]] = {name: [] for name, _ in sorted(steps)}
        for _, step in steps:  # warm-up round, discarded
            step()
        for _ in range(rounds):
            random.shuffle(steps)
            for name, step in steps:
                samples[name].extend(step())
        for c, before in zip(configs, misses, strict=True):  # every "first" really missed
            assert c.handler.tokens.cache_misses - before == 2 * BATCH * (rounds + 1)
        # last: a SQLAlchemy listener (even removed) slows every later execute on the engine
        queries: dict[str, list[int]] = {c.alg: c.statements() for c in configs}
    finally:
        for c in configs:
            c.handler.close()
            c.stale.close()
            shutil.rmtree(c.home, ignore_errors=True)
    report(samples, rounds, queries, params)
    return 0


def report(
    samples: dict[str, list[float]],
    rounds: int,
    queries: dict[str, list[int]],
    params: argon2.Parameters,
) -> None:
    print(f"\n{'operation':<36} {'median':>10} {'p95':>10}  samples (per call)")
    for name, values in samples.items():
        how = "batch means" if name.endswith(HOT) else "single calls"
        print(f"{name:<36} {fmt(median(values)):>10} {fmt(p95(values)):>10}  {len(values)} {how}")
    print("\nratios and targets (ratio of the medians above; the verdict is on that ratio)")
    checks: list[tuple[str, str, str, float | None]] = [  # top, bottom, label, target
        (PYJWT, HOT, "PyJWT decode / validate_token hot", TARGET_HOT_SPEEDUP),
        (FIRST, PYJWT, "validate_token first / PyJWT decode", TARGET_FIRST_RATIO),
        (TOKENS, PYJWT, "tokens.validate first / PyJWT decode", None),
        (STALE, PYJWT, "validate_token status reload / PyJWT", None),
    ]
    for alg, (first_q, hot_q, tokens_q) in queries.items():
        for top, bottom, label, target in checks:
            value = median(samples[f"{alg} {top}"]) / median(samples[f"{alg} {bottom}"])
            if target is None:
                judged = "info, not judged"
            elif top == PYJWT:
                judged = f"target >= {target:.0f}x   {'PASS' if value >= target else 'FAIL'}"
            else:
                judged = f"target <= {target}   {'PASS' if value <= target else 'FAIL'}  (judged)"
            shown = f"{value:6.1f}x" if top == PYJWT else f"{value:6.2f} "
            print(f"  {alg:<5} {label:<38} {shown}   {judged}")
            print(f"          {per_round(samples, rounds, f'{alg} {top}', f'{alg} {bottom}')}")
        load = median(samples[f"{alg} {FIRST}"]) - median(samples[f"{alg} {TOKENS}"])
        print(
            f"  {alg:<5} status load = first validate_token - tokens.validate: {fmt(load)}; "
            f"SQL statements: first validate_token {first_q}, hot {hot_q}, tokens.validate "
            f"{tokens_q}"
        )
    login, verify = median(samples[LOGIN]), median(samples[ARGON2])
    print(
        f"  login: authenticate {fmt(login)} = {login / verify:.2f}x the raw argon2id verify "
        f"({fmt(verify)}; m={params.memory_cost} KiB, t={params.time_cost}, "
        f"p={params.parallelism}), info\n          {per_round(samples, rounds, LOGIN, ARGON2)}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
