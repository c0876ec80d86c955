"""Cursor store: per source, the firehose seq up to which every event is durable downstream.

Written with temp file + fsync + rename, so a crash leaves the old or the new value, never a
torn one. A cursor file that exists but cannot be read stops the program (our own state).
Positions of different sources are different number spaces (a relay seq, a Jetstream v2 seq, a
v1 time_us), so each source has its own file: `cursor` for the relay (as before issue 13),
`cursor.<slug>` for the others, and beside each `<file>.time` the firehose time (unix µs) of
the position, which is what lets a switch of source start near where the other one stood.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from streamer.errors import StateError

log = logging.getLogger(__name__)

RELAY: Final = "relay"
V1: Final = "jetstream1"  # v1 cursors are time_us: global, any v1 instance reads them
V2_PREFIX: Final = "jetstream2@"  # v2 seqs are instance-local: the host is part of the id
SWITCH_MARGIN_US: Final = 10_000_000  # start a new source 10 s before the old one stood


def is_v1(url: str) -> bool:
    """A Jetstream URL whose path ends in /subscribe speaks v1; anything else v2."""
    return urlsplit(url).path.rstrip("/").endswith("/subscribe")


def source_id(jetstream_url: str | None) -> str:
    """`relay` (no Jetstream URL), `jetstream1`, or `jetstream2@host[:port]`."""
    if jetstream_url is None:
        return RELAY
    if is_v1(jetstream_url):
        return V1
    return V2_PREFIX + (urlsplit(jetstream_url).netloc.rsplit("@", 1)[-1] or "localhost")


def cursor_name(source: str) -> str:
    """The cursor file of a source: `cursor` for the relay, `cursor.<slug>` otherwise."""
    return "cursor" if source == RELAY else "cursor." + re.sub(r"[^A-Za-z0-9.-]", "_", source)


class CursorStore:
    def __init__(self, state_dir: Path, name: str = "cursor") -> None:
        self._path = state_dir / name
        self._tmp = state_dir / f".{name}.tmp"
        self._time = state_dir / f"{name}.time"
        self._time_tmp = state_dir / f".{name}.time.tmp"

    @classmethod
    def for_source(cls, state_dir: Path, source: str) -> CursorStore:
        return cls(state_dir, cursor_name(source))

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

    def load_time(self) -> int | None:
        """Firehose time (unix µs) of the saved position; None if unknown (advisory only)."""
        try:
            text = self._time.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def save(self, seq: int, time_us: int | None = None) -> None:
        """The position (and its firehose time): the time first, it only guides a switch."""
        if time_us is not None:
            _write(self._time_tmp, self._time, time_us)
        _write(self._tmp, self._path, seq)

    def check_writable(self) -> None:
        """Fail at start, not at the first save, when the state directory is read-only."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            probe = self._path.parent / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise StateError(f"state directory {self._path.parent} is not writable: {exc.strerror}") from exc


def _write(tmp: Path, path: Path, value: int) -> None:
    with open(tmp, "w") as handle:
        handle.write(f"{value}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def start_cursor(state_dir: Path, source: str) -> int | None:
    """Where `source` starts when it has no saved cursor of its own (design §4): Jetstream
    (v2 or v1) at the latest time another source reached minus 10 s (v2 reads a cursor
    ≥ 10^15 as unix µs; the overlap is dropped downstream by identity); the relay has no time
    cursor, so the live tip, with a WARNING naming the gap. None: the live tip."""
    if CursorStore.for_source(state_dir, source).load() is not None:
        return None  # its own position wins
    latest: tuple[int, str] | None = None
    for path in state_dir.glob("cursor*.time"):
        name = path.name.removesuffix(".time")
        time_us = CursorStore(state_dir, name).load_time()
        if time_us is not None and name != cursor_name(source) and (latest is None or time_us > latest[0]):
            latest = (time_us, name)
    if latest is None:
        return None
    time_us, name = latest
    if source == RELAY:
        log.warning(
            "no relay cursor: starting at the live tip; events since %s (where %s stood) are not read",
            _iso(time_us),
            name,
        )
        return None
    log.info("no cursor for %s: starting at %s (where %s stood) minus 10 s", source, _iso(time_us), name)
    return time_us - SWITCH_MARGIN_US


def _iso(time_us: int) -> str:
    return datetime.fromtimestamp(time_us / 1e6, UTC).isoformat(timespec="seconds")
