"""The real Apache Kafka broker for tests: session fixtures, restart control, topics, groups.

Registered for every test directory by tests/conftest.py (`pytest_plugins`), so the Kafka
tests and the Kafka half of the transport contract share one broker. BLUEPULSE_TEST_KAFKA=
HOST:PORT points the tests at a broker someone else runs (restart tests then fail with how to
deselect them). Otherwise the session runs `scripts/kafka start --fresh` and `scripts/kafka
stop` at its end; a broker already running from the same directory is reused as it is and
left running. Only tests that ask for these fixtures start a broker.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

KAFKA_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka"
EXTERNAL_ENV = "BLUEPULSE_TEST_KAFKA"
SCRIPT_TIMEOUT_S = 150.0
TOPIC_READY_TIMEOUT_S = 30.0
TopicFactory = Callable[..., Awaitable[str]]


def run_kafka_script(*args: str) -> str:
    """Run scripts/kafka; return its last stdout line, or fail with what it printed."""
    done = subprocess.run(
        [str(KAFKA_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"scripts/kafka {' '.join(args)} exited {done.returncode}:\n{done.stderr}{done.stdout}"
        )
    lines = done.stdout.strip().splitlines()
    return lines[-1].strip() if lines else ""


def broker_is_running() -> bool:
    return subprocess.run([str(KAFKA_SCRIPT), "status"], capture_output=True, check=False).returncode == 0


def restart_broker() -> str:
    """Stop the scripts/kafka broker and start it again on the same data and port.

    Blocking: from async code use the `kafka_restart` fixture, which keeps the event loop
    (and the clients' reconnects) running meanwhile.
    """
    run_kafka_script("stop")
    return run_kafka_script("start")


async def _run_kafka_script_async(*args: str) -> str:
    return await asyncio.to_thread(run_kafka_script, *args)


class BrokerControl:
    """Await it to restart the broker (`await kafka_restart()`); or stop and start apart."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def stop(self) -> None:
        await _run_kafka_script_async("stop")

    async def start(self) -> str:
        address = await _run_kafka_script_async("start")
        assert address == self.bootstrap, f"broker came back at {address}, not {self.bootstrap}"
        return address

    async def __call__(self) -> str:
        await self.stop()
        return await self.start()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """HOST:PORT of the real broker for the whole session."""
    external = os.environ.get(EXTERNAL_ENV)
    if external:
        if not re.fullmatch(r"[^\s:]+:\d+", external):
            raise pytest.UsageError(f"{EXTERNAL_ENV}={external!r} is not HOST:PORT")
        yield external
        return
    owned = not broker_is_running()
    try:
        address = run_kafka_script("start", "--fresh") if owned else run_kafka_script("start")
    except BaseException:
        if owned:  # a failed or interrupted start must not leave a broker behind
            subprocess.run([str(KAFKA_SCRIPT), "stop"], capture_output=True, check=False)
        raise
    try:
        yield address
    finally:
        if owned:
            run_kafka_script("stop")


@pytest.fixture
def kafka_restart(kafka_bootstrap: str) -> BrokerControl:
    """Restart the session's broker keeping its data and address: `await kafka_restart()`."""
    if os.environ.get(EXTERNAL_ENV):
        pytest.fail(
            f"{EXTERNAL_ENV} is set: the broker is not ours to restart; unset it, or deselect "
            "the broker-outage tests with -k 'not restart and not broker_is_down and not stalled'"
        )
    return BrokerControl(kafka_bootstrap)


def unique_name(request: pytest.FixtureRequest, kind: str) -> str:
    test = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:120]
    return f"{kind}-{test}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kafka_group_id(request: pytest.FixtureRequest) -> str:
    """A consumer-group id no other test uses."""
    return unique_name(request, "group")


async def _wait_topic_ready(admin: AIOKafkaAdminClient, topic: str, partitions: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TOPIC_READY_TIMEOUT_S
    while True:
        [meta] = await admin.describe_topics([topic])
        parts = meta["partitions"]
        led = all(p["error_code"] == 0 and p["leader"] >= 0 for p in parts)
        if meta["error_code"] == 0 and len(parts) == partitions and led:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"topic {topic} has no leader for every partition: {meta}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def kafka_topic_factory(
    kafka_bootstrap: str, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """`await kafka_topic_factory(partitions=3)` → a new topic with a unique name, all
    partitions led; topics are deleted (best effort) after the test."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=15000)
    await admin.start()
    created: list[str] = []

    async def create(partitions: int = 3) -> str:
        name = unique_name(request, "topic")
        response = await admin.create_topics([NewTopic(name, partitions, 1)])
        errors = [entry for entry in response.topic_errors if entry[1] != 0]
        assert not errors, f"create_topics({name}) failed: {errors}"
        created.append(name)
        await _wait_topic_ready(admin, name, partitions)
        return name

    try:
        yield create
    finally:
        try:
            if created:
                await asyncio.wait_for(admin.delete_topics(created, timeout_ms=5000), 10)
        except Exception:  # broker stopped by the test, or slow: the session dir is fresh anyway
            pass
        await admin.close()


@pytest.fixture
async def kafka_topic(kafka_topic_factory: Callable[..., Awaitable[str]]) -> str:
    """A new 3-partition topic for this test."""
    return await kafka_topic_factory(3)
