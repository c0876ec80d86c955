"""AppView errors: an unreachable AppView stops the command; a bad answer is one counted skip.

    UsageError
    └── BadXrpcRequest (ValueError)         the emulator refuses a request (400 InvalidRequest)
    PipelineError
    └── AppViewUnavailable (RuntimeError)   no usable answer after every retry
    SkipError (ValueError)
    └── AppViewSkip                         one answer or item that cannot be read (AppViewReason)
        └── XrpcError                       a 4xx XRPC error envelope {"error", "message"}

The CLI maps the roots (schemas/errors.py) to exit codes; skips are counted by reason in
`ClientStats.skipped` and never end a batch.
"""

from __future__ import annotations

from enum import StrEnum

from schemas.errors import PipelineError, SkipError, UsageError


class AppViewReason(StrEnum):
    """Why an answer or an item was skipped (labels of the client's skip counter)."""

    NOT_JSON = "not_json"
    BAD_SHAPE = "bad_shape"
    XRPC_ERROR = "xrpc_error"


class AppViewUnavailable(PipelineError, RuntimeError):  # noqa: N818 — the name the commands report
    """The AppView gave no usable answer after every retry (down, unreachable, or throttling us)."""


class AppViewSkip(SkipError[AppViewReason]):
    """One answer or item that cannot be read: counted under `reason` and skipped."""


class XrpcError(AppViewSkip):
    """A 4xx XRPC error envelope, e.g. 400 HandleNotFound or InvalidRequest 'Profile not found'."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(AppViewReason.XRPC_ERROR, f"{status} {error}: {message}")
        self.status, self.error, self.message = status, error, message


class BadXrpcRequest(UsageError, ValueError):  # noqa: N818 — the emulator's answer, not a failure
    """A request the emulator refuses as the AppView would: 400 InvalidRequest with this message."""
