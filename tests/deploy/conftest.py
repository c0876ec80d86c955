"""Shared fixtures of the deploy tests: where deploy/ is, and the Prometheus binaries.

`scripts/prometheus` finds (or installs, when it can) `prometheus` and `promtool`. The tests
skip only when the binaries are missing AND this machine cannot install them (exit 3: not
root, no passwordless sudo, or no apt-get); any other failure fails with its message.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import REPO, PrometheusBins

CANNOT_INSTALL = 3


@pytest.fixture(scope="session")
def prometheus_bins() -> PrometheusBins:
    script = REPO / "scripts" / "prometheus"
    proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode == CANNOT_INSTALL:
        pytest.skip(f"prometheus/promtool not installed and not installable here: {proc.stderr.strip()}")
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
