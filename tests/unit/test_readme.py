"""The README documents every option and the commands CI runs."""

from __future__ import annotations

from pathlib import Path

from bluepulse.config import OPTIONS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
CI = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()


def test_every_option_is_in_the_configuration_table() -> None:
    missing = [o.flag for o in OPTIONS if f"| `{o.flag}` | `{o.env}` |" not in README]
    assert missing == []


def test_ci_runs_the_test_command_the_readme_gives() -> None:
    assert "scripts/test" in README
    assert "exec scripts/test" in CI
