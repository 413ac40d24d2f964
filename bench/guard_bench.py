"""Request-guard benchmark: detection, false positives and speed, tradeguard vs libinjection.

Run: ``python bench/guard_bench.py [--quick] [--corpora DIR]``. One run prints Markdown
tables (ready for docs/benchmarks.md) for ``tradeguard.guard.validate_input`` and, side by
side, libinjection 3.9.2 through ``libinjection-python`` (GPLv3; a benchmark anchor only,
never imported by tradeguard itself: ``pip install libinjection-python``, needs gcc).

Data: the labelled corpora in ``../shared/corpora`` (see its README). Detection on an
attack file counts rows flagged with that file's kind (``sql_injection`` for sqli.jsonl
...) and, in a second column, rows refused for any reason; libinjection counts
``is_sql_injection`` for SQL, ``is_xss`` for XSS and either for the others. Traversal is
also reported on the rows that contain a traversal sequence (after decoding: ``..`` next
to a separator, or an absolute path from a system root). A false positive is a harmless
row refused for any reason (libinjection: either check fires). Tuning = even rows (what the
detectors were tuned on), held out = odd rows.

Speed: every string of benign.jsonl (real form values, about 12 bytes each) through each
detector, in rounds after one warm-up; the best round gives strings/s and MB/s (UTF-8
bytes), the median is printed too, since other processes share the machine. The strings are
distinct (the file is deduplicated) and go through the module-level
``tradeguard.guard.validate_input``, which keeps no memo: every round inspects every string
afresh. (``SecurityValidator.inspect_request`` remembers short values already found safe;
that memo belongs to a validator object and is not used here.) Adversarial
rows: single 1 MiB values (``max_chars`` raised to 2 MiB) and 64 KiB values (the default
cap), timed with ``time.process_time``; the table gives the slowest of each set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tradeguard.guard import validate_input
from tradeguard.guard.normalize import decode

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = {
    "sqli": "sql_injection",
    "xss": "xss",
    "traversal": "path_traversal",
    "cmdi": "command_injection",
    "other_attack": None,
}
HARMLESS = ["benign", "benign_apostrophe", "benign_naughty", "crs_negative"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRAVERSAL = re.compile(
    r"\.\.[/\\]|[/\\]\.\."
    r"|^(?:[a-z]:)?[/\\](?:etc|proc|var|usr|bin|sbin|boot|root|windows|winnt)[/\\]",
    re.IGNORECASE,
)
MIB = 1 << 20
ADVERSARIAL = {
    "quotes": "'",
    "tag openers": "<a",
    "dot-dot-slash": "../",
    "parentheses": "(",
    "percent-25": "%25",
    "entities": "&lt;",
    "backslashes": "\\",
    "comment openers": "/*",
    "pipes": "|id",
    "handlers": " onx=",
    "sql words": "union select ",
    "tautologies": "' or 1=1 ",
    "mixed marks": "a'b\"c<d>e(f)g;h|i&j`k$l%m/n\\o",
    "letters": "x",
    "words": "hello world ",
    "fullwidth": "\uff1c",
}

Detector = Callable[[str], bool]


def load(corpora: Path, name: str) -> list[str]:
    lines = (corpora / f"{name}.jsonl").read_text(encoding="utf-8").split("\n")
    return [json.loads(line)["text"] for line in lines if line]


def libinjection_checks() -> tuple[Detector, Detector] | None:
    try:
        import libinjection  # type: ignore[import-not-found]  # GPL: benchmark only
    except ImportError:
        return None

    def sqli(text: str) -> bool:
        return bool(libinjection.is_sql_injection(text)["is_sqli"])

    def xss(text: str) -> bool:
        return bool(libinjection.is_xss(text)["is_xss"])

    return sqli, xss


def pct(hits: int, total: int) -> str:
    return f"{100 * hits / total:.2f} %" if total else "n/a"


def has_traversal(text: str) -> bool:
    decoded = decode(text)
    return decoded is not None and _TRAVERSAL.search(_CONTROL.sub("", decoded)) is not None


def detection_table(corpora: Path, lib: tuple[Detector, Detector] | None) -> list[str]:
    rows = [
        "| file | rows | tradeguard, kind (tuning / held out / all) | tradeguard, any threat "
        "| libinjection |",
        "|---|---:|---|---:|---:|",
    ]
    for name, kind in ATTACKS.items():
        texts = load(corpora, name)
        verdicts = [validate_input(text) for text in texts]
        hit = [kind in v.kinds if kind else not v.safe for v in verdicts]
        parts = [pct(sum(hit[i::2]), len(hit[i::2])) for i in (0, 1)] + [pct(sum(hit), len(hit))]
        anything = pct(sum(not v.safe for v in verdicts), len(verdicts))
        rows.append(
            f"| {name} | {len(texts):,} | {' / '.join(parts)} | {anything} "
            f"| {lib_rate(lib, name, texts)} |"
        )
        if name == "traversal":
            sub = [i for i, text in enumerate(texts) if has_traversal(text)]
            seq_hits = [hit[i] for i in sub]
            halves = [pct(sum(seq_hits[i::2]), len(seq_hits[i::2])) for i in (0, 1)]
            seq_texts = [texts[i] for i in sub]
            rows.append(
                f"| traversal, rows with a traversal sequence | {len(sub):,} | "
                f"{' / '.join([*halves, pct(sum(seq_hits), len(seq_hits))])} | "
                f"{pct(sum(not verdicts[i].safe for i in sub), len(sub))} "
                f"| {lib_rate(lib, name, seq_texts)} |"
            )
    return rows


def lib_rate(lib: tuple[Detector, Detector] | None, name: str, texts: list[str]) -> str:
    if lib is None:
        return "not installed"
    sqli, xss = lib
    if name == "sqli":
        check: Detector = sqli
    elif name == "xss":
        check = xss
    else:

        def check(text: str) -> bool:
            return sqli(text) or xss(text)

    return pct(sum(check(text) for text in texts), len(texts))


def false_positive_table(corpora: Path, lib: tuple[Detector, Detector] | None) -> list[str]:
    rows = [
        "| file | rows | tradeguard refused (tuning / held out / all) "
        "| of which control characters only | libinjection |",
        "|---|---:|---|---:|---:|",
    ]
    for name in HARMLESS:
        texts = load(corpora, name)
        verdicts = [validate_input(text) for text in texts]
        refused = [not v.safe for v in verdicts]
        control = sum(v.kinds == {"control_characters"} for v in verdicts)
        parts = [pct(sum(refused[i::2]), len(refused[i::2])) for i in (0, 1)]
        parts.append(f"{pct(sum(refused), len(refused))} ({sum(refused)})")
        if lib is None:
            lib_fp = "not installed"
        else:
            flagged = sum(lib[0](text) or lib[1](text) for text in texts)
            lib_fp = f"{pct(flagged, len(texts))} ({flagged})"
        rows.append(f"| {name} | {len(texts):,} | {' / '.join(parts)} | {control} | {lib_fp} |")
    return rows


def throughput(texts: list[str], check: Callable[[str], object], rounds: int) -> tuple[float, ...]:
    size = sum(len(text.encode("utf-8")) for text in texts)
    for text in texts:  # warm-up
        check(text)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for text in texts:
            check(text)
        times.append(time.perf_counter() - started)
    best, median = min(times), statistics.median(times)
    return len(texts) / best, size / best / 1e6, len(texts) / median, size / median / 1e6


def speed_table(corpora: Path, lib: tuple[Detector, Detector] | None, rounds: int) -> list[str]:
    texts = load(corpora, "benign")
    rows = [
        f"| detector (benign.jsonl, {len(texts):,} strings) | strings/s (best) | MB/s (best) "
        "| strings/s (median) | MB/s (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    checks: dict[str, Callable[[str], object]] = {"tradeguard validate_input": validate_input}
    if lib is not None:
        sqli, xss = lib
        checks["libinjection is_sql_injection"] = sqli
        checks["libinjection is_xss"] = xss
        checks["libinjection both"] = lambda text: sqli(text) or xss(text)
    for label, check in checks.items():
        best, best_mb, median, median_mb = throughput(texts, check, rounds)
        rows.append(f"| {label} | {best:,.0f} | {best_mb:.2f} | {median:,.0f} | {median_mb:.2f} |")
    return rows


def adversarial_table() -> list[str]:
    rows = [
        "| values | cap (max_chars) | median | slowest (which) | refused as too_complex |",
        "|---|---:|---:|---|---:|",
    ]
    for size, cap, label in ((MIB, 2 * MIB, "1 MiB"), (64 * 1024, 64 * 1024, "64 KiB")):
        times: dict[str, float] = {}
        too_complex = 0
        for name, unit in ADVERSARIAL.items():
            value = (unit * (size // len(unit) + 1))[:size]
            started = time.process_time()
            verdict = validate_input(value, max_chars=cap)
            times[name] = time.process_time() - started
            too_complex += any(t.rule == "too_complex" for t in verdict.threats)
        worst = max(times, key=times.__getitem__)
        rows.append(
            f"| {len(ADVERSARIAL)} x {label} | {cap:,} | "
            f"{statistics.median(times.values()) * 1e3:.1f} ms | "
            f"{times[worst] * 1e3:.1f} ms ({worst}) | {too_complex} |"
        )
    return rows


def machine() -> str:
    load_avg = "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{platform.system()} {platform.release()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
        f"load average {load_avg}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 speed rounds instead of 15")
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    args = parser.parse_args()
    if not (args.corpora / "sqli.jsonl").is_file():
        print(f"corpora not found at {args.corpora}; pass --corpora DIR", file=sys.stderr)
        return 2
    lib = libinjection_checks()
    print(f"# Request guard benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"\n{machine()}")
    if lib is None:
        print(
            "\nlibinjection is not installed: `pip install libinjection-python` (builds from "
            "source with gcc; GPLv3, benchmark only). Reporting tradeguard alone."
        )
    sections = {
        "Detection (share of attack rows flagged)": detection_table(args.corpora, lib),
        "False positives (share of harmless rows refused)": false_positive_table(args.corpora, lib),
        "Throughput, one core": speed_table(args.corpora, lib, 3 if args.quick else 15),
        "Adversarial inputs (time.process_time)": adversarial_table(),
    }
    for title, rows in sections.items():
        print(f"\n### {title}\n")
        print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
