"""The README documents every option as the settings declare it, and the commands CI runs."""

from __future__ import annotations

from pathlib import Path

from bluepulse.config import OPTIONS, config_table
from bluepulse.options import README_HEADER

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
CI = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()


def test_every_option_is_in_the_configuration_table() -> None:
    missing = [o.flag for o in OPTIONS if f"| `{o.flag}` | `{o.env}` |" not in README]
    assert missing == []


def test_ci_runs_the_test_command_the_readme_gives() -> None:
    assert "scripts/test" in README
    assert "exec scripts/test" in CI


def configuration_rows(text: str) -> dict[str, list[str]]:
    """The README's configuration table: flag → [env var, default, commands, meaning]."""
    text += "\n\n"
    start = text.index(README_HEADER)
    table = text[start : text.index("\n\n", start)].splitlines()[2:]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in table]
    return {c[0].strip("`"): c[1:] for c in cells}


def test_configuration_table_and_settings_agree_both_ways() -> None:
    documented = configuration_rows(README)
    declared = configuration_rows(config_table())
    assert sorted(documented.keys() - declared.keys()) == [], "README rows no setting declares"
    assert sorted(declared.keys() - documented.keys()) == [], "settings the README does not list"
    for flag, (env, default, commands, _) in declared.items():
        assert documented[flag][:3] == [env, default, commands], f"README row of {flag}"
    assert config_table() in README, "regenerate: python -c 'from bluepulse.config import config_table; ...'"


def test_the_table_shows_each_setting_s_own_default() -> None:
    rows = configuration_rows(config_table())
    assert rows["--metrics-port"][:3] == [
        "`BLUEPULSE_METRICS_PORT`",
        "`9464`",
        "run, demo, streamer, aggregator",
    ]
    assert rows["--out"][1] == "—"
    assert rows["--log-level"][2] == "all"
    assert {o.flag for o in OPTIONS} == set(rows)
