"""Relay errors: the emulator's and the capture tools' own (`bluepulse relay`, `record`).

    UsageError
    ├── CaptureError (ValueError)   the capture file is not a valid sequence of frames
    └── Rejected                    the Jetstream emulator refuses a client's request (HTTP 4xx)

The emulator's wire messages (FutureCursor, OutdatedCursor, ConsumerTooSlow) are the relay
protocol's names, sent as text; the streamer counts them under `streamer.errors.RelayMessage`.
"""

from __future__ import annotations

import json

from schemas.errors import UsageError


class CaptureError(UsageError, ValueError):
    """The capture file is not a valid sequence of length-prefixed frames."""


class Rejected(UsageError):  # noqa: N818 — an answer to a client, not our failure
    """A Jetstream subscription refused before the upgrade, as production refuses it: the HTTP
    status, the XRPC error name (InvalidRequest, CursorTooOld, UnknownZstdDictionary) and message.
    The emulator answers it to the client; it never reaches the CLI."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.status, self.error, self.message = status, error, message

    def body(self, v2: bool) -> bytes:
        """XRPC JSON on v2, plain text on v1 (production's handler writes them so)."""
        if not v2:
            return self.message.encode() + b"\n"
        return json.dumps({"error": self.error, "message": self.message}).encode()
