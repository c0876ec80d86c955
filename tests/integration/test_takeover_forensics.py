"""Seed-002 takeover through `bluepulse run` with the relay and PLC emulators: the takeover
signal sends the aggregator to the PLC directory, `identity_history` holds the account's
operations, and /metrics shows the PDS / signing-key indicators with the evidence old → new.
An unreachable directory: the other indicators still show, the failures are counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb

from appview.plc_emulator import PlcEmulator
from relay.emulator import RelayEmulator
from relay.takeover_scenario import TakeoverScenario, takeover_scenario
from tests.support.ports import free_port
from tests.support.processes import ChildProcess, bluepulse_argv, metrics_text


class Run(ChildProcess):
    def __init__(self, tmp: Path, sc: TakeoverScenario, relay: str, plc: str) -> None:
        self.db, self.port = tmp / "bluepulse.duckdb", free_port()
        accounts = tmp / "accounts.csv"
        rows = [f"{a.did},{a.handle},{a.name},{a.category},1000" for a in sc.accounts]
        accounts.write_text("did,handle,name,category,followers\n" + "\n".join(rows) + "\n")
        argv = bluepulse_argv(
            "run",
            "--relay",
            relay,
            "--plc",
            plc,
            "--accounts",
            str(accounts),
            "--state-dir",
            str(tmp / "state"),
            "--db",
            str(self.db),
            "--metrics-port",
            str(self.port),
            "--checkpoint-interval",
            "0.1",
        )
        super().__init__("run", argv, tmp / "run.log")

    async def wait_metric(self, needle: str, timeout: float = 30.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    text = await asyncio.to_thread(metrics_text, self.port)
                    if needle in text:
                        return text
                except OSError:
                    pass
                assert self.running, self.output()
                await asyncio.sleep(0.2)


async def play(relay: RelayEmulator, run: Run, sc: TakeoverScenario) -> None:
    await run.wait_metric("bluepulse_streamer_frames_received_total")
    async with asyncio.timeout(20):
        await relay.wait_for_connections(1)
    for frame in sc.frames:
        relay.publish(frame)
    await run.wait_metric(f'bluepulse_aggregator_last_seq{{source="relay"}} {float(len(sc.frames))}')


def gauge(metrics: str, name: str, account: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + "{") and f'account="{account}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} for {account} not exposed")


async def test_takeover_signal_fetches_the_plc_log_and_exposes_the_pds_change(tmp_path: Path) -> None:
    sc = takeover_scenario()
    x, handle = sc.expected, sc.expected.handle
    async with RelayEmulator() as relay, PlcEmulator(sc.plc_logs) as plc:
        run = Run(tmp_path, sc, relay.url, plc.url).start()
        try:
            await play(relay, run, sc)
            metrics = await run.wait_metric(f'bluepulse_account_pds_changes_24h{{account="{handle}"}} 1.0')
            assert run.stop() == 0, run.output()
        finally:
            run.close()
    info = next(
        line for line in metrics.splitlines() if line.startswith("bluepulse_account_identity_change_info{")
    )
    for label, value in (
        ("account", handle),
        ("did", x.did),
        ("old_pds", x.old_pds),
        ("new_pds", x.new_pds),
        ("old_key", x.old_key),
        ("new_key", x.new_key),
        ("changed_at", x.changed_at.strftime("%Y-%m-%dT%H:%M:%SZ")),
    ):
        assert f'{label}="{value}"' in info, info
    assert gauge(metrics, "bluepulse_account_signing_key_changes_24h", handle) == 1
    assert gauge(metrics, "bluepulse_account_odd_hour_posts_1h", handle) == x.night_posts
    assert gauge(metrics, "bluepulse_account_pds_changes_24h", "ars-exemple-occitanie.bsky.social") == 0
    assert 'bluepulse_plc_fetches_total{outcome="ok"} 1.0' in metrics
    # only the flagged account was looked up: its log, nobody else's
    assert [c.nsid for c in plc.calls] == [f"/{x.did}/log/audit"]
    with duckdb.connect(str(run.db), read_only=True) as con:
        rows = con.execute(
            "SELECT did, pds, signing_key, handle, nullified FROM identity_history ORDER BY time"
        ).fetchall()
    assert len(rows) == x.identity_rows
    assert {r[0] for r in rows} == {x.did}
    assert [r[1] for r in rows] == [x.old_pds, x.old_pds, x.new_pds]
    assert rows[-1][2:] == (x.new_key, handle, False)


async def test_unreachable_plc_keeps_the_other_indicators_and_counts_the_failures(tmp_path: Path) -> None:
    sc = takeover_scenario()
    handle = sc.expected.handle
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with RelayEmulator() as relay:
        run = Run(tmp_path, sc, relay.url, nobody).start()
        try:
            await play(relay, run, sc)
            metrics = await run.wait_metric('bluepulse_plc_fetches_total{outcome="failed"} 1.0')
            metrics = await run.wait_metric(f'bluepulse_account_odd_hour_posts_1h{{account="{handle}"}} 9.0')
            still_running = run.running
            assert run.stop() == 0, run.output()
        finally:
            run.close()
    assert still_running
    assert gauge(metrics, "bluepulse_account_activity_ratio", handle) >= 10
    assert gauge(metrics, "bluepulse_account_pds_changes_24h", handle) == 0
    assert "bluepulse_account_identity_change_info{" not in metrics
    errors = next(
        ln
        for ln in metrics.splitlines()
        if ln.startswith('bluepulse_plc_fetch_errors_total{reason="unreachable"}')
    )
    assert float(errors.rsplit(" ", 1)[1]) >= 3  # every attempt of the first fetch
    assert "identity history unavailable, retrying later" in run.output()
    with duckdb.connect(str(run.db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM identity_history").fetchone() == (0,)
