"""Child processes for tests and benches: started as a user would, stopped whatever happens.

A `ChildProcess` writes stdout and stderr to its own log file (appended, so a restart keeps the
first run's lines) and runs without the caller's `BLUEPULSE_*` variables, so only its flags
configure it. `close()` belongs in a finally: a failed test must not leave a process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Self

STOP_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 4000

Metrics = dict[str, float]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without `BLUEPULSE_*` settings, plus `extra`; identity look-ups are off
    (`BLUEPULSE_PLC=off`: a test never calls the real PLC directory; `--plc URL` beats it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLUEPULSE_")}
    return env | {"BLUEPULSE_PLC": "off"} | extra


def bluepulse_argv(*args: str) -> list[str]:
    """`bluepulse ARGS…` run by this interpreter (no dependency on the console script)."""
    return [sys.executable, "-m", "bluepulse.cli", *args]


def stop_or_kill(proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit within `timeout`; nothing if it already exited."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class ChildProcess:
    """One child process with its own log file; `start()` again after a stop restarts it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        capture_stdout: bool = False,
        new_session: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = env
        self.cwd = cwd
        self.capture_stdout = capture_stdout  # stdout to a pipe (`proc.stdout`), stderr to the log
        self.new_session = new_session  # Ctrl-C of the caller does not reach it
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Self:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env if self.env is not None else clean_env(),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.capture_stdout else log,
                stderr=log if self.capture_stdout else subprocess.STDOUT,
                start_new_session=self.new_session,
            )
        self.starts += 1
        return self

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send `sig` and return the exit code (negative: the signal that ended it)."""
        self.popen.send_signal(sig)
        return self.popen.wait(timeout=timeout)

    def stop_or_kill(self, timeout: float = STOP_TIMEOUT_S) -> None:
        if self.proc is not None:
            stop_or_kill(self.proc, timeout)

    def close(self) -> None:
        """SIGKILL whatever is still running (for a finally block)."""
        if self.running:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT_S)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return f"--- {self.name} log (last {chars} chars) ---\n{self.output()[-chars:]}"


def metrics_text(port: int) -> str:
    """The /metrics page on loopback `port`; raises OSError while nothing answers there."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body: IO[bytes] = resp
        return body.read().decode()


def parse_metrics(text: str) -> Metrics:
    """`series{labels} value` lines → {series with labels: value} (values may be in exponent form)."""
    out: Metrics = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out
