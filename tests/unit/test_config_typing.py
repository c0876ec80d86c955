"""Configuration is typed through: a misspelt setting is a mypy error, not a run-time surprise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SNIPPET = """\
from bluepulse.config import AggregatorConfig, StreamerConfig, resolve

config = StreamerConfig()
reveal_type(config.metrics_port)
reveal_type(config.out)
print(config.metrics_prot)
print(AggregatorConfig(batch_events="5000"))
"""


def mypy(*args: str) -> tuple[str, int]:
    # its own process: mypy's compiled modules crashed (SIGSEGV) run in-process after other tests
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    return done.stdout + done.stderr, done.returncode


def test_a_misspelt_setting_is_a_type_error(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    report, status = mypy("--strict", "--no-incremental", str(snippet))
    assert status == 1
    assert re.search(r'snippet.py:4: note: Revealed type is "(builtins\.)?int"', report), report
    assert re.search(r'snippet.py:5: note: Revealed type is "pathlib.Path \| None"', report), report
    assert 'snippet.py:6: error: "StreamerConfig" has no attribute "metrics_prot"' in report
    assert "[attr-defined]" in report
    assert (
        'Argument "batch_events" to "AggregatorConfig" has incompatible type "str"; expected "int"' in report
    )


def test_bluepulse_passes_strict_with_no_any_in_its_configuration() -> None:
    # pyproject.toml: disallow_any_explicit on bluepulse.*, disallow_any_expr on the settings
    report, status = mypy("--strict", "-p", "bluepulse")
    assert status == 0, report
