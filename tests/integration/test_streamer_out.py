"""`bluepulse streamer --out` as a real process: a regular file, /dev/null and `-` (a pipe) get
the same events and the cursor is saved; an output that cannot be written stops the process
with exit 1 and one clear message (the checkpoint never dies silently)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from relay.emulator import RelayEmulator
from relay.script import FrameScript
from tests.integration.harness import X, Y
from tests.integration.test_run_pipeline import scenario, write_accounts
from tests.support.ports import free_port
from tests.support.processes import ChildProcess, bluepulse_argv, metrics_text


def quiet_tail(s: FrameScript, count: int = 5) -> FrameScript:
    """Frames that concern no tracked account, after the scenario's last event."""
    for n in range(count):
        s.like(X, f"at://{Y}/app.bsky.feed.post/3kzz{n}")
    return s


class StreamerProcess(ChildProcess):
    """`bluepulse streamer --out OUT`, started at once; stdout is read as it comes."""

    def __init__(self, tmp: Path, relay_url: str, out: str) -> None:
        self.state = tmp / "state"
        self.port = free_port()
        super().__init__(
            "streamer",
            bluepulse_argv(
                "streamer",
                "--relay",
                relay_url,
                "--accounts",
                str(write_accounts(tmp / "accounts.csv")),
                "--state-dir",
                str(self.state),
                "--out",
                out,
                "--metrics-port",
                str(self.port),
                "--checkpoint-interval",
                "0.1",
            ),
            tmp / "stderr.log",
            capture_stdout=True,
        )
        self.stderr = self.log
        self.start()
        self.stdout = asyncio.ensure_future(asyncio.to_thread(self._read_stdout))

    def _read_stdout(self) -> bytes:
        assert self.popen.stdout is not None
        return self.popen.stdout.read()

    def metrics(self) -> str:
        try:
            return metrics_text(self.port)
        except OSError:
            return ""

    async def wait_metric(self, needle: str, timeout: float = 20.0) -> str:
        async with asyncio.timeout(timeout):
            while needle not in (text := await asyncio.to_thread(self.metrics)):
                assert self.running, self.output()
                await asyncio.sleep(0.05)
        return text

    async def wait_exit(self, timeout: float = 30.0) -> int:
        async with asyncio.timeout(timeout):
            return await asyncio.to_thread(self.popen.wait)

    async def terminate(self) -> tuple[int, bytes]:
        """SIGTERM; the exit code and everything written to stdout."""
        self.popen.send_signal(signal.SIGTERM)
        code = await self.wait_exit()
        return code, await self.stdout


async def stream_to(tmp: Path, out: str) -> tuple[int, bytes, str, int]:
    """(exit code, stdout, /metrics before SIGTERM, saved cursor) of one run over the scenario."""
    s = quiet_tail(scenario())
    tmp.mkdir(parents=True, exist_ok=True)
    async with RelayEmulator() as relay:
        streamer = StreamerProcess(tmp, relay.url, out)
        try:
            await streamer.wait_metric("bluepulse_streamer_frames_received_total")
            async with asyncio.timeout(20):
                await relay.wait_for_connections(1)
            for frame in s.frames:
                relay.publish(frame)
            metrics = await streamer.wait_metric(f"bluepulse_streamer_last_seq {float(s.seq)}")
            code, stdout = await streamer.terminate()
        finally:
            streamer.close()
    return code, stdout, metrics, int((streamer.state / "cursor").read_text())


@pytest.mark.parametrize("out", ["/dev/null", "-", "file"])
async def test_streamer_out_saves_the_cursor_whatever_the_output(tmp_path: Path, out: str) -> None:
    target = str(tmp_path / "events.jsonl") if out == "file" else out
    code, stdout, metrics, cursor = await stream_to(tmp_path, target)
    last = quiet_tail(scenario()).seq
    assert code == 0
    assert cursor == last
    assert f"bluepulse_streamer_last_seq {float(last)}" in metrics
    assert 'bluepulse_task_errors_total{task="checkpoint"} 0.0' in metrics
    if out == "-":  # the same events as a regular file gets
        reference = await stream_to(tmp_path / "ref", str(tmp_path / "ref.jsonl"))
        assert reference[0] == 0
        assert stdout == (tmp_path / "ref.jsonl").read_bytes()
        assert stdout.count(b"\n") > 10
    else:
        assert stdout == b""


async def test_an_output_that_cannot_be_written_stops_the_streamer_with_one_message(tmp_path: Path) -> None:
    s = scenario()
    async with RelayEmulator() as relay:
        streamer = StreamerProcess(tmp_path, relay.url, "/dev/full")  # every write: ENOSPC
        try:
            await streamer.wait_metric("bluepulse_streamer_frames_received_total")
            async with asyncio.timeout(20):
                await relay.wait_for_connections(1)
            relay.publish(s.frames[0])  # one post by a tracked account: a few hundred bytes
            code = await streamer.wait_exit()
        finally:
            streamer.close()
    stderr = streamer.stderr.read_text()
    assert code == 1, stderr
    assert "Traceback" not in stderr
    assert "checkpoint failed 5 times in a row" in stderr
    assert "No space left on device" in stderr
    assert not (streamer.state / "cursor").exists()
