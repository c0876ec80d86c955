"""`bluepulse jetstream`: serve a relay capture file as a Jetstream would (v2 and v1 wires).

The capture's frames are converted as production Jetstream converts them and played (paced like
`bluepulse relay`: with a rate, or as fast as the slowest client, starting with the first
client); `--loop` keeps publishing, forgetting the oldest events past a fixed retention.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Final

from bluepulse.config import JetstreamEmulatorConfig
from bluepulse.errors import CommandError, listen_error
from bluepulse.relay_app import capture_file
from relay.capture import read_frames
from relay.errors import CaptureError
from relay.jetstream_convert import convert_frame
from relay.jetstream_emulator import JetstreamEmulator, JetstreamFaults
from relay.jetstream_wire import V1_PATH, V2_PATH
from relay.server import pace

log = logging.getLogger(__name__)

RETENTION: Final = 1_000_000  # events kept while looping (older seqs: CursorTooOld)


async def main(config: JetstreamEmulatorConfig) -> int:
    capture = capture_file(config.capture, "jetstream")
    try:
        await serve_capture(capture, config)
    except CaptureError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        if exc.filename is not None:  # reading the capture, not binding
            raise CommandError(f"--capture {capture}: {exc.strerror or exc}") from exc
        raise listen_error(exc, ("--host", config.host), ("--port", config.port)) from exc
    return 0


async def serve_capture(capture: Path, config: JetstreamEmulatorConfig) -> None:
    """Serve until cancelled."""
    frames = read_frames(capture)
    if not frames:
        raise CaptureError(f"{capture}: empty capture, no frames to serve")
    converted = [convert_frame(frame) for frame in frames]
    faults = JetstreamFaults(config.drop_every, config.stall_after, config.malformed_every)
    emulator = JetstreamEmulator(config.host, config.port, floor=config.floor, faults=faults)

    def publish(i: int) -> None:
        seqs = emulator.publish_converted(converted[i])
        if seqs and seqs[-1] > RETENTION and seqs[-1] % 1024 == 0:
            emulator.set_floor(max(config.floor or 1, seqs[-1] - RETENTION + 1))

    async with emulator:
        log.info(
            "jetstream emulator listening v2=%s v1=%s frames=%d events=%d loop=%s rate=%s floor=%s",
            emulator.url + V2_PATH,
            emulator.url + V1_PATH,
            len(frames),
            sum(map(len, converted)),
            config.loop,
            config.rate,
            config.floor,
        )
        await pace(
            emulator, len(converted), publish, rate=config.rate, loop=config.loop, wait_for_client=True
        )
        await asyncio.Event().wait()  # serve what is logged until cancelled
