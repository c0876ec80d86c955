"""AppView test helpers: what people paste for each emulated account, and `bluepulse` run as a
process beside an emulator served by the test's own event loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from appview.scenario import World
from schemas.accounts import Account, write_accounts
from tests.support.processes import bluepulse_argv, clean_env


def pasted_forms(world: World) -> list[str]:
    """One pasted form per account, cycling through what people paste."""
    forms = []
    for i, a in enumerate(world.accounts):
        post = next((e.uri for e in world.feeds[a.did] if not e.repost_of_others), None)
        rkey = post.rsplit("/", 1)[1] if post else "3lb5bb6qehw22"
        forms.append(
            [
                a.handle,
                "@" + a.handle.upper(),
                f"https://bsky.app/profile/{a.handle}",
                f"https://bsky.app/profile/{a.did}",
                f"https://bsky.app/profile/{a.handle}/post/{rkey}",
                a.did,
                f" <@{a.handle}>, ",
            ][i % 7]
        )
    return forms


def accounts_file(path: Path, world: World, *, followers: bool = False) -> Path:
    """The world's accounts as a tracked-accounts file (no follower baseline unless asked)."""
    rows = [
        Account(a.did, a.handle, a.display_name, "CHU", "", a.followers if followers else None)
        for a in world.accounts
    ]
    write_accounts(path, rows)
    return path


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


async def bluepulse(*args: str, timeout: float = 120.0) -> Done:
    """`bluepulse ARGS` as a process; the test's loop keeps serving the emulator meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        *bluepulse_argv(*args),
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())
