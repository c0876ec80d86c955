"""Who applies which messages of a partition when it moves between aggregators.

Each aggregator of a consumer group writes its own DuckDB file, and a partition's messages
must land in exactly one of them. An aggregator commits a batch to Kafka *before* DuckDB
(the Kafka commit runs inside the DuckDB transaction, just before COMMIT): a member fenced
out by a rebalance has its commit refused and rolls the batch back, so the new owner, which
starts at the group's commit, never finds a batch already in another file. What is left is a
crash between the two commits: the group's commit is past the file's stored offset, and
those messages are in no file. The member that made that commit owes them, and only its file
can say so; the group's commit metadata says who it was.

Every offset commit carries the partition's recent *stints* in its metadata: (store id, start
offset) of each member that consumed it, oldest first, the committer's own stint last. When a
member sees a partition — on every assignment, for every partition its file holds a position
of — `settle` reads its debt there:

- its stint is the last: it made the group's commit, so [stored, committed) is its own (a crash
  between the commits, or nothing); holding the partition, it resumes at `stored` and consumes
  them; not holding it, it applies them itself (a read outside the group);
- a later stint exists: that member started at S, so [stored, S) is this file's to apply;
- no stint of this file in the history (metadata of another tool, or more handoffs than the
  history keeps): nothing can be proven; the old rule (resume at the later of the two offsets)
  is kept and the partition is counted as unverified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "bluepulse-stints/1 "
MAX_STINTS: Final = 24  # ~25 bytes each: well under the broker's 4 KiB metadata limit


@dataclass(frozen=True, slots=True)
class Stint:
    """A member's run on a partition: its store file's id and the offset it started at."""

    store: str
    start: int


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a member does about one partition it has a stored position for."""

    owed: tuple[int, int] | None  # [first, end) offsets it must apply into its own file
    resume: int | None  # where to consume from if it holds the partition (None: group commit)
    verified: bool  # False: the history cannot tell whether another file holds some messages


def render(stints: Sequence[Stint]) -> str:
    """The commit metadata for `stints` (the newest MAX_STINTS)."""
    return PREFIX + " ".join(f"{s.store}@{s.start}" for s in stints[-MAX_STINTS:])


def parse(metadata: str | None) -> list[Stint] | None:
    """The stints of a commit's metadata; None when it is not ours (empty, older versions)."""
    if not metadata or not metadata.startswith(PREFIX):
        return None
    stints = []
    for item in metadata[len(PREFIX) :].split():
        store, _, start = item.rpartition("@")
        if not store or not start.isdigit():
            return None
        stints.append(Stint(store, int(start)))
    return stints


def settle(
    store: str, stored: int | None, committed: int | None, stints: Sequence[Stint] | None, *, holds: bool
) -> Settlement:
    """This store's debt on a partition and where to resume it (see the module doc).

    The debt starts at the file's stored offset, or at its own last stint's start when that is
    later (what came before it was settled when that stint began) or when the file stored
    nothing (a crash before its first COMMIT on the partition)."""
    mine = [i for i, s in enumerate(stints or ()) if s.store == store]
    if stints is None or not mine:
        if stored is None or committed is None:  # never consumed it, or nobody committed
            return Settlement(None, committed if stored is None else stored, True)
        return Settlement(None, max(stored, committed), committed <= stored)
    last = mine[-1]
    own_start = stints[last].start
    base = own_start if stored is None else max(stored, own_start)
    if last == len(stints) - 1:  # this store made the group's commit
        if holds:
            return Settlement(None, base, True)
        end = committed if committed is not None else base
        return Settlement((base, end) if end > base else None, committed, True)
    successor = stints[last + 1].start
    # a successor that started before this file's end applied messages twice: impossible with
    # the Kafka-first commit, reported if files of older versions show it
    return Settlement((base, successor) if successor > base else None, committed, successor >= base)
