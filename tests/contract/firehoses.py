"""The firehose sources the streamer can read, each with a server that stands in for it.

A `FirehoseUnderTest` serves events that concern a tracked account, can go down and come back
on the same address with its log intact, inject malformed input, and says which cursor each
connection asked for. `client()` is the source under test wired to the real Streamer with a
collecting publisher. The relay (subscribeRepos + the relay emulator) is the first; a Jetstream
source is the second class here (JetstreamFirehose) and the second fixture parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from relay.emulator import RelayEmulator
from relay.jetstream_emulator import JetstreamEmulator, JetstreamFaults
from relay.script import FrameScript
from schemas import Event
from tests.integration.harness import A, RunningStreamer, X
from transport.backoff import Backoff

SKIP_REASONS = frozenset({"bad_cbor", "bad_length", "bad_header", "bad_car", "bad_body"})
JETSTREAM_SKIP_REASONS = frozenset({"bad_json", "bad_utf8", "bad_body", "unknown_type"})


class Client(Protocol):
    """A running source + Streamer: what it published, skipped, where it stands."""

    @property
    def events(self) -> list[Event]: ...

    async def wait_events(self, count: int, timeout: float = 10.0) -> list[Event]: ...

    async def wait_connected(self, timeout: float = 10.0) -> None: ...

    async def wait_position(self, seq: int, timeout: float = 10.0) -> None: ...

    async def stop(self) -> None: ...


class FirehoseUnderTest(Protocol):
    name: str
    skip_reasons: frozenset[str]  # the closed set a malformed input is counted under

    async def start(self, *, drop_every: int | None = None, malformed_every: int | None = None) -> None: ...

    async def down(self) -> None:
        """Stop answering (connections closed, port closed); the log is kept."""

    async def up(self) -> None:
        """Answer again on the same address."""

    async def close(self) -> None: ...

    def publish(self, count: int) -> list[int]:
        """At least `count` events that concern a tracked account; returns their seqs."""

    def cursors(self) -> list[int | None]:
        """The cursor each connection asked for, in order."""

    def malformed_sent(self) -> int: ...

    def client(self, state_dir: Path, backoff: Backoff) -> Client: ...

    def reconnects(self, client: Client) -> int: ...

    def skipped(self, client: Client) -> dict[str, int]: ...

    def ignored(self, client: Client) -> int:
        """Inputs dropped unread because they cannot concern a tracked account."""

    def received(self, client: Client) -> int: ...


class RelayFirehose:
    """com.atproto.sync.subscribeRepos: RelaySource against the relay emulator."""

    name = "relay"
    skip_reasons = SKIP_REASONS

    def __init__(self) -> None:
        self.script = FrameScript()
        self.post = self.script.post(A, "x")
        self.relay = RelayEmulator()
        self._published = 0

    async def start(self, *, drop_every: int | None = None, malformed_every: int | None = None) -> None:
        self.relay = RelayEmulator(drop_every=drop_every, malformed_every=malformed_every)
        await self.relay.start()

    async def down(self) -> None:
        await self.relay.close()

    async def up(self) -> None:
        await self.relay.start()  # same port (set by the first start), same log

    async def close(self) -> None:
        await self.relay.close()

    def publish(self, count: int) -> list[int]:
        for _ in range(count):
            self.script.like(X, self.post)
        return self._flush()

    def _flush(self) -> list[int]:
        seqs = []
        for frame in self.script.frames[self._published :]:
            seqs.append(self.relay.publish(frame))
        self._published = len(self.script.frames)
        return seqs

    def cursors(self) -> list[int | None]:
        return [c.cursor for c in self.relay.connections]

    def malformed_sent(self) -> int:
        return sum(c.malformed_sent for c in self.relay.connections)

    def client(self, state_dir: Path, backoff: Backoff) -> RunningStreamer:
        client = RunningStreamer(self.relay.url, state_dir)
        client.source.backoff = backoff
        return client.start()

    def _streamer(self, client: Client) -> RunningStreamer:
        assert isinstance(client, RunningStreamer)
        return client

    def reconnects(self, client: Client) -> int:
        return self._streamer(client).source.reconnects

    def skipped(self, client: Client) -> dict[str, int]:
        return dict(self._streamer(client).streamer.stats.frames_skipped)

    def ignored(self, client: Client) -> int:
        stats = self._streamer(client).streamer.stats
        return stats.frames - stats.frames_candidate

    def received(self, client: Client) -> int:
        return self._streamer(client).streamer.stats.frames


class JetstreamFirehose(RelayFirehose):
    """network.bsky.jetstream.subscribeEvents (v2, dict-zstd): JetstreamSource against J1's
    emulator; its seqs are Jetstream's own (one per like), its cursor inclusive."""

    name = "jetstream"
    skip_reasons = JETSTREAM_SKIP_REASONS

    def __init__(self) -> None:
        super().__init__()
        self.jetstream = JetstreamEmulator()

    async def start(self, *, drop_every: int | None = None, malformed_every: int | None = None) -> None:
        faults = JetstreamFaults(drop_every=drop_every, malformed_every=malformed_every)
        self.jetstream = JetstreamEmulator(faults=faults)
        await self.jetstream.start()

    async def down(self) -> None:
        await self.jetstream.close()

    async def up(self) -> None:
        await self.jetstream.start()

    async def close(self) -> None:
        await self.jetstream.close()

    def _flush(self) -> list[int]:
        seqs = []
        for frame in self.script.frames[self._published :]:
            seqs.extend(self.jetstream.publish_relay_frame(frame))
        self._published = len(self.script.frames)
        return seqs

    def cursors(self) -> list[int | None]:
        found = []
        for c in self.jetstream.connections:
            cursor = c.params.get("cursor")
            found.append(int(cursor[0]) if cursor else None)
        return found

    def malformed_sent(self) -> int:
        return sum(
            1 for c in self.jetstream.connections for kind in c.injected if kind.startswith("malformed")
        )

    def client(self, state_dir: Path, backoff: Backoff) -> RunningStreamer:
        client = RunningStreamer(self.jetstream.url, state_dir, jetstream=True)
        client.source.backoff = backoff
        return client.start()

    def ignored(self, client: Client) -> int:
        stats = self._streamer(client).streamer.stats
        return stats.frames - stats.frames_candidate - stats.frames_replayed


FIREHOSES: dict[str, Callable[[], FirehoseUnderTest]] = {
    "relay": RelayFirehose,
    "jetstream": JetstreamFirehose,
}
