"""Write many firehose frames to a websocket in one transport write.

websockets' `send()` costs a few coroutine layers and one syscall per message;
at 100k+ frames/s that is the whole budget. Server-to-client frames are
unmasked and uncompressed here, so the framing is a fixed 2–10 byte header.
Only whole messages are written, so the library's own control frames
(pong, close) can never land inside one.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

_BINARY_FIN = 0x82
_TEXT_FIN = 0x81
_H16 = struct.Struct(">BBH")
_H64 = struct.Struct(">BBQ")


def frame_header(size: int, first: int = _BINARY_FIN) -> bytes:
    """RFC 6455 header of an unmasked, final, binary (or text: `first=0x81`) frame of `size` bytes."""
    if size < 126:
        return bytes((first, size))
    if size < 1 << 16:
        return _H16.pack(first, 126, size)
    return _H64.pack(first, 127, size)


async def send_many(ws: ServerConnection, messages: Sequence[bytes], *, text: bool = False) -> bool:
    """Send binary (or UTF-8 text) messages in order; False when the connection is no longer open."""
    if ws.protocol.state is not State.OPEN:
        return False
    first = _TEXT_FIN if text else _BINARY_FIN
    parts: list[bytes] = []
    for message in messages:
        parts.append(frame_header(len(message), first))
        parts.append(message)
    ws.transport.write(b"".join(parts))
    await ws.drain()  # flow control: waits while the transport buffer is over its limit
    return True
