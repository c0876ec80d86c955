"""Shared helpers for the bench scripts: import path, CPU pinning, memory readings.

Importing this module puts the project root first on sys.path: a script runs with its own
directory first, so `bench/streamer.py` would otherwise import itself as `streamer`.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))


def cpu_pair() -> tuple[int | None, int | None]:
    """Two distinct CPUs this process may use (server, client), or no pinning on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


def pin_cpu(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def status_kb(field: str) -> int:
    """A `/proc/self/status` memory field in KiB: VmRSS (now) or VmHWM (peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def max_rss_kb() -> int:
    """Peak resident set size of this process (getrusage; KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def pid_status_kb(pid: int, field: str) -> int:
    """A `/proc/PID/status` memory field of another process in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def pid_cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
