"""The CLI decides the exit status once, by the two error roots: usage 2, pipeline failure 1."""

from __future__ import annotations

import pytest

from bluepulse import cli, commands
from bluepulse.errors import CommandError, CommandFailedError, ConfigError, LockError
from schemas.errors import PipelineError, UsageError


class SomePackageUsageError(UsageError, ValueError):
    """Like a package's own class: the CLI knows only its root."""


class SomePackageFailureError(PipelineError, RuntimeError):
    pass


@pytest.mark.parametrize(
    ("error", "status", "line"),
    [
        (SomePackageUsageError("bad accounts file"), 2, "bad accounts file"),
        (LockError("state directory held"), 2, "state directory held"),
        (CommandError("--port 1: in use"), 2, "--port 1: in use"),
        (SomePackageFailureError("disk full"), 1, "stopped: disk full"),
        (CommandFailedError("relay refused"), 1, "stopped: relay refused"),
        (KeyError("surprise"), 1, "stopped by an unexpected error: KeyError: 'surprise'"),
    ],
)
def test_each_root_has_one_exit_status(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    status: int,
    line: str,
) -> None:
    def fail(_: object) -> int:
        raise error

    monkeypatch.setattr(commands, "start", fail)
    assert cli.main(["accounts", "check"]) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].endswith(f" ERROR bluepulse {line}")


def test_bluepulse_errors_derive_from_the_roots() -> None:
    for usage in (ConfigError, CommandError, LockError):
        assert issubclass(usage, UsageError)
    assert issubclass(ConfigError, ValueError)  # existing `except ValueError` sites keep working
    assert issubclass(CommandFailedError, PipelineError)
