"""Two real processes on one state directory: the second stops at once, naming the first, deleting nothing."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port

BLUEPULSE = Path(sys.executable).with_name("bluepulse")
ACCOUNTS = "did,handle,name\ndid:plc:aaaaaaaaaaaaaaaaaaaaaaaa,aphp.fr,AP-HP\n"


def start(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BLUEPULSE), *argv], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def second(*argv: str, cwd: Path) -> tuple[int, str]:
    done = subprocess.run(
        [str(BLUEPULSE), *argv], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
    )
    return done.returncode, done.stderr


def wait_for(path: Path, first: subprocess.Popen[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert first.poll() is None, first.communicate()[1]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    return err


def test_second_demo_stops_naming_the_first_and_wipes_nothing(
    tmp_path: Path, stopper: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    first = start("demo", "--port", "0", "--metrics-port", str(port), "--state-dir", "d", cwd=tmp_path)
    stopper.append(first)
    home = tmp_path / "d" / "demo"
    wait_for(home / "bluepulse.snapshot.duckdb", first)
    before = {p.name for p in home.iterdir()}
    assert {"accounts.csv", "bluepulse.duckdb", "bluepulse.lock"} <= before

    code, err = second("demo", "--port", "0", "--metrics-port", "0", "--state-dir", "d", cwd=tmp_path)
    assert code == 2
    assert f"demo directory d/demo is in use by pid {first.pid} (bluepulse demo --port 0" in err
    assert "Traceback" not in err
    assert {p.name for p in home.iterdir()} >= before  # nothing deleted
    assert first.poll() is None

    # a second demo elsewhere meets the first one's /metrics port: one line, its own data untouched
    code, err = second("demo", "--port", "0", "--metrics-port", str(port), "--state-dir", "e", cwd=tmp_path)
    assert code == 2
    assert f"--metrics-port {port}: 127.0.0.1:{port} is already in use" in err
    assert "Traceback" not in err
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert b"bluepulse_streamer_" in response.read()

    log = stop(first)
    on_path = shutil.which("bluepulse")
    runnable = "bluepulse" if on_path and Path(on_path).resolve() == BLUEPULSE.resolve() else str(BLUEPULSE)
    assert f"try: {runnable} sql --db d/demo/bluepulse.duckdb 'SELECT" in log


def test_two_runs_on_one_state_dir_do_not_both_start(
    tmp_path: Path, stopper: list[subprocess.Popen[str]]
) -> None:
    (tmp_path / "accounts.csv").write_text(ACCOUNTS)
    argv = [
        "run",
        "--relay",
        f"ws://127.0.0.1:{free_port()}",
        "--metrics-port",
        "0",
        "--state-dir",
        "s",
        "--db",
        "s/bluepulse.duckdb",
    ]
    first = start(*argv, cwd=tmp_path)
    stopper.append(first)
    wait_for(tmp_path / "s" / "bluepulse.duckdb", first)

    code, err = second(*argv, cwd=tmp_path)
    assert code == 2
    assert f"state directory s is in use by pid {first.pid} (bluepulse run --relay" in err
    assert "Traceback" not in err
    assert first.poll() is None
    stop(first)
