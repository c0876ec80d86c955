"""Relay errors: the emulator's and the capture tools' own (`bluepulse relay`, `record`).

    UsageError
    └── CaptureError (ValueError)   the capture file is not a valid sequence of frames

The emulator's wire messages (FutureCursor, OutdatedCursor, ConsumerTooSlow) are the relay
protocol's names, sent as text; the streamer counts them under `streamer.errors.RelayMessage`.
"""

from __future__ import annotations

from schemas.errors import UsageError


class CaptureError(UsageError, ValueError):
    """The capture file is not a valid sequence of length-prefixed frames."""
