"""Tracked accounts and the streamer's durable memory (remembered record paths, handles).

A delete op carries only `collection/rkey`, so the path → subject of every like, repost and
follow that concerned a tracked account is kept in SQLite. Entries are never removed when a
delete resolves them (a replay after a crash must resolve the same delete again); they expire
by age (`--remember-days`): a delete arriving after that is unresolvable. Writes are batched
and committed before the cursor moves past them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Final

from schemas.accounts import Account
from streamer.errors import StateError
from streamer.records import Memory

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS remembered (
  actor TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,
  target_did TEXT NOT NULL, subject_uri TEXT, seen_at INTEGER NOT NULL,
  PRIMARY KEY (actor, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS remembered_seen_at ON remembered (seen_at);
CREATE TABLE IF NOT EXISTS handles (did TEXT PRIMARY KEY, handle TEXT NOT NULL) WITHOUT ROWID;
"""


class StreamerState:
    """Remembered paths and handle overrides in `<state-dir>/streamer.sqlite3`."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # seen_at of new rows, and the expiry cutoff
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(state_dir / "streamer.sqlite3", isolation_level=None)
            self._db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + _SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"state directory {state_dir} is not usable: {exc}") from exc
        self._pending: dict[tuple[str, str], Memory] = {}
        self._handles: dict[str, str] = {}

    def remember(self, actor: str, path: str, memory: Memory) -> None:
        self._pending[(actor, path)] = memory

    def recall(self, actor: str, path: str) -> Memory | None:
        pending = self._pending.get((actor, path))
        if pending is not None:
            return pending
        row = self._db.execute(
            "SELECT kind, target_did, subject_uri FROM remembered WHERE actor=? AND path=?",
            (actor, path),
        ).fetchone()
        return Memory(*row) if row else None

    def rememberers(self) -> list[str]:
        """Repos with remembered paths: only their deletes can resolve to an event."""
        rows = self._db.execute("SELECT DISTINCT actor FROM remembered").fetchall()
        return [row[0] for row in rows] + [actor for actor, _ in self._pending]

    def set_handle(self, did: str, handle: str) -> None:
        self._handles[did] = handle

    def handles(self) -> dict[str, str]:
        rows = self._db.execute("SELECT did, handle FROM handles").fetchall()
        return {**dict(rows), **self._handles}

    def commit(self) -> None:
        """Make pending memory durable (called before the cursor is saved)."""
        if not self._pending and not self._handles:
            return
        now = int(self._clock())
        rows = [(a, p, m.kind, m.target_did, m.subject_uri, now) for (a, p), m in self._pending.items()]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO remembered VALUES (?,?,?,?,?,?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO handles VALUES (?,?)", self._handles.items())
        self._pending.clear()
        self._handles.clear()

    def expire(self, max_age_days: float) -> int:
        """Delete remembered paths first seen more than `max_age_days` ago; returns how many."""
        cutoff = int(self._clock() - max_age_days * 86400)
        with self._db:
            self._db.execute("BEGIN")
            return self._db.execute("DELETE FROM remembered WHERE seen_at < ?", (cutoff,)).rowcount

    def remembered_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM remembered").fetchone()[0]) + len(self._pending)

    def close(self) -> None:
        self.commit()
        self._db.close()


class TrackedAccounts:
    """The registry's view of tracked accounts, with handles updated from #identity frames."""

    def __init__(self, accounts: Iterable[Account], handles: dict[str, str] | None = None) -> None:
        self._by_did = {a.did: a for a in accounts}
        for did, handle in (handles or {}).items():
            if did in self._by_did:
                self._by_did[did] = replace(self._by_did[did], handle=handle)

    def __contains__(self, did: object) -> bool:
        return did in self._by_did

    def __len__(self) -> int:
        return len(self._by_did)

    def dids(self) -> list[str]:
        return list(self._by_did)

    def get(self, did: str) -> Account | None:
        return self._by_did.get(did)

    def accounts(self) -> list[Account]:
        return list(self._by_did.values())

    def update_handle(self, did: str, handle: str) -> bool:
        account = self._by_did.get(did)
        if account is None or account.handle == handle:
            return False
        self._by_did[did] = replace(account, handle=handle)
        return True
