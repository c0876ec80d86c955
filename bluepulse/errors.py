"""The CLI's own errors, under the two roots the CLI maps to exit codes (`schemas.errors`):

    UsageError                            exit 2: the user can fix it
    ├── CommandError (RuntimeError)           a usage problem found after parsing (a port in use…)
    ├── ConfigError (ValueError)              flags and BLUEPULSE_* variables, every problem at once
    └── LockError (RuntimeError)              what the command writes is held by another bluepulse
    PipelineError                         exit 1: the command was right, the world was not
    └── CommandFailedError (RuntimeError)     e.g. the relay to record from refuses the connection

Socket errors from binding a port become usage problems naming the flag to change, since the
fix is always a different value (a free port, a resolvable host), never a retry.
"""

from __future__ import annotations

import errno
import socket

from schemas.errors import PipelineError, UsageError


class CommandError(UsageError, RuntimeError):
    """A usage or configuration problem found after parsing (exit 2)."""


class ConfigError(UsageError, ValueError):
    """Every configuration problem, one per line."""


class LockError(UsageError, RuntimeError):
    """The lock is held by another process (the message names it) or cannot be taken."""


class CommandFailedError(PipelineError, RuntimeError):
    """A runtime failure: the command was right, the world was not (exit 1)."""


def listen_error(exc: OSError, host: tuple[str, str], port: tuple[str, int]) -> CommandError:
    """One message for a failed bind, naming the flag (`--metrics-port 9464`) that caused it."""
    (host_flag, host_value), (port_flag, port_value) = host, port
    if isinstance(exc, socket.gaierror):
        return CommandError(f"{host_flag} {host_value}: cannot resolve this host name ({exc.strerror})")
    if exc.errno == errno.EADDRINUSE:
        return CommandError(
            f"{port_flag} {port_value}: {host_value}:{port_value} is already in use (another bluepulse "
            f"running?); choose another port with {port_flag}"
            + (", or 0 for off" if "metrics" in port_flag else ", or 0 for any free port")
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return CommandError(f"{host_flag} {host_value}: not an address of this machine")
    if exc.errno == errno.EACCES:
        return CommandError(f"{port_flag} {port_value}: permission denied (ports below 1024 need privileges)")
    return CommandError(f"cannot listen on {host_value}:{port_value}: {exc.strerror or exc}")
