"""Cursor store: the firehose seq up to which every event is durable downstream.

Written with temp file + fsync + rename, so a crash leaves the old or the new value, never a
torn one. A cursor file that exists but cannot be read stops the program (our own state).
"""

from __future__ import annotations

import os
from pathlib import Path

from streamer.errors import StateError


class CursorStore:
    def __init__(self, state_dir: Path, name: str = "cursor") -> None:
        self._path = state_dir / name
        self._tmp = state_dir / f".{name}.tmp"

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> int | None:
        try:
            text = self._path.read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read cursor file {self._path}: {exc.strerror}") from exc
        if not text.isdigit():
            raise StateError(
                f"cursor file {self._path} holds {text[:40]!r}, not a seq number; "
                "fix or delete it (deleting it resumes from the live tip, losing the gap)"
            )
        return int(text)

    def save(self, seq: int) -> None:
        with open(self._tmp, "w") as handle:
            handle.write(f"{seq}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(self._tmp, self._path)

    def check_writable(self) -> None:
        """Fail at start, not at the first save, when the state directory is read-only."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            probe = self._path.parent / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise StateError(f"state directory {self._path.parent} is not writable: {exc.strerror}") from exc
