"""Shared fixtures of the deploy tests: where deploy/ is, and the Prometheus binaries.

`scripts/prometheus` finds (or installs, when it can) `prometheus` and `promtool`. Without
them the tests fail with the script's message: a deploy check that silently skips proves
nothing (scripts/test installs them first).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import REPO, PrometheusBins


@pytest.fixture(scope="session")
def prometheus_bins() -> PrometheusBins:
    script = REPO / "scripts" / "prometheus"
    proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"scripts/prometheus failed (exit {proc.returncode}); CI must run it before the tests:\n"
            f"{proc.stderr[-3000:]}"
        )
    paths = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    try:
        return PrometheusBins(Path(paths["prometheus"]), Path(paths["promtool"]))
    except KeyError:
        pytest.fail(f"scripts/prometheus printed no paths: {proc.stdout!r}")
