"""The frame every writing command runs in: its locks, then its /metrics port, then its data.

`run`, `demo`, `streamer` and `aggregator` first lock what they write (state directory, DuckDB
file), then bind their ports, and only then touch data: a second instance stops with a message
naming the first, and never deletes or opens what the first one writes.
"""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Protocol, cast
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import (
    ThreadingWSGIServer,
    _get_best_family,
    _SilentHandler,
    choose_encoder,
    gzip_accepted,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS

from bluepulse import lock
from bluepulse.config import MetricsSettings
from bluepulse.errors import listen_error
from transport.supervise import Supervisor

log = logging.getLogger(__name__)
_best_family: Final = cast(Callable[[str, int], tuple[int, str]], _get_best_family)


@contextmanager
def hosting(
    config: MetricsSettings,
    *,
    dirs: Mapping[str, Path] | None = None,
    files: Mapping[str, Path] | None = None,
) -> Iterator[CollectorRegistry]:
    """Hold the locks (`what` → path), serve /metrics, and yield its registry for the command's data."""
    with lock.hold_all(dict(dirs or {}), dict(files or {})):
        registry = MetricsRegistry()
        with serve_metrics(config, registry):
            yield registry


@contextmanager
def serve_metrics(config: MetricsSettings, registry: CollectorRegistry) -> Iterator[None]:
    """/metrics while the block runs; a taken port or unknown host is one message, exit 2."""
    if not config.metrics_port:
        yield
        return
    try:

        class Server(ThreadingWSGIServer):  # as prometheus_client's start_http_server: IPv4 or IPv6
            pass

        Server.address_family, addr = _best_family(config.metrics_host, config.metrics_port)
        server = make_server(
            addr, config.metrics_port, metrics_app(registry), Server, handler_class=_SilentHandler
        )
    except OSError as exc:
        where = ("--metrics-host", config.metrics_host), ("--metrics-port", config.metrics_port)
        raise listen_error(exc, *where) from exc
    log.info("metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


class TextSource(Protocol):
    """Families that render their own exposition text (the store's per-account series: formatting
    hundreds of thousands of samples through prometheus_client costs seconds)."""

    def collect(self) -> Iterable[Metric]: ...

    def text(self, openmetrics: bool) -> str: ...


class MetricsRegistry(CollectorRegistry):
    """A registry plus text sources. `collect` still yields every family (generate_latest and
    tests see them all); /metrics writes the registry's families, then the sources' text."""

    def __init__(self) -> None:
        super().__init__()
        self._texts: list[TextSource] = []

    def register_text(self, source: TextSource) -> None:
        self._texts.append(source)

    def collect(self) -> Iterator[Metric]:
        yield from super().collect()
        for source in self._texts:
            yield from source.collect()

    def exposition(self, accept_header: str | None) -> tuple[bytes, str]:
        """The body and content type of a full scrape, as prometheus_client would write them."""
        encoder, content_type = choose_encoder(accept_header or "")
        openmetrics = content_type.startswith(OPENMETRICS.split(";")[0])
        own = _Registered(self)
        body = encoder(own).decode()
        eof = "# EOF\n"
        if openmetrics and body.endswith(eof):
            body = body.removesuffix(eof)
        texts = "".join(source.text(openmetrics) for source in self._texts)
        return (body + texts + (eof if openmetrics else "")).encode(), content_type


class _Registered:
    """The registry's own collectors, without its text sources."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return CollectorRegistry.collect(self._registry)


def metrics_app(registry: CollectorRegistry) -> WSGIApplication:
    """prometheus_client's WSGI app, but a full GET scrape of a MetricsRegistry takes its text path."""
    plain: WSGIApplication = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        params = parse_qs(environ.get("QUERY_STRING", ""))
        fast = isinstance(registry, MetricsRegistry) and "name[]" not in params
        if not fast or environ["REQUEST_METHOD"] != "GET" or environ["PATH_INFO"] == "/favicon.ico":
            return plain(environ, start_response)
        assert isinstance(registry, MetricsRegistry)
        output, content_type = registry.exposition(environ.get("HTTP_ACCEPT"))
        headers = [("Content-Type", content_type)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            output = gzip.compress(output)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [output]

    return app


def supervised(registry: CollectorRegistry) -> Supervisor:
    """The process's one Supervisor (background jobs of both apps), its error counter on /metrics."""
    supervisor = Supervisor()
    registry.register(supervisor.collector())
    return supervisor
