"""Shared fixtures of the deploy tests: where deploy/ is, the Prometheus and Alertmanager binaries.

`scripts/prometheus` finds (or installs, when it can) `prometheus` and `promtool`;
`scripts/alertmanager` does the same for `alertmanager` and `amtool`. Without them the tests
fail with the script's message: a deploy check that silently skips proves nothing
(scripts/test installs them first).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import REPO, AlertmanagerBins, PrometheusBins


@pytest.fixture(scope="session")
def prometheus_bins() -> PrometheusBins:
    paths = _script_paths("prometheus")
    try:
        return PrometheusBins(Path(paths["prometheus"]), Path(paths["promtool"]))
    except KeyError:
        pytest.fail(f"scripts/prometheus printed no paths: {paths!r}")


@pytest.fixture(scope="session")
def alertmanager_bins() -> AlertmanagerBins:
    paths = _script_paths("alertmanager")
    try:
        return AlertmanagerBins(Path(paths["alertmanager"]), Path(paths["amtool"]))
    except KeyError:
        pytest.fail(f"scripts/alertmanager printed no paths: {paths!r}")


def _script_paths(name: str) -> dict[str, str]:
    """Run scripts/<name> (finds or installs binaries): {binary: path} from its output."""
    proc = subprocess.run(
        [str(REPO / "scripts" / name)], capture_output=True, text=True, timeout=900, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"scripts/{name} failed (exit {proc.returncode}); CI must run it before the tests:\n"
            f"{proc.stderr[-3000:]}"
        )
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
