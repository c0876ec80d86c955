"""Filter stage: does this raw frame possibly concern a tracked account?

Runs on undecoded bytes. DAG-CBOR keeps strings as raw bytes, so every DID a frame mentions
(repo, like/repost subject, reply parent/root, quote, mention, follow subject) is visible as a
`did:plc:`/`did:web:` token. Canonical key order puts `ops` and `repo` before the CAR, so the
repo is read near the start and only the op records at the CAR's tail are scanned for DIDs,
not the MST nodes that make up most of a frame. Set lookups keep it O(1) in the tracked count.
A delete carries only a path: it is kept only when its repo has remembered paths.
With watch terms (streamer/names.py) a post create by anyone may name a tracked account: its
text is read raw from the record block (the `text` value sits just before the post's `$type`)
and matched here, so only posts that name an account are decoded; every other frame stays as
cheap as before. Any layout surprise falls back to scanning the whole frame (or, for a post,
to decoding it), never to a skip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from rbloom import Bloom

from streamer.frames import COMMIT_PREFIX
from streamer.names import NameMatcher
from streamer.rememberers import rememberers as new_rememberers

DID_TOKEN: Final = re.compile(rb"did:(?:plc:[a-z2-7]{24}|web:[A-Za-z0-9.\-%:]+)")
SKIP: Final = 0
DELETES_ONLY: Final = 1
MENTIONS: Final = 2

_DELETE: Final = b"\x66delete"  # CBOR text "delete": an op action
_REPO_KEY: Final = b"\x64repo\x78"  # CBOR text "repo", then a text of 24..255 bytes
_CID_KEY: Final = b"\x63cid\xd8\x2a\x58\x25\x00"  # "cid": tag 42, 37 bytes, multibase 0x00
_CID_LEN: Final = 36
_PATH_KEY_TEXT8: Final = b"\x64path\x78"  # "path", then a text of 24..255 bytes
_POST_TYPE: Final = b"\x65$type\x72app.bsky.feed.post"  # "$type": text(18) of a post
_POST: Final = b"app.bsky.feed.post"
_FOLLOW: Final = b"app.bsky.graph.follow"
_SUBJECT_COLLECTIONS: Final = frozenset({b"app.bsky.feed.like", b"app.bsky.feed.repost", _FOLLOW})
_SUBJECT_REF: Final = b"\x67subject\xa2\x63cid\x78"  # subject: {cid: text(24..255), uri: …}
_SUBJECT_REF_LEN: Final = len(_SUBJECT_REF)
_URI_AT: Final = b"\x63uri\x78"  # "uri", then a text of 24..255 bytes
_SUBJECT_TEXT8: Final = b"\x67subject\x78"  # a follow's subject: a DID text
_TEXT_KEY: Final = b"\x64text"  # "text": a post's text, the key before "$type" in canonical order
_TEXT_TRIES: Final = 3  # "dtext" inside the text itself: look a little further back, then decode
# The commonest frame, matched from byte 0 in its exact canonical layout (every length fixed,
# no other op, no key skipped): a relay #commit of one create of a like, repost, follow or post
# with a TID rkey, then rev (a TID), seq (uint64) and a did:plc repo. It yields the op's
# collection (behind its path's length byte) and the repo in one C call; `classify` then
# decides as its general path does with those values. (The general path finds the repo by its
# first `_REPO_KEY`: should the rkey, rev, CID or seq bytes spell one, it misreads the repo and
# scans the whole frame, where this path reads the true one.) Other layouts: the general path.
_ONE_CREATE: Final = re.compile(
    COMMIT_PREFIX
    + rb"\xac\x63ops\x81\xa3\x63cid\xd8\x2a\x58\x25\x00.{36}\x64path\x78"
    + rb"(\x20app\.bsky\.feed\.like|\x22app\.bsky\.feed\.repost|\x23app\.bsky\.graph\.follow"
    + rb"|\x20app\.bsky\.feed\.post)/[2-7a-z]{13}\x66action\x66create"
    + rb"\x63rev\x6d[2-7a-z]{13}\x63seq\x1b.{8}\x64repo\x78\x20(did:plc:[a-z2-7]{24})",
    re.DOTALL,  # `.`: any byte
).match
# a like's or repost's strong ref in its commonest layout (a 59-character CID, a did:plc AT
# URI): the subject `_subject_did` reads, from the same `_SUBJECT_REF` occurrence
_PLC_SUBJECT_REF: Final = re.compile(
    _SUBJECT_REF + rb"\x3b.{59}\x63uri\x78[\x26-\xff]at://(did:plc:[a-z2-7]{24})/", re.DOTALL
).match
_REPO_FROM_END: Final = 7 + 32  # `_ONE_CREATE`'s end minus the offset of its _REPO_KEY
_ONE_POST: Final = b"\x20" + _POST
_ONE_FOLLOW: Final = b"\x23" + _FOLLOW


def _post_text(frame: bytes, type_at: int) -> str | None:
    """The text of the post record whose `$type` starts at `type_at`, read from the raw bytes;
    None when the layout is not the expected one or the bytes are not UTF-8 (decode it)."""
    end = type_at
    for _ in range(_TEXT_TRIES):
        key = frame.rfind(_TEXT_KEY, 0, end)
        if key < 0:
            return None
        head, at = frame[key + 5], key + 6
        if 0x60 <= head < 0x78:
            length = head - 0x60
        elif head == 0x78:
            length, at = frame[at], at + 1
        elif head == 0x79:
            length, at = int.from_bytes(frame[at : at + 2]), at + 2
        else:
            length = -1
        if at + length == type_at:
            try:
                return frame[at:type_at].decode()
            except UnicodeDecodeError:
                return None
        end = key
    return None


def _subject_did(frame: bytes, collection: bytes) -> bytes | None:
    """The subject DID of the frame's one like/repost (strong ref) or follow (DID text), read
    from the ~100 bytes at the end of the frame; None when the layout is not the expected one."""
    if collection == _FOLLOW:
        ref = frame.rfind(_SUBJECT_TEXT8)
        did = frame[ref + 10 : ref + 10 + frame[ref + 9]] if ref > 0 else b""
        return did if did.startswith(b"did:") else None
    ref = frame.rfind(_SUBJECT_REF)
    if ref < 0:
        return None
    uri_at = ref + _SUBJECT_REF_LEN + 1 + frame[ref + _SUBJECT_REF_LEN]
    if not frame.startswith(_URI_AT, uri_at) or not frame.startswith(b"at://", uri_at + 6):
        return None
    end = frame.find(b"/", uri_at + 11, uri_at + 6 + frame[uri_at + 5])
    return frame[uri_at + 11 : end] if end > 0 else None


class FrameFilter:
    """Tracked DIDs, and repos with remembered paths, as bytes for the raw scan."""

    def __init__(
        self,
        tracked_dids: Iterable[str],
        rememberers: Iterable[str] = (),
        *,
        names: NameMatcher | None = None,
    ) -> None:
        self._tracked: set[bytes] = {did.encode() for did in tracked_dids}
        self._rememberers: Bloom = new_rememberers(rememberers)
        self._findall = DID_TOKEN.findall
        self._names = names if names else None

    def add(self, did: str) -> None:
        self._tracked.add(did.encode())

    def discard(self, did: str) -> None:
        self._tracked.discard(did.encode())

    def add_rememberer(self, did: str) -> None:
        """`did` made a like/repost/follow that concerns a tracked account: watch its deletes."""
        self._rememberers.add(did.encode())

    def set_rememberers(self, dids: Iterable[str]) -> None:
        """After expiry: only repos that still have remembered paths (fewer false positives)."""
        self._rememberers = new_rememberers(dids)

    def __len__(self) -> int:
        return len(self._tracked)

    def classify(self, frame: bytes) -> int:
        """SKIP when the frame cannot concern a tracked account, DELETES_ONLY when only a
        delete op could (no tracked DID in it), MENTIONS otherwise. Runs for every frame."""
        one = _ONE_CREATE(frame)
        if one is None:
            return self._classify_general(frame)
        collection, repo = one.groups()
        tracked = self._tracked
        if repo in tracked:
            return MENTIONS
        if collection == _ONE_POST:
            at = one.end() - _REPO_FROM_END
            start = frame.rfind(_POST_TYPE)
            if start > at and self._names is not None and self._names_post(frame, start):
                return MENTIONS
            if start <= at:
                return self._classify_whole(frame)
            if not tracked.isdisjoint(self._findall(frame, start)):
                return MENTIONS
        else:
            if collection == _ONE_FOLLOW:
                subject = _subject_did(frame, _FOLLOW)
            else:
                ref = _PLC_SUBJECT_REF(frame, frame.rfind(_SUBJECT_REF))
                subject = ref.group(1) if ref is not None else _subject_did(frame, b"")
            if subject is None:
                return self._classify_whole(frame)
            if subject in tracked:
                return MENTIONS
        if repo in self._rememberers and frame.find(_DELETE, 16, one.end() - _REPO_FROM_END) >= 0:
            return DELETES_ONLY
        return SKIP

    def _classify_general(self, frame: bytes) -> int:
        """`classify` for every frame `_ONE_CREATE` does not match."""
        if not frame.startswith(COMMIT_PREFIX):
            return MENTIONS  # identity/account/sync/info/error frames are small and rare
        find = frame.find
        at = find(_REPO_KEY, 16)
        repo = frame[at + 7 : at + 7 + frame[at + 6]] if at > 0 else b""
        if not repo.startswith(b"did:"):
            return self._classify_whole(frame)
        tracked = self._tracked
        if repo in tracked:
            return MENTIONS
        first = find(_CID_KEY, 16, at)
        if first < 0:
            start = len(frame)  # no record in this commit (deletes only)
        elif find(_CID_KEY, first + 45, at) < 0:
            # one record: a like, repost or follow is settled by its subject alone, a post by
            # the DIDs after its top-level $type, and any other collection yields no event
            slash = find(b"/", first + 52, at) if frame.startswith(_PATH_KEY_TEXT8, first + 45) else -1
            collection = frame[first + 52 : slash] if slash > 0 else None
            subject = _subject_did(frame, collection) if collection in _SUBJECT_COLLECTIONS else None
            if subject is not None:
                return MENTIONS if subject in tracked else self._deletes_only(frame, repo, at)
            if collection is not None and collection != _POST and collection not in _SUBJECT_COLLECTIONS:
                return self._deletes_only(frame, repo, at)
            # canonical key order puts every DID-bearing post field (reply, embed, facets)
            # after `$type`; nested `$type`s never name app.bsky.feed.post
            start = frame.rfind(_POST_TYPE) if collection == _POST else -1
            if start > at and self._names is not None and self._names_post(frame, start):
                return MENTIONS
        else:
            start = self._records_start(frame, at)
            if self._names is not None and self._names_posts(frame, at):
                return MENTIONS
        if start <= at:
            return self._classify_whole(frame)
        if not tracked.isdisjoint(self._findall(frame, start)):
            return MENTIONS
        return self._deletes_only(frame, repo, at)

    def _names_posts(self, frame: bytes, after: int) -> bool:
        """Several records: does any post among them (a thread, a post and its gate) name one?"""
        type_at = frame.find(_POST_TYPE, after)
        while type_at > 0:
            if self._names_post(frame, type_at):
                return True
            type_at = frame.find(_POST_TYPE, type_at + len(_POST_TYPE))
        return False

    def _names_post(self, frame: bytes, type_at: int) -> bool:
        """Does the post whose `$type` is at `type_at` name a tracked account (or is unreadable)?"""
        text = _post_text(frame, type_at)
        return text is None or bool(self._names and self._names.find(text))

    def _deletes_only(self, frame: bytes, repo: bytes, ops_end: int) -> int:
        """No tracked DID in the frame: only a delete by a repo with remembered paths counts."""
        if repo in self._rememberers and frame.find(_DELETE, 16, ops_end) >= 0:
            return DELETES_ONLY
        return SKIP

    def _records_start(self, frame: bytes, ops_end: int) -> int:  # several records
        """Offset of the first op record in the CAR, len(frame) if none, -1 if unsure."""
        start = len(frame)
        at = frame.find(_CID_KEY, 16, ops_end)
        while at >= 0:
            cid = frame[at + 9 : at + 9 + _CID_LEN]
            pos = frame.rfind(cid)
            # a CAR section is varint + CID (the byte before is a varint, never 0); a 0x00
            # before means the last copy is a link inside an MST node: be safe, scan all
            if pos <= ops_end or frame[pos - 1] == 0:
                return -1
            start = min(start, pos + _CID_LEN)
            at = frame.find(_CID_KEY, at + 9 + _CID_LEN, ops_end)
        return start

    def _classify_whole(self, frame: bytes) -> int:  # the safe, slower way
        if not self._tracked.isdisjoint(self._findall(frame)):
            return MENTIONS
        if self._names is not None and _POST_TYPE in frame:
            return MENTIONS
        return DELETES_ONLY if _DELETE in frame else SKIP
