"""Capture files: raw relay frames as `[u32 little-endian length][frame]`, zstd if `.zst`.

The format is the fixture's, so recordings and fixtures are interchangeable.
Reading streams (no size guesses, multi-frame zstd as written by appends); a
truncated record is our own broken state and fails loudly, and a file that is not a
capture at all (checked on its first frame) is called that. Seq rewriting keeps
the CAR bytes byte-identical: only the body's `seq` value changes.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import cbor2
import zstandard

from relay.errors import CaptureError

_LEN = struct.Struct("<I")
_CHUNK = 1 << 20
_SENTINEL = 0xFEEDFACECAFEBEEF  # 9-byte CBOR uint, never a real seq
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_FRAME_BYTES = 64 << 20  # far above any relay frame; a larger length means the file is not a capture


def _is_zst(path: str | Path) -> bool:
    return str(path).endswith(".zst")


def iter_frames(path: str | Path) -> Iterator[bytes]:
    """Yield each frame of a capture file, streaming.

    The first frame is checked before anything is yielded, so a file that is not a capture (a
    CSV, a JSONL of events, random bytes) is named as such instead of as a truncated frame.
    """
    with open(path, "rb") as raw:
        stream = _open_stream(path, raw)
        try:
            yield from _split(path, stream)
        except zstandard.ZstdError as exc:
            raise CaptureError(f"{path}: corrupt zstd data: {exc}") from exc


def _open_stream(path: str | Path, raw: IO[bytes]) -> IO[bytes]:
    """The file's frames stream, decompressed when it starts with the zstd magic."""
    head = raw.read(len(_ZSTD_MAGIC))
    raw.seek(0)
    if head == _ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    if head and _is_zst(path):
        raise CaptureError(f"{path}: not a capture file: named .zst but not zstd-compressed")
    return raw


def _split(path: str | Path, stream: IO[bytes]) -> Iterator[bytes]:
    buffer = b""
    pos = 0
    count = 0
    while True:
        chunk = stream.read(_CHUNK)
        if chunk:
            buffer = buffer[pos:] + chunk
            pos = 0
        while len(buffer) - pos >= 4:
            (size,) = _LEN.unpack_from(buffer, pos)
            if size > MAX_FRAME_BYTES:
                raise CaptureError(_not_a_capture(path, count, f"a frame length of {size} bytes"))
            end = pos + 4 + size
            if end > len(buffer):
                break
            frame = buffer[pos + 4 : end]
            if count == 0 and not looks_like_frame(frame):
                raise CaptureError(
                    _not_a_capture(path, 0, "a first frame that is not a DAG-CBOR frame header")
                )
            yield frame
            count += 1
            pos = end
        if not chunk:
            if pos != len(buffer):
                if count == 0:
                    raise CaptureError(_not_a_capture(path, 0, "no complete frame"))
                raise CaptureError(
                    f"{path}: truncated frame at the end of the capture (after {count} frames)"
                )
            return


def _not_a_capture(path: str | Path, count: int, found: str) -> str:
    if count:
        return f"{path}: corrupt capture: frame {count + 1} has {found}"
    return (
        f"{path}: not a capture file: found {found} "
        "(a capture is [u32 little-endian length][DAG-CBOR frame] records, zstd-compressed if .zst)"
    )


def looks_like_frame(frame: bytes) -> bool:
    """A relay frame starts with a small CBOR map header holding `op` (1 or -1)."""
    if not frame or frame[0] & 0xE0 != 0xA0:  # CBOR major type 5: a map
        return False
    try:
        header = cbor2.load(io.BytesIO(frame))
    except (ValueError, EOFError, RecursionError, TypeError, LookupError):
        return False
    return isinstance(header, dict) and header.get("op") in (1, -1)


def read_frames(path: str | Path) -> list[bytes]:
    """All frames of a capture file."""
    return list(iter_frames(path))


class CaptureWriter:
    """Appends frames to a capture file; a `.zst` append adds a new zstd frame."""

    def __init__(self, path: str | Path, *, append: bool = True) -> None:
        self.path = Path(path)
        self.count = 0
        self._file = open(self.path, "ab" if append else "wb")  # noqa: SIM115
        self._out: IO[bytes] = self._file
        self._zst: Any = None
        if _is_zst(path):
            self._zst = zstandard.ZstdCompressor().stream_writer(self._file, closefd=False)
            self._out = self._zst

    def write(self, frame: bytes) -> None:
        """Append one frame byte for byte."""
        self._out.write(_LEN.pack(len(frame)))
        self._out.write(frame)
        self.count += 1

    def flush(self) -> None:
        """Push buffered bytes to the OS (a zstd block boundary, still one frame)."""
        if self._zst is not None:
            self._zst.flush(zstandard.FLUSH_BLOCK)
        self._file.flush()

    def close(self) -> None:
        """End the zstd frame and close the file."""
        if self._zst is not None:
            self._zst.close()
            self._zst = None
        self._file.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_frames(path: str | Path, frames: Iterable[bytes]) -> int:
    """Write (replace) a capture file; returns the number of frames."""
    with CaptureWriter(path, append=False) as writer:
        for frame in frames:
            writer.write(frame)
        return writer.count


def _decode(frame: bytes) -> tuple[Any, Any, int]:
    """Header, body and the body's start offset, links kept as tag 42."""
    stream = io.BytesIO(frame)
    header = cbor2.load(stream)
    start = stream.tell()
    body = cbor2.load(stream)
    return header, body, start


def frame_seq(frame: bytes) -> int | None:
    """The body's `seq`, or None (info/error frames, undecodable bytes)."""
    try:
        _, body, _ = _decode(frame)
    except (cbor2.CBORDecodeError, ValueError, EOFError):
        return None
    seq = body.get("seq") if isinstance(body, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


class SeqTemplate:
    """A frame split around its seq value, so new seqs cost a bytes join.

    DAG-CBOR orders map keys by the keys alone, so the seq value can change
    width without moving anything but the bytes after it.
    """

    __slots__ = ("prefix", "seq", "suffix")

    def __init__(self, frame: bytes) -> None:
        header, body, _ = _decode(frame)
        if not isinstance(body, dict) or not isinstance(body.get("seq"), int):
            raise ValueError("frame has no integer body seq")
        self.seq: int = body["seq"]
        body["seq"] = _SENTINEL
        encoded = cbor2.dumps(header, canonical=True) + cbor2.dumps(body, canonical=True)
        marker = b"\x63seq" + cbor2.dumps(_SENTINEL)
        at = encoded.rindex(marker) + 4
        self.prefix = encoded[:at]
        self.suffix = encoded[at + len(marker) - 4 :]

    def render(self, seq: int) -> bytes:
        """The frame with `seq` as its body seq."""
        return self.prefix + cbor2.dumps(seq) + self.suffix


def rewrite_seq(frame: bytes, seq: int) -> bytes:
    """Return the frame with body `seq` replaced; everything else byte-identical."""
    return SeqTemplate(frame).render(seq)


def looped(frames: Sequence[bytes], count: int, first_seq: int) -> list[bytes]:
    """`count` frames cycling the window with consecutive seqs from `first_seq`."""
    templates = [SeqTemplate(frame) for frame in frames]
    if not templates:
        raise ValueError("cannot loop an empty window")
    return list(iter_looped(templates, count, first_seq))


def iter_looped(templates: Sequence[SeqTemplate], count: int, first_seq: int) -> Iterator[bytes]:
    """Lazy form of `looped` over precomputed templates."""
    size = len(templates)
    for i in range(count):
        t = templates[i % size]
        seq = first_seq + i
        yield t.prefix + _uint(seq) + t.suffix


def _uint(n: int) -> bytes:
    """CBOR unsigned int (major type 0), the hot path of `iter_looped`."""
    if n < 24:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x18, n))
    if n < 0x10000:
        return b"\x19" + n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\x1a" + n.to_bytes(4, "big")
    return b"\x1b" + n.to_bytes(8, "big")
