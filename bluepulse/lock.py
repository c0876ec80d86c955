"""Exclusive locks on what a command writes: a state directory, a DuckDB file.

Two writers on one state directory or store would interleave cursors and transactions, and a
second `bluepulse demo` would wipe a running one's data. Every writing command takes a
non-blocking `flock` before it touches anything and keeps it while it runs; the lock file names
the holder (pid and command line), so the refusal can say who to stop. The kernel drops the
lock when the holder dies, so a stale file never blocks anyone.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final, TextIO

from bluepulse.errors import LockError

__all__ = ["DIR_LOCK_NAME", "LockError", "dir_lock_path", "file_lock_path", "hold", "hold_all", "hold_store"]

DIR_LOCK_NAME: Final = "bluepulse.lock"


def dir_lock_path(directory: Path) -> Path:
    """The lock file of a state directory, inside it (created with the directory)."""
    return directory / DIR_LOCK_NAME


def file_lock_path(path: Path) -> Path:
    """The lock file of a single file (the DuckDB store): `<file>.lock` beside it."""
    return path.with_name(path.name + ".lock")


def _holder(handle: TextIO) -> str:
    handle.seek(0)
    lines = handle.read().splitlines()
    if len(lines) >= 2 and lines[0].strip().isdigit():
        return f"pid {lines[0].strip()} ({lines[1].strip()})"
    return "another process (it has not written its name yet)"


@contextmanager
def hold(lock_file: Path, what: str) -> Iterator[Path]:
    """Hold `lock_file` exclusively for the `with` block, or raise LockError naming the holder."""
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_file, "a+")  # noqa: SIM115 - held open for the whole block
    except OSError as exc:
        raise LockError(f"cannot use {what}: {lock_file}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockError(
                f"{what} is in use by {_holder(handle)}; stop that process first, or give this one "
                f"its own directory (lock file {lock_file})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n{shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}\n")
        handle.flush()
        yield lock_file
    finally:
        handle.close()  # closing the descriptor releases the flock


@contextmanager
def hold_all(dirs: dict[str, Path], files: dict[str, Path]) -> Iterator[None]:
    """Lock each state directory (`what` → path) and each store file, all or none."""
    with ExitStack() as stack:
        for what, directory in dirs.items():
            stack.enter_context(hold(dir_lock_path(directory), f"{what} {directory}"))
        for what, path in files.items():
            stack.enter_context(hold(file_lock_path(path), f"{what} {path}"))
        yield


@contextmanager
def hold_store(db: Path, hint: str) -> Iterator[Path]:
    """Hold the DuckDB file's lock; a refusal names the holder and then `hint` (what to do instead)."""
    with ExitStack() as stack:
        try:
            held = stack.enter_context(hold(file_lock_path(db), f"DuckDB store {db}"))
        except LockError as exc:
            raise LockError(f"{exc}; {hint}") from None
        yield held
