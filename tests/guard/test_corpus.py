"""Detection and false-positive rates of the request guard on the labelled corpora.

The corpora (../shared/corpora, see its README) sit next to the checkout, not in it; when
they are absent (a clean CI clone) every test here is skipped, saying so.

Every target is asserted on the even rows (the half the detectors were tuned on), on the
odd rows (held out while tuning) and on all rows.

How rates are counted:
- detection on an attack file counts rows whose verdict carries that file's threat *kind*
  (a SQL row caught only as ``xss`` does not count);
- path traversal is measured on the rows that contain a traversal sequence: after
  :func:`~tradeguard.guard.normalize.decode` and dropping control characters, a ``..``
  next to ``/`` or ``\\``, or an absolute path starting at a system root (``/etc/``,
  ``c:\\windows\\`` ...). Rows without one (bare file names, fuzzing junk that decodes to
  nothing, comments) are reported but not held to the target;
- a false positive is a harmless row refused for any reason (benign_naughty's rows made of
  C0/C1 control characters included: the guard refuses only controls that can do harm);
- crs_negative has noisy labels (some rows are attacks meant for another rule): its rate
  is recorded, not asserted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest

from tradeguard.guard import InputVerdict, validate_input
from tradeguard.guard.normalize import decode

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"

pytestmark = pytest.mark.skipif(
    not (CORPORA / "sqli.jsonl").is_file(),
    reason=f"labelled corpora not found at {CORPORA} (they live beside the checkout)",
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRAVERSAL = re.compile(
    r"\.\.[/\\]|[/\\]\.\."
    r"|^(?:[a-z]:)?[/\\](?:etc|proc|var|usr|bin|sbin|boot|root|windows|winnt)[/\\]",
    re.IGNORECASE,
)
HALVES = {"tuning (even rows)": 0, "held out (odd rows)": 1, "all rows": None}


@cache
def verdicts(name: str) -> tuple[tuple[str, InputVerdict], ...]:
    lines = (CORPORA / f"{name}.jsonl").read_text(encoding="utf-8").split("\n")
    texts = (json.loads(line)["text"] for line in lines if line)
    return tuple((text, validate_input(text)) for text in texts)


def half(name: str, which: int | None) -> Iterator[tuple[str, InputVerdict]]:
    for index, row in enumerate(verdicts(name)):
        if which is None or index % 2 == which:
            yield row


def rate(rows: list[tuple[str, InputVerdict]], hit: Callable[[InputVerdict], bool]) -> float:
    assert rows, "no rows to measure"
    return sum(hit(verdict) for _, verdict in rows) / len(rows)


def contains_traversal(text: str) -> bool:
    decoded = decode(text)
    return decoded is not None and _TRAVERSAL.search(_CONTROL.sub("", decoded)) is not None


@pytest.mark.parametrize("which", HALVES.values(), ids=HALVES.keys())
@pytest.mark.parametrize(
    ("name", "kind", "target"),
    [("sqli", "sql_injection", 0.97), ("xss", "xss", 0.95)],
)
def test_attacks_when_inspected_then_target_caught(
    name: str, kind: str, target: float, which: int | None, record_property: Callable[..., None]
) -> None:
    detected = rate(list(half(name, which)), lambda verdict: kind in verdict.kinds)
    record_property(f"{name}_detection", detected)
    assert detected >= target, f"{name}: {detected:.2%} < {target:.0%}"


@pytest.mark.parametrize("which", HALVES.values(), ids=HALVES.keys())
def test_traversal_when_row_has_traversal_sequence_then_caught(
    which: int | None, record_property: Callable[..., None]
) -> None:
    rows = list(half("traversal", which))
    with_sequence = [row for row in rows if contains_traversal(row[0])]
    detected = rate(with_sequence, lambda verdict: "path_traversal" in verdict.kinds)
    every_row = rate(rows, lambda verdict: "path_traversal" in verdict.kinds)
    record_property("traversal_detection_with_sequence", detected)
    record_property("traversal_detection_all_rows", every_row)
    assert len(with_sequence) > len(rows) / 2
    assert detected >= 0.97, f"traversal rows with a sequence: {detected:.2%} < 97%"
    assert every_row >= 0.85, f"traversal, all rows: {every_row:.2%}"


@pytest.mark.parametrize("which", HALVES.values(), ids=HALVES.keys())
@pytest.mark.parametrize(
    ("name", "limit"),
    [("benign", 0.003), ("benign_apostrophe", 0.003), ("benign_naughty", 0.01)],
)
def test_harmless_when_inspected_then_few_refused(
    name: str, limit: float, which: int | None, record_property: Callable[..., None]
) -> None:
    refused = rate(list(half(name, which)), lambda verdict: not verdict.safe)
    record_property(f"{name}_refused", refused)
    assert refused <= limit, f"{name}: {refused:.3%} > {limit:.1%}"


def test_cmdi_when_inspected_then_most_caught(record_property: Callable[..., None]) -> None:
    detected = rate(list(half("cmdi", None)), lambda v: "command_injection" in v.kinds)
    record_property("cmdi_detection", detected)
    assert detected >= 0.75


def test_crs_negative_when_inspected_then_rate_recorded(
    record_property: Callable[..., None],
) -> None:
    refused = rate(list(half("crs_negative", None)), lambda verdict: not verdict.safe)
    record_property("crs_negative_refused", refused)
    assert refused < 0.2
