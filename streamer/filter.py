"""Filter stage: does this raw frame possibly concern a tracked account?

Runs on undecoded bytes. DAG-CBOR keeps strings as raw bytes, so every DID a frame mentions
(repo, like/repost subject, reply parent/root, quote, mention, follow subject) is visible as a
`did:plc:`/`did:web:` token. One regex pass plus set lookups: O(1) in the tracked count.
A delete carries only a path, so any frame holding a delete op is kept for the remembered-path
lookup in the records stage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from streamer.frames import COMMIT_PREFIX

DID_TOKEN: Final = re.compile(rb"did:(?:plc:[a-z2-7]{24}|web:[A-Za-z0-9.\-%:]+)")
_DELETE_TOKEN: Final = b"\x66delete"  # CBOR text "delete": an op action
SKIP: Final = 0
DELETES_ONLY: Final = 1
MENTIONS: Final = 2


class FrameFilter:
    """Keeps the tracked DIDs as bytes for the raw scan."""

    def __init__(self, tracked_dids: Iterable[str]) -> None:
        self._tracked: set[bytes] = {did.encode() for did in tracked_dids}
        self._findall = DID_TOKEN.findall

    def add(self, did: str) -> None:
        self._tracked.add(did.encode())

    def discard(self, did: str) -> None:
        self._tracked.discard(did.encode())

    def __len__(self) -> int:
        return len(self._tracked)

    def classify(self, frame: bytes) -> int:
        """SKIP when the frame cannot concern a tracked account, DELETES_ONLY when only a
        delete op could (no tracked DID in it), MENTIONS otherwise."""
        if not frame.startswith(COMMIT_PREFIX):
            return MENTIONS  # identity/account/sync/info/error frames are small and rare
        if not self._tracked.isdisjoint(self._findall(frame)):
            return MENTIONS
        return DELETES_ONLY if _DELETE_TOKEN in frame else SKIP
