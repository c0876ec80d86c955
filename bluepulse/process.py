"""The frame every writing command runs in: its locks, then its /metrics port, then its data.

`run`, `demo`, `streamer` and `aggregator` first lock what they write (state directory, DuckDB
file), then bind their ports, and only then touch data: a second instance stops with a message
naming the first, and never deletes or opens what the first one writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from bluepulse import lock
from bluepulse.config import MetricsSettings
from bluepulse.errors import listen_error
from transport.supervise import Supervisor

log = logging.getLogger(__name__)


@contextmanager
def hosting(
    config: MetricsSettings,
    *,
    dirs: Mapping[str, Path] | None = None,
    files: Mapping[str, Path] | None = None,
) -> Iterator[CollectorRegistry]:
    """Hold the locks (`what` → path), serve /metrics, and yield its registry for the command's data."""
    with lock.hold_all(dict(dirs or {}), dict(files or {})):
        registry = CollectorRegistry()
        with serve_metrics(config, registry):
            yield registry


@contextmanager
def serve_metrics(config: MetricsSettings, registry: CollectorRegistry) -> Iterator[None]:
    """/metrics while the block runs; a taken port or unknown host is one message, exit 2."""
    if not config.metrics_port:
        yield
        return
    try:
        server, _ = start_http_server(config.metrics_port, addr=config.metrics_host, registry=registry)
    except OSError as exc:
        where = ("--metrics-host", config.metrics_host), ("--metrics-port", config.metrics_port)
        raise listen_error(exc, *where) from exc
    log.info("metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def supervised(registry: CollectorRegistry) -> Supervisor:
    """The process's one Supervisor (background jobs of both apps), its error counter on /metrics."""
    supervisor = Supervisor()
    registry.register(supervisor.collector())
    return supervisor
