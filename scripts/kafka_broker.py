"""Start, stop and inspect a real single-node Apache Kafka broker (KRaft, no Docker).

Run through `scripts/kafka {start,stop,status,fetch}`. Jars come from Maven Central through
scripts/kafka-pom.xml and are cached; config, data and log live in one directory that a later
`start` reuses (same ports, same data), so `stop` + `start` is a real broker restart.
Readiness is an admin round trip (metadata + group coordinator), never a fixed sleep.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
POM = SCRIPTS / "kafka-pom.xml"
HOST = "127.0.0.1"
EXIT_STOPPED = 3
MIN_JAVA = 17
LOG_TAIL_LINES = 40
OWNED = ("data", "server.properties", "log4j2.properties", "broker.log", "broker.pid")

LOG4J2 = """\
status = warn
name = bluepulse-kafka
shutdownHook = disable
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
"""

SERVER_PROPERTIES = """\
# Written by scripts/kafka on every start; edit scripts/kafka_broker.py instead.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{cport}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}
advertised.listeners=PLAINTEXT://{host}:{port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
"""


class KafkaScriptError(Exception):
    """A failure with a message meant for the person running scripts/kafka."""


def say(message: str) -> None:
    sys.stderr.write(f"scripts/kafka: {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class Layout:
    """Where one broker lives: its directory, and the shared jar cache."""

    dir: Path
    home: Path

    @classmethod
    def from_env(cls) -> Layout:
        kdir = os.environ.get("BLUEPULSE_KAFKA_DIR") or str(REPO / ".kafka")
        home = os.environ.get("BLUEPULSE_KAFKA_HOME") or str(Path.home() / ".cache" / "bluepulse" / "kafka")
        return cls(Path(kdir).expanduser().resolve(), Path(home).expanduser().resolve())

    @property
    def config(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.dir / "log4j2.properties"

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def log(self) -> Path:
        return self.dir / "broker.log"

    @property
    def pidfile(self) -> Path:
        return self.dir / "broker.pid"

    @property
    def libs(self) -> Path:
        return self.home / "libs"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- jars -------------------------------------------------------------------------------


def ensure_jars(layout: Layout) -> Path:
    """Resolve the broker jars once into the cache; the stamp ties them to the pom's content."""
    want = hashlib.sha256(POM.read_bytes()).hexdigest()
    stamp = layout.libs / ".pom-sha256"
    if stamp.is_file() and stamp.read_text().strip() == want:
        return layout.libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaScriptError(
            f"mvn not found on PATH: install Apache Maven (apt-get install maven) to fetch the "
            f"broker jars into {layout.libs}"
        )
    with locked(layout.home / ".lock"):
        if stamp.is_file() and stamp.read_text().strip() == want:
            return layout.libs
        tmp = layout.home / f"libs.tmp.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        say(f"fetching Kafka jars from Maven Central into {layout.libs} (first run only)")
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            raise KafkaScriptError(
                f"mvn could not fetch the Kafka jars (exit {done.returncode}):\n"
                f"{done.stdout[-4000:]}{done.stderr[-4000:]}"
            )
        (tmp / ".pom-sha256").write_text(want + "\n")
        old = layout.home / f"libs.old.{os.getpid()}"
        if layout.libs.exists():
            layout.libs.rename(old)
        tmp.rename(layout.libs)
        shutil.rmtree(old, ignore_errors=True)
    return layout.libs


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        where = f"{java} (from JAVA_HOME) is not executable" if java_home else "no java on PATH"
        raise KafkaScriptError(
            f"java not found: {where}; install a JDK >= {MIN_JAVA} "
            f"(apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(found.group(1)) if found else 0
    if major == 1 and found and found.group(2):
        major = int(found.group(2))
    if major < MIN_JAVA:
        raise KafkaScriptError(f"{java} is Java {major or '?'}; Kafka 4 needs >= {MIN_JAVA}")
    return java


# --- ports and config -------------------------------------------------------------------


def free_port(avoid: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def configured_ports(layout: Layout) -> tuple[int, int] | None:
    """(broker port, controller port) recorded in an existing config, if any."""
    if not layout.config.is_file():
        return None
    text = layout.config.read_text()
    port = re.search(r"^listeners=PLAINTEXT://[^:]+:(\d+)", text, re.M)
    cport = re.search(r"^controller\.quorum\.voters=\d+@[^:]+:(\d+)", text, re.M)
    if not (port and cport):
        return None
    return int(port.group(1)), int(cport.group(1))


def write_config(layout: Layout) -> tuple[int, int]:
    """Keep the ports of an existing config (a restart keeps its address); else pick free ones."""
    ports = configured_ports(layout)
    wanted = os.environ.get("BLUEPULSE_KAFKA_PORT")
    if wanted and not wanted.isdigit():
        raise KafkaScriptError(f"BLUEPULSE_KAFKA_PORT={wanted!r} is not a port number")
    port = int(wanted) if wanted else (ports[0] if ports else free_port(set()))
    cport = ports[1] if ports and ports[1] != port else free_port({port})
    layout.data.mkdir(parents=True, exist_ok=True)
    layout.log4j.write_text(LOG4J2)
    text = SERVER_PROPERTIES.format(host=HOST, port=port, cport=cport, data=layout.data)
    layout.config.write_text(text)
    return port, cport


def new_cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def java_cmd(java: str, layout: Layout, libs: Path, *rest: str) -> list[str]:
    return [java, f"-Dlog4j2.configurationFile={layout.log4j}", "-cp", f"{libs}/*", *rest]


def format_storage(java: str, layout: Layout, libs: Path) -> None:
    if (layout.data / "meta.properties").is_file():
        return
    cmd = java_cmd(
        java,
        layout,
        libs,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        new_cluster_id(),
        "-c",
        str(layout.config),
    )
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KafkaScriptError(f"StorageTool format failed:\n{done.stdout}{done.stderr}")


# --- processes --------------------------------------------------------------------------


HAVE_PROC = Path("/proc/self/stat").exists()


def alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped) counts as gone."""
    if HAVE_PROC:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_our_broker(pid: int, layout: Layout) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return not HAVE_PROC and alive(pid)
    return b"kafka.Kafka" in args and str(layout.config).encode() in args and alive(pid)


def broker_pids(layout: Layout) -> list[int]:
    """Live brokers started from this directory: the pid file, plus a /proc scan for orphans."""
    pids: set[int] = set()
    with contextlib.suppress(OSError, ValueError):
        pids.add(int(layout.pidfile.read_text().strip()))
    if HAVE_PROC:
        pids.update(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    return sorted(pid for pid in pids if is_our_broker(pid, layout))


def log_tail(layout: Layout) -> str:
    try:
        lines = layout.log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no broker log)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_brokers(pids: list[int], timeout_s: float = 30.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    left = wait_gone(pids, timeout_s)
    if left:
        say(f"broker pid(s) {left} ignored SIGTERM for {timeout_s:.0f}s; sending SIGKILL")
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        left = wait_gone(left, 10.0)
    if left:
        raise KafkaScriptError(f"broker pid(s) {left} still alive after SIGKILL")


def launch(java: str, layout: Layout, libs: Path) -> subprocess.Popen[bytes]:
    cmd = java_cmd(java, layout, libs, "kafka.Kafka", str(layout.config))
    cmd.insert(1, "-Xmx512m")
    with layout.log.open("ab") as log:
        log.write(f"=== scripts/kafka start {time.strftime('%Y-%m-%dT%H:%M:%S')} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=layout.dir,
            start_new_session=True,
        )
    layout.pidfile.write_text(f"{proc.pid}\n")
    return proc


# --- readiness --------------------------------------------------------------------------


async def probe(address: str) -> None:
    """One admin round trip: a broker in the metadata, and a group coordinator.

    FindCoordinator makes the broker create __consumer_offsets, so the first consumer-group
    join of a test does not meet GroupCoordinatorNotAvailable.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=address, request_timeout_ms=5000, client_id="bluepulse-kafka-ready"
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        if not cluster.get("brokers"):
            raise KafkaScriptError("no broker in the cluster metadata yet")
        await admin.list_topics()
        await admin.find_coordinator("bluepulse-kafka-readiness")
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def wait_ready(address: str, pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if not alive(pid):
            raise KafkaScriptError(f"broker pid {pid} exited before it was ready")
        try:
            await asyncio.wait_for(probe(address), timeout=max(1.0, deadline - time.monotonic()))
        except Exception as exc:  # any failure means "not yet"; the deadline bounds it
            last = exc
            await asyncio.sleep(0.2)
        else:
            return
    raise KafkaScriptError(f"broker at {address} not ready after {timeout_s:.0f}s (last error: {last!r})")


# --- commands ---------------------------------------------------------------------------


def wipe(layout: Layout) -> None:
    """Stop any broker of this directory and remove what scripts/kafka put there (only that)."""
    kill_brokers(broker_pids(layout))
    for name in OWNED:
        path = layout.dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def start_new(layout: Layout, timeout_s: float) -> str:
    """Launch a broker on this directory's config and data (created if absent); wait until ready."""
    java = find_java()
    libs = ensure_jars(layout)
    port, cport = write_config(layout)
    busy = [p for p in (port, cport) if not port_is_free(p)]
    if busy:
        raise KafkaScriptError(
            f"port(s) {busy} on {HOST} are taken by another process; free them, set "
            f"BLUEPULSE_KAFKA_PORT, or `scripts/kafka start --fresh` for new ports"
        )
    format_storage(java, layout, libs)
    address = f"{HOST}:{port}"
    proc = launch(java, layout, libs)
    try:
        asyncio.run(wait_ready(address, proc.pid, timeout_s))
    except BaseException as exc:  # also Ctrl-C: never leave a half-started broker behind
        say(f"broker log tail ({layout.log}):\n{log_tail(layout)}")
        kill_brokers([proc.pid], timeout_s=5.0)
        layout.pidfile.unlink(missing_ok=True)
        if isinstance(exc, KafkaScriptError):
            raise
        raise KafkaScriptError(f"start interrupted: {exc!r}") from exc
    say(f"broker pid {proc.pid} ready at {address} (dir {layout.dir})")
    return address


def start(layout: Layout, fresh: bool, timeout_s: float) -> str:
    with locked(layout.dir / ".lock"):
        if fresh:
            wipe(layout)
        running = broker_pids(layout)
        if not running:
            return start_new(layout, timeout_s)
        ports = configured_ports(layout)
        if not ports:
            raise KafkaScriptError(f"broker pid {running[0]} runs but {layout.config} is gone")
        address = f"{HOST}:{ports[0]}"
        say(f"already running (pid {running[0]}) at {address}")
        asyncio.run(wait_ready(address, running[0], timeout_s))
        return address


def stop(layout: Layout) -> None:
    with locked(layout.dir / ".lock"):
        pids = broker_pids(layout)
        if pids:
            kill_brokers(pids)
            say(f"stopped broker pid(s) {pids}")
        else:
            say("no broker running from " + str(layout.dir))
        layout.pidfile.unlink(missing_ok=True)


def status(layout: Layout) -> int:
    pids = broker_pids(layout)
    ports = configured_ports(layout)
    address = f"{HOST}:{ports[0]}" if ports else "-"
    if pids:
        print(f"running {address} pid={pids[0]}")
        return 0
    print(f"stopped {address}")
    return EXIT_STOPPED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/kafka", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start (or reuse) the broker; prints HOST:PORT last")
    p_start.add_argument("--fresh", action="store_true", help="wipe config and data first")
    p_start.add_argument("--timeout", type=float, default=60.0, help="readiness timeout (s)")
    sub.add_parser("stop", help="stop the broker and wait until it is gone")
    sub.add_parser("status", help="print running/stopped and the address; exit 0 or 3")
    sub.add_parser("fetch", help="only fetch the broker jars into the cache")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # aiokafka logs every refused connection
    layout = Layout.from_env()
    try:
        if args.command == "start":
            print(start(layout, args.fresh, args.timeout), flush=True)
        elif args.command == "stop":
            stop(layout)
        elif args.command == "status":
            return status(layout)
        else:
            print(ensure_jars(layout))
    except KafkaScriptError as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
