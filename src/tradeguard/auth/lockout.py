"""Brute-force lockout, pure: consecutive failures lock an account for escalating periods."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """After ``threshold`` consecutive failures, lock for the next of ``durations`` (seconds);
    the last duration repeats (the cap). A success resets everything."""

    threshold: int = 5
    durations: tuple[float, ...] = (60.0, 300.0, 900.0)

    def __post_init__(self) -> None:
        if self.threshold < 1 or not self.durations or min(self.durations) <= 0:
            raise ValueError("lockout threshold must be >= 1 and durations positive")


@dataclass(frozen=True, slots=True)
class FailureState:
    """Per normalised username: failures since the last lock, locks so far, lock end."""

    failures: int = 0
    locks: int = 0
    locked_until: float = 0.0


def retry_after(state: FailureState, now: float) -> float | None:
    """Seconds left on a lock, or None when not locked."""
    return state.locked_until - now if state.locked_until > now else None


def register_failure(state: FailureState, now: float, policy: LockoutPolicy) -> FailureState:
    """The state after one more failure (which may start a lock)."""
    failures = state.failures + 1
    if failures < policy.threshold:
        return FailureState(failures, state.locks, state.locked_until)
    duration = policy.durations[min(state.locks, len(policy.durations) - 1)]
    return FailureState(0, state.locks + 1, now + duration)
