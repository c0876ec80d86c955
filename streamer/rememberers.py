"""Repos whose deletes may concern a tracked account, in a fixed-size Bloom filter.

Every frame the filter rejects still asks "could this repo's delete un-like, un-repost or
unfollow a tracked account?" — a set of every DID that ever engaged with one would grow with
each new engager (a live network brings new accounts all the time) until the remembered paths
expire. A Bloom filter answers in constant memory (~1.1 MiB for a million repos at 1 % false
positives); a false positive only sends one delete frame on to the decoder, where the
remembered path itself (SQLite, `StreamerState.recall`) decides, so no count can change.
Past `CAPACITY` repos the false positives grow, the memory does not; the expiry job rebuilds
the filter from the repos that still have paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from rbloom import Bloom

CAPACITY: Final = 1_000_000
FALSE_POSITIVE_RATE: Final = 0.01


def rememberers(dids: Iterable[str] = ()) -> Bloom:
    """A filter holding `dids` (as the bytes the raw scan slices out of frames)."""
    bloom = Bloom(CAPACITY, FALSE_POSITIVE_RATE)
    for did in dids:
        bloom.add(did.encode())
    return bloom
