"""The README stays true: its two commands, and every setting documented."""

from __future__ import annotations

import re
from pathlib import Path

from tradeguard.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _first_block() -> list[str]:
    block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_when_opened_then_first_block_is_serve_then_tests() -> None:
    serve, tests = _first_block()
    assert serve.startswith("python3 -m pip install") and serve.endswith("tradeguard serve")
    assert tests == "python3 -m pip install -e '.[all,test]' && python3 -m pytest"


def test_ci_when_run_then_it_runs_the_readme_test_command_verbatim() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert script[-1] == _first_block()[1]


def test_readme_when_read_then_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`(TRADEGUARD_[A-Z_]+)`", README))
    expected = {f"TRADEGUARD_{name.upper()}" for name in Settings.model_fields}
    assert sorted(expected - documented) == []
