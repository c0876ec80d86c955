"""`bluepulse relay` and `bluepulse record`: the relay wire protocol's two tools.

`relay` serves a capture file as a relay would (cursor replay, faults) for tests and demos;
`record` writes a live firehose into that capture format.
"""

from __future__ import annotations

import logging
from pathlib import Path

from websockets.exceptions import InvalidHandshake, InvalidURI

from bluepulse.config import RecordConfig, RelayConfig
from bluepulse.errors import CommandError, CommandFailedError, listen_error
from relay.errors import CaptureError
from relay.recorder import record
from relay.server import serve_capture

log = logging.getLogger(__name__)


async def main_relay(config: RelayConfig) -> int:
    capture = capture_file(config.capture, "relay")
    try:
        await serve_capture(
            capture,
            host=config.host,
            port=config.port,
            rate=config.rate,
            loop=config.loop,
            drop_every=config.drop_every,
            stall_after=config.stall_after,
            malformed_every=config.malformed_every,
        )
    except CaptureError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        if exc.filename is not None:  # reading the capture, not binding
            raise CommandError(f"--capture {capture}: {exc.strerror or exc}") from exc
        raise listen_error(exc, ("--host", config.host), ("--port", config.port)) from exc
    return 0


def capture_file(path: Path | None, command: str) -> Path:
    """`--capture` as a readable file, or the CommandError that says what is wrong with it."""
    if path is None:
        raise CommandError(
            f"bluepulse {command} needs --capture FILE (a capture written by `bluepulse record`)"
        )
    if path.is_dir():
        raise CommandError(f"--capture {path}: is a directory, not a capture file")
    if not path.exists():
        raise CommandError(f"--capture {path}: no such file")
    return path


async def main_record(config: RecordConfig) -> int:
    """`bluepulse record`: frames from `--relay` into `--out` until `--limit`, the relay's end or Ctrl-C."""
    if config.out is None:
        raise CommandError("bluepulse record needs --out FILE")
    if config.out.is_dir():
        raise CommandError(f"--out {config.out}: is a directory")
    try:
        count = await record(config.relay, config.out, cursor=config.cursor, limit=config.limit)
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        if isinstance(exc, OSError) and exc.filename is not None:
            raise CommandError(f"--out {config.out}: {exc.strerror or exc}") from exc
        refused = isinstance(exc, ConnectionRefusedError)
        reason = "connection refused" if refused else str(exc) or type(exc).__name__
        raise CommandFailedError(f"cannot record from relay {config.relay}: {reason}") from exc
    log.info("recorded frames=%s file=%s", count, config.out)
    return 0
