"""Every `sh`/`bash` block of README.md runs, as written, on a fresh copy of the repository.

A new user follows the README from the top, so the blocks run in order in one fresh copy (the
files git knows, untracked ones included; this checkout's `.venv`, as if `scripts/setup` had
run; `../shared` next to it). An HTML comment right before a block changes how it runs:

    <!-- readme-test: skip (why) -->             not run: only scripts/setup and scripts/test
    <!-- readme-test: background until=PATH -->  a server: the next blocks run once PATH exists and
        is not empty; Ctrl-C (SIGINT) stops it when the next background block starts or the
        README ends, and it must then exit 0

Every other block runs in the foreground under `bash -e -o pipefail` and must exit 0. The
environment differs from a user's only to stay hermetic and quick: the network
(BLUEPULSE_RELAY) is a local relay playing the real capture, /metrics binds a free port,
snapshots are written every second. A block that reads Jetstream (`--jetstream`) runs without
BLUEPULSE_RELAY, as in a user's shell: the two sources exclude each other.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import pytest

from tests.conftest import corpus_path
from tests.support.ports import free_port
from tests.support.processes import clean_env

ROOT: Final = Path(__file__).resolve().parents[2]
README: Final = ROOT / "README.md"
SKIPPED: Final = {"scripts/setup", "scripts/test"}
SHELLS: Final = {"sh", "bash"}
BASH: Final = ["bash", "-e", "-o", "pipefail", "-x", "-c"]
FOREGROUND_SECONDS: Final = 60.0
READY_SECONDS: Final = 45.0
STOP_SECONDS: Final = 20.0
_FENCE: Final = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
_MARKER: Final = re.compile(r"^<!--\s*readme-test:\s*(?P<verb>\S+)(?P<rest>.*?)-->$")
_UNTIL: Final = re.compile(r"\buntil=(\S+)")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    verb: str  # run, skip or background
    until: str | None = None


class ReadmeCommandError(AssertionError):
    """A README command failed: the message names the block, the command and its output."""


def parse(markdown: str) -> list[Block]:
    """The fenced blocks with their markers; a marker not followed by a block is an error."""
    lines, blocks, marker, i = markdown.splitlines(), [], None, 0
    while i < len(lines):
        stripped = lines[i].strip()
        if found := _MARKER.match(stripped):
            if found["verb"] not in ("skip", "background") or marker:
                raise ValueError(f"README line {i + 1}: bad or repeated readme-test marker: {stripped}")
            marker = found
        elif fence := _FENCE.match(lines[i]):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            if end is None:
                raise ValueError(f"README line {i + 1}: unclosed fenced block")
            until = _UNTIL.search(marker["rest"]) if marker else None
            verb = marker["verb"] if marker else "run"
            blocks.append(
                Block(i + 1, fence["lang"], "\n".join(lines[i + 1 : end]), verb, until and until[1])
            )
            marker, i = None, end
        elif stripped and marker:
            raise ValueError(f"README line {i + 1}: a readme-test marker must come right before a block")
        i += 1
    return blocks


def _failure(block: Block, what: str, output: str) -> ReadmeCommandError:
    traced = [line for line in output.splitlines() if line.startswith("+ ")]
    command = traced[-1][2:] if traced else block.text.splitlines()[0]
    return ReadmeCommandError(
        f"README.md block at line {block.line} {what}\n  command: {command}\n"
        f"  block:\n{_indent(block.text)}\n  output (stderr with `+ command` traces, last 4000 chars):\n"
        f"{_indent(output[-4000:])}"
    )


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


class Runner:
    """Runs the blocks in order in `cwd`; at most one background server at a time."""

    def __init__(self, cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.cwd, self.env, self.logs = cwd, env, logs
        self.server: tuple[Block, subprocess.Popen[bytes], Path, IO[bytes]] | None = None

    def run(self, blocks: list[Block]) -> None:
        try:
            for block in blocks:
                if block.lang not in SHELLS or block.verb == "skip":
                    continue
                if block.verb == "background":
                    self.stop()
                    self.start(block)
                else:
                    self.foreground(block)
            self.stop()
        finally:
            self.kill()

    def env_for(self, block: Block) -> dict[str, str]:
        if "--jetstream" in block.text:
            return {k: v for k, v in self.env.items() if k != "BLUEPULSE_RELAY"}
        return self.env

    def foreground(self, block: Block) -> None:
        proc = subprocess.Popen(
            [*BASH, block.text],
            cwd=self.cwd,
            env=self.env_for(block),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output = proc.communicate(timeout=FOREGROUND_SECONDS)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            output = proc.communicate()[0].decode(errors="replace")
            raise _failure(block, f"did not finish within {FOREGROUND_SECONDS:.0f} s", output) from None
        if proc.returncode != 0:
            raise _failure(block, f"failed (exit {proc.returncode})", output)

    def start(self, block: Block) -> None:
        if block.until is None:
            raise ReadmeCommandError(f"README.md block at line {block.line}: background needs until=PATH")
        log_path = self.logs / f"background-line-{block.line}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [*BASH, block.text],
            cwd=self.cwd,
            env=self.env_for(block),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.server = (block, proc, log_path, log)
        ready, deadline = self.cwd / block.until, time.monotonic() + READY_SECONDS
        while not (ready.is_file() and ready.stat().st_size > 0):
            if proc.poll() is not None:
                raise _failure(
                    block, f"exited ({proc.returncode}) before {block.until} appeared", _read(log_path)
                )
            if time.monotonic() > deadline:
                raise _failure(
                    block, f"did not write {block.until} within {READY_SECONDS:.0f} s", _read(log_path)
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Ctrl-C, as a user stops a server; it must exit 0 (a clean shutdown, no traceback)."""
        if self.server is None:
            return
        block, proc, log_path, log = self.server
        _signal_group(proc, signal.SIGINT)
        try:
            code = proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            raise _failure(
                block, f"did not stop within {STOP_SECONDS:.0f} s of Ctrl-C", _read(log_path)
            ) from None
        finally:
            _kill_group(proc)  # what the block left in the background (`relay … &`)
        self.server = None
        log.close()
        if code != 0:
            raise _failure(block, f"exited {code} when stopped with Ctrl-C", _read(log_path))

    def kill(self) -> None:
        if self.server is not None:
            _kill_group(self.server[1])
            self.server[3].close()
            self.server = None


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    _signal_group(proc, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def fresh_copy(dest: Path) -> Path:
    """The files git knows (untracked ones not ignored included), as a clone would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split(b"\0")):
        source = ROOT / os.fsdecode(name)
        if source.is_file():  # a file deleted in the working tree is not in a fresh clone of it
            (dest / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / os.fsdecode(name))
    if not (ROOT / ".venv" / "bin" / "bluepulse").exists():
        pytest.fail(f"{ROOT / '.venv'} is not set up: run scripts/setup")
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


@pytest.fixture
def network(tmp_path: Path) -> Iterator[str]:
    """Stands in for wss://bsky.network: the real capture played by the relay emulator."""
    port = free_port()
    argv = [
        str(ROOT / ".venv/bin/bluepulse"),
        "relay",
        "--capture",
        str(corpus_path("frames.bin.zst")),
        "--port",
        str(port),
    ]
    with (tmp_path / "network.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 20
            while not _listening(port):
                assert proc.poll() is None, _read(tmp_path / "network.log")
                assert time.monotonic() < deadline, "the stand-in relay did not listen"
                time.sleep(0.1)
            yield f"ws://127.0.0.1:{port}"
        finally:
            _kill_group(proc)


def test_every_block_is_labelled_and_only_setup_and_tests_are_skipped() -> None:
    blocks = parse(README.read_text())
    assert [b.line for b in blocks if not b.lang] == [], "label every fenced block (sh, json, text…)"
    assert {b.text.strip() for b in blocks if b.verb == "skip"} == SKIPPED
    assert all(b.lang in SHELLS for b in blocks if b.verb != "run"), "markers belong on shell blocks"
    assert all(b.until for b in blocks if b.verb == "background")
    assert sum(b.lang in SHELLS and b.verb == "run" for b in blocks) >= 5


def test_a_failing_command_fails_the_run_and_is_named(tmp_path: Path) -> None:
    runner = Runner(tmp_path, dict(os.environ), tmp_path)
    with pytest.raises(
        ReadmeCommandError, match=r"(?s)line 1 failed \(exit 3\).*command: sh -c 'echo oops >&2; exit 3'"
    ):
        runner.run(parse("```sh\ntrue\nsh -c 'echo oops >&2; exit 3'\necho never\n```\n"))
    server = "<!-- readme-test: background until=ready.txt -->\n```sh\necho starting; exit 4\n```\n"
    with pytest.raises(
        ReadmeCommandError, match=r"(?s)line 2 exited \(4\) before ready.txt appeared.*starting"
    ):
        runner.run(parse(server))


def test_every_readme_command_runs_on_a_fresh_copy(tmp_path: Path, network: str) -> None:
    checkout = fresh_copy(tmp_path / "bluepulse")
    (tmp_path / "shared").symlink_to(corpus_path("frames.bin.zst").parents[3])  # ../shared
    env = clean_env(
        PYTHONPATH=str(checkout),
        BLUEPULSE_RELAY=network,
        BLUEPULSE_METRICS_PORT=str(free_port()),
        BLUEPULSE_SNAPSHOT_INTERVAL="1",
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    Runner(checkout, env, logs).run(parse((checkout / "README.md").read_text()))
    # what the blocks were for: the demo and `run` filled their stores, the streamer wrote events
    assert (checkout / "data/demo/bluepulse.duckdb").stat().st_size > 0
    assert (checkout / "data/bluepulse.duckdb").stat().st_size > 0
    assert len((checkout / "data/try/events.jsonl").read_text().splitlines()) >= 5
    jetstream = (checkout / "data/try-jetstream/events.jsonl").read_text().splitlines()
    assert len(jetstream) >= 5
    assert all('"source":"jetstream2@127.0.0.1:8766"' in line for line in jetstream)
    assert (checkout / "data/demo-events.csv").read_text().startswith("seq,")
