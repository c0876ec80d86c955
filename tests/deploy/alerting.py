"""A real Alertmanager for the tests, fed the production config with test endpoints.

`config_for_tests` rewrites deploy/alertmanager/alertmanager.yml only where it must: the
placeholder webhook URLs point at a `WebhookReceiver` (one path per placeholder host, so a
test sees which receiver each notification went through), the SMTP relay is an `SmtpSink`,
the templates path is absolute and the group timings are a second. Routes, grouping,
inhibition and templates stay the production ones.
"""

from __future__ import annotations

import contextlib
import json
import re
import socketserver
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.deploy.support import (
    ALERTMANAGER_CONFIG,
    ALERTMANAGER_DIR,
    AlertmanagerBins,
    http_ok,
    stop,
    wait_for,
)
from tests.support.ports import free_port

PLACEHOLDER_WEBHOOK = re.compile(r"http://([a-z-]+)\.webhook\.invalid/bluepulse")


def config_for_tests(webhook_base: str, smtp_port: int, timing: str = "1s") -> str:
    text = ALERTMANAGER_CONFIG.read_text()
    text, hooks = PLACEHOLDER_WEBHOOK.subn(lambda m: f"{webhook_base}/{m.group(1)}", text)
    assert hooks >= 4, "the production config's webhook placeholders moved: update tests/deploy/alerting.py"
    replacements = (
        (r"smtp_smarthost: \S+", f"smtp_smarthost: 127.0.0.1:{smtp_port}"),
        (r"smtp_require_tls: true", "smtp_require_tls: false"),
        (r"- templates/\*\.tmpl", f"- {ALERTMANAGER_DIR}/templates/*.tmpl"),
        (r"group_wait: \S+", f"group_wait: {timing}"),
        (r"group_interval: \S+", f"group_interval: {timing}"),
    )
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count, f"{pattern!r} not in the production config"
    return text


# -- receivers -----------------------------------------------------------------------------------
@dataclass(slots=True)
class Notification:
    path: str  # the placeholder's host: communication, communication-urgent, operators, ...
    body: dict[str, Any]


@dataclass(slots=True)
class WebhookReceiver:
    """Collects Alertmanager's webhook POSTs (JSON, version 4)."""

    notifications: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> list[Notification]:
        with self.lock:
            return list(self.notifications)

    @contextmanager
    def serving(self) -> Iterator[WebhookReceiver]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with sink.lock:
                    sink.notifications.append(Notification(self.path.strip("/"), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


@dataclass(slots=True)
class SmtpSink:
    """The few SMTP verbs Alertmanager's e-mail notifier speaks (no TLS, no auth)."""

    messages: list[Any] = field(default_factory=list)  # email.message.EmailMessage
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def received(self) -> list[Any]:
        with self.lock:
            return list(self.messages)

    @contextmanager
    def serving(self) -> Iterator[SmtpSink]:
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                with contextlib.suppress(ConnectionError):  # a client may hang up without QUIT
                    self.dialog()

            def dialog(self) -> None:
                self.reply("220 sink ESMTP")
                while line := self.rfile.readline():
                    verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.reply("250-sink")
                        self.reply("250 8BITMIME")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        data = bytearray()
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        with sink.lock:
                            sink.messages.append(message_from_bytes(bytes(data), policy=policy.default))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:  # HELO, MAIL, RCPT, RSET, NOOP
                        self.reply("250 ok")

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


# -- the server ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Alertmanager:
    base: str
    log: Path

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.base}{path}", timeout=10) as resp:
            return json.load(resp)

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            f"{self.base}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()


@contextmanager
def alertmanager(bins: AlertmanagerBins, config: str, tmp: Path, deadline: float) -> Iterator[Alertmanager]:
    """A real Alertmanager on a free loopback port, clustering off, running `config`."""
    tmp.mkdir(parents=True, exist_ok=True)
    path, log = tmp / "alertmanager.yml", tmp / "alertmanager.log"
    path.write_text(config)
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(bins.alertmanager),
                f"--config.file={path}",
                f"--storage.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # one instance: no gossip port
                "--log.level=debug",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    server = Alertmanager(f"http://127.0.0.1:{port}", log)
    try:
        wait_for("Alertmanager to be ready", lambda: http_ok(f"{server.base}/-/ready"), deadline, [log])
        yield server
    finally:
        stop(proc)


def now_iso(offset: float = 0.0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))
