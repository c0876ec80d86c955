"""Decode stage guard: bound a DAG-CBOR item's shape before libipld builds any object.

libipld recurses per nesting level (a record nested ~200 000 deep raises RecursionError). This
walk is iterative and builds no objects: it reads each item header, checks every length claim
against the bytes left, caps nesting depth and the number of items, and skips byte and text
strings by their length (a frame's CAR is one byte string, so checking an envelope costs a few
dozen header reads).
"""

from __future__ import annotations

from typing import Final

from streamer.errors import BoundsError, FrameReason

# The real window nests at most 3 levels in an envelope and 5 in a record (post → embed →
# recordWithMedia → media → images → image); lexicons are shallow, 32 leaves ample room.
MAX_DEPTH: Final = 32
# A post with 3000 graphemes and every facet stays in the hundreds; 50 000 bounds the CPU a
# single hostile item can cost this walk (~10 ms) whatever the frame size.
MAX_ITEMS: Final = 50_000

_CID_TAG: Final = 42
# per head byte: > 0 the size of an item that needs no more reading, else one of these
_SLOW: Final = 0
_STRING8: Final = -1  # a byte or text string with a one-byte length
_SMALL: Final = -2  # an array or map of fewer than 24 entries
_TAG8: Final = -3  # a tag with a one-byte number (42 is the only one allowed)


def _actions() -> tuple[list[int], list[int]]:
    """Per head byte: its action, and the items a small container owes."""
    action, owes = [_SLOW] * 256, [0] * 256
    for n in range(24):
        action[n] = action[0x20 + n] = 1  # small unsigned and negative integers
        action[0x40 + n] = action[0x60 + n] = 1 + n  # short byte and text strings
        action[0x80 + n] = action[0xA0 + n] = _SMALL if n else 1
        owes[0x80 + n], owes[0xA0 + n] = n, 2 * n
    for size in range(4):  # integers with a 1, 2, 4 or 8-byte argument
        action[0x18 + size] = action[0x38 + size] = 1 + (1 << size)
    for head in (0xF4, 0xF5, 0xF6):  # false, true, null
        action[head] = 1
    action[0xFB] = 9  # a 64-bit float
    action[0x58] = action[0x78] = _STRING8
    action[0xD8] = _TAG8
    return action, owes


_ACTION, _OWES = _actions()


def check(
    data: bytes, pos: int = 0, *, count: int = 1, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS
) -> int:
    """Walk `count` consecutive items from `pos`; return the offset just after them.

    Raises BoundsError: `bad_length` (a length or count claims more bytes than remain, or the
    data ends mid-item), `too_deep`, `too_many_items`, `bad_cbor` (a header DAG-CBOR forbids).
    """
    end = len(data)
    action, owes = _ACTION, _OWES
    stack: list[int] = []  # items still owed by each enclosing container
    todo = count  # items still owed at the current level
    items = count
    try:
        while True:
            if not todo:
                if not stack:
                    break
                todo = stack.pop()
                continue
            head = data[pos]  # IndexError past the end
            act = action[head]
            todo -= 1
            if act > 0:
                pos += act
                continue
            if act == _STRING8:
                pos += 2 + data[pos + 1]
                continue
            if act == _TAG8:
                if data[pos + 1] != _CID_TAG:
                    raise BoundsError(FrameReason.BAD_CBOR, f"tag {data[pos + 1]} at {pos}")
                pos += 2
                todo += 1  # the tagged item fills the tag's place
                continue
            if act == _SMALL:
                pos, owed = pos + 1, owes[head]
            else:
                pos, owed = _slow_item(data, pos, end, head)
                if not owed:
                    continue
            items += owed
            if items > max_items:
                raise BoundsError(FrameReason.TOO_MANY_ITEMS, f"more than {max_items} items")
            if len(stack) >= max_depth:
                raise BoundsError(FrameReason.TOO_DEEP, f"nesting deeper than {max_depth}")
            stack.append(todo)
            todo = owed
    except IndexError:
        pos = end + 1
    if pos > end:
        raise BoundsError(FrameReason.BAD_LENGTH, f"an item runs past the end of the {end} bytes")
    return pos


def _slow_item(data: bytes, pos: int, end: int, head: int) -> tuple[int, int]:
    """(offset after the header or string, items the container owes)."""
    major, arg = head >> 5, head & 0x1F
    pos += 1
    if arg >= 24:  # 1, 2, 4 or 8 argument bytes follow
        if arg > 27 or major == 7:  # indefinite, reserved, other simple values
            raise BoundsError(FrameReason.BAD_CBOR, f"header 0x{head:02x} at {pos - 1}")
        size = 1 << (arg - 24)
        if pos + size > end:
            raise BoundsError(FrameReason.BAD_LENGTH, f"header at {pos - 1} runs past the end")
        arg = int.from_bytes(data[pos : pos + size])
        pos += size
    if major <= 1:
        return pos, 0
    if major <= 3:  # byte and text strings: skipped by their length
        if arg > end - pos:
            raise BoundsError(FrameReason.BAD_LENGTH, f"string of {arg} bytes at {pos} with {end - pos} left")
        return pos + arg, 0
    if major <= 5:  # arrays and maps: each owed item takes at least one byte
        owed = arg if major == 4 else 2 * arg
        if owed > end - pos:
            raise BoundsError(
                FrameReason.BAD_LENGTH, f"{owed} items claimed at {pos} with {end - pos} bytes left"
            )
        return pos, owed
    raise BoundsError(FrameReason.BAD_CBOR, f"header 0x{head:02x} (argument {arg}) at {pos}")
