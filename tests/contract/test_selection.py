"""scripts/test runs every contract case exactly once: memory cases in the first pytest
invocation, Kafka cases in the second (the one with the broker), none in both, none in neither."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = "tests/contract"


def invocations() -> list[list[str]]:
    """The arguments of each `run_pytest` line of scripts/test that includes the contract dir."""
    lines = (ROOT / "scripts" / "test").read_text().splitlines()
    calls = [shlex.split(line.strip())[1:] for line in lines if line.strip().startswith("run_pytest ")]
    return [args for args in calls if CONTRACT in args]


def collected(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 5), done.stdout + done.stderr
    return {line for line in done.stdout.splitlines() if line.startswith(CONTRACT + "/")}


def test_scripts_test_runs_every_contract_case_exactly_once() -> None:
    calls = invocations()
    assert len(calls) == 2, calls
    marks = [args[args.index("-m") + 1] for args in calls]
    assert sorted(marks) == ["kafka", "not kafka"]
    every = collected(CONTRACT)
    halves = [collected(CONTRACT, "-m", mark) for mark in marks]
    assert halves[0].isdisjoint(halves[1])
    assert halves[0] | halves[1] == every
    assert any("[kafka]" in case for case in every)
    assert any("[memory]" in case for case in every)
