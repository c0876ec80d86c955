"""Watch terms end to end (issue 16): a real `bluepulse run` reads the relay or the Jetstream
emulator; posts by untracked authors that name a tracked account (by its accounts-file terms or
the --terms-file ones) become rows of the `mentions` view and the per-account counter on
/metrics, a post that also tags the account counting once (as a mention)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb
import pytest

from relay.emulator import RelayEmulator
from relay.jetstream_emulator import JetstreamEmulator
from relay.script import FrameScript
from tests.integration.harness import A, B, X, Y
from tests.support.ports import free_port
from tests.support.processes import ChildProcess, bluepulse_argv, metrics_text, parse_metrics

ACCOUNTS_CSV = (
    "did,handle,name,category,terms\n"
    f'{A},chu-toulouse.fr,CHU de Toulouse,CHU,"CHU de Toulouse;CHU Toulouse;#CHUToulouse"\n'
    f"{B},aphp.fr,AP-HP,CHU,AP-HP\n"
)
TERMS_CSV = "term,account\nHôpital Necker,aphp.fr\n#APHP,did:plc:bbbbbbbbbbbbbbbbbbbbbbbb\n"


def scenario() -> FrameScript:
    s = FrameScript()
    s.post(X, "Six heures d'attente aux urgences du chu de toulouse")
    s.post(Y, "#CHUToulouse merci aux soignants")
    s.post(X, "Le CHU Toulouse encore en grève", mentions=(A,))  # tagged: a mention, not twice
    s.post(Y, "À l'hopital necker depuis ce matin")  # the terms file, no accent
    s.post(X, "Grève #APHP et #CHUToulouse")  # both accounts
    s.post(Y, "Le CHUV de Lausanne n'a rien à voir")  # not a word match
    s.post(A, "Le CHU de Toulouse recrute")  # the account naming itself
    s.like(X, f"at://{Y}/app.bsky.feed.post/3kzz")  # concerns nobody
    return s


EXPECTED_ROWS = [
    ("chu-toulouse.fr", "CHU de Toulouse", X),
    ("chu-toulouse.fr", "#CHUToulouse", Y),
    ("aphp.fr", "Hôpital Necker", Y),
    ("chu-toulouse.fr", "#CHUToulouse", X),
    ("aphp.fr", "#APHP", X),
]


class NamedRun(ChildProcess):
    def __init__(self, tmp: Path, url: str, port: int, *, jetstream: bool) -> None:
        self.db, self.port = tmp / "bluepulse.duckdb", port
        (tmp / "accounts.csv").write_text(ACCOUNTS_CSV)
        (tmp / "terms.csv").write_text(TERMS_CSV)
        source = ["--jetstream", url, "--jetstream-compress", "off"] if jetstream else ["--relay", url]
        argv = bluepulse_argv(
            "run",
            *source,
            "--accounts",
            str(tmp / "accounts.csv"),
            "--terms-file",
            str(tmp / "terms.csv"),
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
        )
        super().__init__("run", argv, tmp / "run.log")

    async def metrics(self, needle: str, timeout: float = 20.0) -> dict[str, float]:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    text = await asyncio.to_thread(metrics_text, self.port)
                    if needle in text:
                        return parse_metrics(text)
                except OSError:
                    pass
                assert self.running, self.output()
                await asyncio.sleep(0.1)


def counter(metrics: dict[str, float], name: str, account: str) -> float:
    return metrics[f'{name}{{account="{account}",category="CHU"}}']


@pytest.mark.parametrize("wire", ["relay", "jetstream"])
async def test_posts_naming_an_account_reach_the_mentions_view_and_metrics(tmp_path: Path, wire: str) -> None:
    s = scenario()
    emulator = JetstreamEmulator() if wire == "jetstream" else RelayEmulator()
    async with emulator:
        run = NamedRun(tmp_path, emulator.url, free_port(), jetstream=wire == "jetstream").start()
        try:
            await run.metrics("bluepulse_streamer_frames_received_total")
            async with asyncio.timeout(20):
                await emulator.wait_for_connections(1)
            for frame in s.frames:
                if isinstance(emulator, JetstreamEmulator):
                    emulator.publish_relay_frame(frame)
                else:
                    emulator.publish(frame)
            name = "bluepulse_account_mentions_by_name_total"
            metrics = await run.metrics(f'{name}{{account="chu-toulouse.fr",category="CHU"}} 3.0')
            metrics = await run.metrics(f'{name}{{account="aphp.fr",category="CHU"}} 2.0')
            assert run.stop() == 0
        finally:
            run.close()
    assert counter(metrics, name, "chu-toulouse.fr") == 3
    assert counter(metrics, name, "aphp.fr") == 2
    assert counter(metrics, "bluepulse_account_mentions_received_total", "chu-toulouse.fr") == 1
    with duckdb.connect(str(run.db), read_only=True) as con:
        rows = con.execute(
            "SELECT handle, term, author, text, uri, did FROM mentions ORDER BY time, did"
        ).fetchall()
        totals = con.execute(
            "SELECT handle, mentions, mentions_by_name FROM account_totals ORDER BY did"
        ).fetchall()
        windowed = con.execute(
            "SELECT did, mentions_by_name FROM account_window WHERE \"window\" = '1h' ORDER BY did"
        ).fetchall()
    assert [(handle, term, author) for handle, term, author, *_ in rows] == EXPECTED_ROWS
    assert rows[0][3] == "Six heures d'attente aux urgences du chu de toulouse"
    assert all(uri.startswith(f"at://{author}/app.bsky.feed.post/") for _, _, author, _, uri, _ in rows)
    assert totals == [("chu-toulouse.fr", 1, 3), ("aphp.fr", 0, 2)]
    assert windowed == [(A, 3), (B, 2)]
