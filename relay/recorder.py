"""Record a relay's firehose into a capture file, byte for byte (`bluepulse record`).

Frames are written exactly as received, so a recording replays through the
emulator and decodes like the fixture. The file stays valid on cancel: the
writer is closed (zstd frame ended) whatever stops the recording.
"""

from __future__ import annotations

import logging
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from relay.capture import CaptureWriter
from relay.emulator import PATH

log = logging.getLogger(__name__)

_FLUSH_EVERY = 1000


def subscribe_url(relay_url: str, cursor: int | None = None) -> str:
    """`{relay}/xrpc/com.atproto.sync.subscribeRepos[?cursor=N]`; http(s) becomes ws(s)."""
    url = relay_url.rstrip("/")
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if url.startswith(plain):
            url = secure + url[len(plain) :]
    if not url.endswith(PATH):
        url += PATH
    return url if cursor is None else f"{url}?cursor={cursor}"


async def record(
    relay_url: str,
    out_path: str | Path,
    *,
    cursor: int | None = None,
    limit: int | None = None,
) -> int:
    """Append frames to `out_path` until `limit` frames, the relay closes, or cancel.

    Returns the number of frames written. Text messages are not firehose
    frames and are skipped (counted in the log line).
    """
    url = subscribe_url(relay_url, cursor)
    skipped = 0
    if limit is not None and limit <= 0:
        return 0
    # connect first: an unreachable relay leaves no empty capture file behind
    async with connect(url, max_size=None, compression=None) as ws:
        with CaptureWriter(out_path) as writer:
            try:
                log.info("recording url=%s out=%s", url, out_path)
                async for message in ws:
                    if isinstance(message, str):
                        skipped += 1
                        continue
                    writer.write(message)
                    if writer.count % _FLUSH_EVERY == 0:
                        writer.flush()
                    if limit is not None and writer.count >= limit:
                        break
            except ConnectionClosed as exc:
                log.warning("relay closed the recording url=%s reason=%s", url, exc)
            log.info("recorded frames=%d skipped_text=%d out=%s", writer.count, skipped, out_path)
            return writer.count
