"""`bluepulse run` end to end: relay emulator → streamer → queue → aggregator → DuckDB + /metrics."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import duckdb

from relay.emulator import RelayEmulator
from relay.script import FrameScript
from tests.integration.harness import ACCOUNTS, A, B, X, Y
from tests.support.ports import free_port
from tests.support.processes import ChildProcess, bluepulse_argv, clean_env, metrics_text

TOTALS_SQL = (
    "SELECT did, handle, posts, likes, reposts, replies, quotes, follows_gained, follows_lost "
    "FROM account_totals ORDER BY did"
)


def scenario() -> FrameScript:
    s = FrameScript()
    post_a, post_b = s.post(A, "Vaccination"), s.post(B, "Canicule")
    likes = [s.like(actor, post_a) for actor in (X, Y)]
    s.delete(likes[0])  # un-like
    s.like(X, post_b)
    reposts = [s.repost(X, post_a), s.repost(Y, post_b)]
    s.delete(reposts[1])  # un-repost
    s.post(X, "merci", reply_to=post_a)
    s.post(Y, "voir", quote=post_b, mentions=(A,))
    follows = [s.follow(X, A), s.follow(Y, A), s.follow(X, B)]
    s.delete(follows[1])  # unfollow
    extra = s.post(A, "à supprimer")
    s.like(Y, extra)
    s.delete(extra)  # the author deletes: posts go down, the like stays
    s.handle(A, "chu-nouveau.fr")
    s.status(B, False, "deactivated")
    s.like(X, f"at://{Y}/app.bsky.feed.post/3kzz")  # concerns nobody tracked
    return s


EXPECTED = [
    # did, handle, posts, likes, reposts, replies, quotes, follows_gained, follows_lost
    (A, "chu-nouveau.fr", 1, 2, 1, 1, 0, 2, 1),
    (B, "ars.fr", 1, 1, 0, 0, 1, 1, 0),
]


def write_accounts(path: Path) -> Path:
    lines = ["did,handle,name,category,followers"]
    lines += [f"{a.did},{a.handle},{a.name},{a.category},{1000 * (i + 1)}" for i, a in enumerate(ACCOUNTS)]
    path.write_text("\n".join(lines) + "\n")
    return path


class RunProcess(ChildProcess):
    """`bluepulse run` as a real process, as a user starts it."""

    def __init__(self, tmp: Path, relay_url: str, port: int) -> None:
        self.db = tmp / "bluepulse.duckdb"
        self.port = port
        super().__init__(
            "run",
            bluepulse_argv(
                "run",
                "--relay",
                relay_url,
                "--accounts",
                str(write_accounts(tmp / "accounts.csv")),
                "--state-dir",
                str(tmp / "state"),
                "--db",
                str(self.db),
                "--metrics-port",
                str(port),
                "--checkpoint-interval",
                "0.1",
                "--snapshot-interval",
                "0.2",
            ),
            tmp / "run.log",
        )

    async def __aenter__(self) -> RunProcess:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        """A failed test must not leave the process running."""
        self.close()

    def metrics(self) -> str:
        return metrics_text(self.port)

    async def wait_metric(self, needle: str, timeout: float = 20.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    text = await asyncio.to_thread(self.metrics)
                    if needle in text:
                        return text
                except OSError:
                    pass
                assert self.running, self.output()
                await asyncio.sleep(0.1)


async def play_to_end(relay: RelayEmulator, run: RunProcess, s: FrameScript) -> None:
    """Publish the scenario once `run` is connected; return when every event is flushed
    (= committed to DuckDB in `run`)."""
    await run.wait_metric("bluepulse_streamer_frames_received_total")
    async with asyncio.timeout(20):
        await relay.wait_for_connections(1)
    for frame in s.frames:
        relay.publish(frame)
    await run.wait_metric(f"bluepulse_streamer_last_seq {float(s.seq)}")


def sample(metrics: str, name: str, account: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + "{") and f'account="{account}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} for {account} not exposed")


async def test_run_counts_every_kind_exactly_in_duckdb_and_on_metrics(tmp_path: Path) -> None:
    s = scenario()
    async with RelayEmulator() as relay, RunProcess(tmp_path, relay.url, free_port()) as run:
        await play_to_end(relay, run, s)
        committed = f'bluepulse_aggregator_last_seq{{source="relay"}} {float(s.seq)}'
        await run.wait_metric(committed)  # the committed position
        # signals are recomputed at most every 2 s: wait for the deactivation to show
        metrics = await run.wait_metric('bluepulse_account_active{account="ars.fr"} 0.0')
        assert run.stop() == 0
    assert sample(metrics, "bluepulse_account_likes_net", "chu-nouveau.fr") == 2
    assert sample(metrics, "bluepulse_account_follows_gained_total", "chu-nouveau.fr") == 2
    assert sample(metrics, "bluepulse_account_quotes_received_total", "ars.fr") == 1
    assert sample(metrics, "bluepulse_account_active", "ars.fr") == 0
    assert sample(metrics, "bluepulse_account_handle_changes_24h", "chu-nouveau.fr") == 1
    with duckdb.connect(str(run.db), read_only=True) as con:
        assert con.execute(TOTALS_SQL).fetchall() == EXPECTED
        mentions = con.execute("SELECT mentions FROM account_totals WHERE did = ?", [A]).fetchone()
        rate = con.execute(
            "SELECT interactions, interaction_rate FROM account_window WHERE did = ? AND \"window\" = '24h'",
            [A],
        ).fetchone()
    assert mentions == (1,)
    assert rate == (4, 4 / 1000)  # (likes 2 + reposts 1 + replies 1 + quotes 0) / 1000 followers
    assert sample(metrics, "bluepulse_account_followers", "chu-nouveau.fr") == 1000
    assert (tmp_path / "state" / "cursor").read_text().strip() == str(s.seq)


def bluepulse_sql(db: Path, query: str) -> subprocess.CompletedProcess[str]:
    argv = bluepulse_argv("sql", "--db", str(db), "--format", "csv", query)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env(), check=False)


async def test_sql_answers_while_run_is_writing_and_refuses_writes(tmp_path: Path) -> None:
    s = scenario()
    async with RelayEmulator() as relay, RunProcess(tmp_path, relay.url, free_port()) as run:
        await play_to_end(relay, run, s)
        await asyncio.sleep(0.5)  # one snapshot interval
        answer = await asyncio.to_thread(
            bluepulse_sql, run.db, "SELECT handle, likes FROM account_totals ORDER BY did"
        )
        refused = await asyncio.to_thread(bluepulse_sql, run.db, "COPY account_totals TO '/tmp/x.csv'")
        still_running = run.proc is not None and run.proc.poll() is None
        assert run.stop() == 0
    assert still_running
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ["handle,likes", "chu-nouveau.fr,2", "ars.fr,1"]
    assert "snapshot" in answer.stderr
    assert refused.returncode == 2
    assert "refused" in refused.stderr
