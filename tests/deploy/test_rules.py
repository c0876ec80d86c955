"""The Prometheus config, rules and alert unit tests pass promtool, and every alert is tested.

`promtool test rules` runs deploy/prometheus/tests/*.test.yml. The coverage check reads the
files line by line (no YAML parser in the venv): it relies on the layout those files use,
`alertname:` followed by `exp_alerts: []` or by expected alerts with `severity:` labels.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path

from tests.deploy.support import PROMETHEUS_DIR, RULES, PrometheusBins

UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))


def promtool(bins: PrometheusBins, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bins.promtool), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROMETHEUS_DIR,
    )


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"{' '.join(proc.args)} failed:\n{proc.stdout}\n{proc.stderr}"


def test_prometheus_config_and_its_rule_files_are_valid(prometheus_bins: PrometheusBins) -> None:
    proc = promtool(prometheus_bins, "check", "config", "prometheus.yml")
    assert_ok(proc)
    assert "1 rule files found" in proc.stdout + proc.stderr


def test_rules_are_valid(prometheus_bins: PrometheusBins) -> None:
    assert_ok(promtool(prometheus_bins, "check", "rules", str(RULES)))


def test_rule_unit_tests_pass(prometheus_bins: PrometheusBins) -> None:
    assert UNIT_TESTS, "no deploy/prometheus/tests/*.test.yml"
    assert_ok(promtool(prometheus_bins, "test", "rules", *(str(p) for p in UNIT_TESTS)))


def alerts_in_rules() -> dict[str, set[str]]:
    """alertname -> severities, from the rules file."""
    alerts: dict[str, set[str]] = defaultdict(set)
    current = None
    for line in RULES.read_text().splitlines():
        if m := re.match(r"\s*- (alert|record): (\S+)", line):
            current = m.group(2) if m.group(1) == "alert" else None
        elif current and (m := re.match(r"\s*severity: (\w+)", line)):
            alerts[current].add(m.group(1))
    return alerts


def alert_tests(paths: list[Path]) -> tuple[dict[str, set[str]], set[str]]:
    """(alertname -> severities expected firing, alertnames expected silent at some time)."""
    firing: dict[str, set[str]] = defaultdict(set)
    silent: set[str] = set()
    for path in paths:
        name = None
        for line in path.read_text().splitlines():
            if m := re.match(r"\s*(?:- )?alertname: (\S+)", line):
                name = m.group(1)
            elif name and re.match(r"\s*exp_alerts: \[\]", line):
                silent.add(name)
                name = None
            elif name and (m := re.match(r"\s*severity: (\w+)", line)):
                firing[name].add(m.group(1))
            elif re.match(r"\s*- (name|eval_time):", line):
                name = None
    return firing, silent


def test_every_alert_and_severity_has_a_firing_and_a_silent_unit_test() -> None:
    alerts = alerts_in_rules()
    firing, silent = alert_tests(UNIT_TESTS)
    assert len(alerts) >= 10, alerts
    untested_firing = {
        a: sev - firing.get(a, set()) for a, sev in alerts.items() if sev - firing.get(a, set())
    }
    assert untested_firing == {}, "alerts (severities) no unit test expects to fire"
    assert set(alerts) - silent == set(), "alerts no unit test expects to stay silent"


def test_annotations_are_plain_text() -> None:
    """Handles are data: no HTML tags, no escaping turned off, no links built from labels."""
    text = RULES.read_text()
    assert re.search(r"<\s*/?\s*[a-zA-Z]", text) is None
    assert "safeHtml" not in text
    assert "href" not in text.lower()
