"""Serve and play captures through the relay emulator (tests, benches, `bluepulse relay`).

Seqs must keep increasing across loops, as a relay's do: a frame whose seq is
not above the newest published one is re-sequenced (CAR bytes untouched).
Without a rate, publishing waits for the slowest subscriber instead of
overrunning retention, so a bench measures the consumer, not a drop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from relay.capture import SeqTemplate, frame_seq, read_frames
from relay.emulator import DEFAULT_RETENTION, PATH, RelayEmulator
from relay.errors import CaptureError

__all__ = ["DEFAULT_RETENTION", "PATH", "RelayEmulator", "pace", "play", "serve_capture"]

log = logging.getLogger(__name__)

_STEP = 256  # frames published between yields to the event loop


class _Window:
    """The capture with each frame's seq and a lazily built seq template."""

    def __init__(self, frames: Sequence[bytes]) -> None:
        self.frames = list(frames)
        self.seqs = [frame_seq(frame) for frame in self.frames]
        self._templates: list[SeqTemplate | None] | None = None

    def template(self, i: int) -> SeqTemplate | None:
        if self._templates is None:
            self._templates = [
                SeqTemplate(f) if s is not None else None for f, s in zip(self.frames, self.seqs, strict=True)
            ]
        return self._templates[i]


def _publish_one(emulator: RelayEmulator, window: _Window, i: int) -> None:
    seq = window.seqs[i]
    if seq is None:
        emulator.publish_raw(window.frames[i])
        return
    last = emulator.last_seq
    if last is None or seq > last:
        emulator.publish(window.frames[i], seq)
        return
    template = window.template(i)
    assert template is not None
    emulator.publish(template.render(last + 1), last + 1)


async def play(
    emulator: RelayEmulator,
    frames: Sequence[bytes],
    *,
    rate: float | None = None,
    loop: bool = False,
    count: int | None = None,
    max_lag: int = 10_000,
    wait_for_client: bool = False,
) -> int:
    """Publish `frames` in order (again and again with `loop`); returns how many were published.

    rate: frames per second; None = as fast as the slowest open subscriber
    keeps within `max_lag` frames. count: stop after that many (a looped bench
    of exactly N frames). wait_for_client: pause while nobody is connected (a
    looping relay with no audience would only burn CPU).
    """
    window = _Window(frames)
    return await pace(
        emulator,
        len(window.frames),
        lambda i: _publish_one(emulator, window, i),
        rate=rate,
        loop=loop,
        count=count,
        max_lag=max_lag,
        wait_for_client=wait_for_client,
    )


class Audience(Protocol):
    """What pacing needs of an emulator (the relay's and the Jetstream one)."""

    async def wait_for_audience(self) -> None: ...
    async def wait_lag_at_most(self, frames: int) -> None: ...


async def pace(
    emulator: Audience,
    size: int,
    publish: Callable[[int], object],
    *,
    rate: float | None = None,
    loop: bool = False,
    count: int | None = None,
    max_lag: int = 10_000,
    wait_for_client: bool = False,
) -> int:
    """Call `publish(i % size)` for i = 0, 1, … with `play`'s pacing; returns how many calls."""
    pacer = _Pacer(emulator, rate, max_lag, wait_for_client)
    total = count if count is not None else (None if loop else size)
    published = 0
    while size and (total is None or published < total):
        if published % pacer.step == 0:
            await pacer.wait(published)
        publish(published % size)
        published += 1
    return published


class _Pacer:
    """Decides when the next step of frames may go: rate, backpressure, audience."""

    def __init__(self, emulator: Audience, rate: float | None, max_lag: int, wait_for_client: bool) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.emulator, self.rate, self.max_lag = emulator, rate, max_lag
        self.wait_for_client = wait_for_client
        self.step = _STEP if rate is None else max(1, min(_STEP, int(rate // 100)))
        self._started: float | None = None

    async def wait(self, published: int) -> None:
        if self.wait_for_client:
            await self.emulator.wait_for_audience()
        clock = asyncio.get_running_loop()
        if self._started is None:
            self._started = clock.time()
        if self.rate is None:
            await self.emulator.wait_lag_at_most(self.max_lag)
            await asyncio.sleep(0)  # let the senders run even when nobody lags
            return
        delay = self._started + published / self.rate - clock.time()
        await asyncio.sleep(max(0.0, delay))


async def serve_capture(
    capture_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    rate: float | None = None,
    loop: bool = False,
    drop_every: int | None = None,
    stall_after: int | None = None,
    malformed_every: int | None = None,
    preload: bool = False,
    retention: int = DEFAULT_RETENTION,
    on_ready: Callable[[RelayEmulator], None] | None = None,
) -> None:
    """Serve a capture file until cancelled.

    preload: every capture frame is in the log before the first client, so
    `cursor=0` gets them at once; otherwise playing starts with the first
    client (a cursor-less client is served live and would miss earlier frames).
    """
    frames = read_frames(capture_path)
    if not frames:
        raise CaptureError(f"{capture_path}: empty capture, no frames to serve")
    emulator = RelayEmulator(
        host,
        port,
        retention=max(retention, len(frames)) if preload else retention,
        drop_every=drop_every,
        stall_after=stall_after,
        malformed_every=malformed_every,
    )
    async with emulator:
        if preload:
            window = _Window(frames)
            for i in range(len(window.frames)):
                _publish_one(emulator, window, i)
        log.info(
            "relay emulator listening url=%s frames=%d preload=%s loop=%s rate=%s",
            emulator.subscribe_url,
            len(frames),
            preload,
            loop,
            rate,
        )
        if on_ready is not None:
            on_ready(emulator)
        if loop or not preload:
            await play(emulator, frames, rate=rate, loop=loop, wait_for_client=True)
        await asyncio.Event().wait()  # serve what is logged until cancelled
