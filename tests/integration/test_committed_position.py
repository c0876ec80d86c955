"""`bluepulse_aggregator_last_seq` is the position committed in DuckDB: frames that carry no
tracked event advance it too, so streamer seq − aggregator seq is the real lag."""

from __future__ import annotations

from pathlib import Path

import duckdb

from aggregator.schema_sql import MIGRATIONS
from aggregator.store import PartitionBatch, Store
from relay.emulator import RelayEmulator
from tests.integration.test_run_pipeline import RunProcess, play_to_end, scenario
from tests.integration.test_streamer_out import quiet_tail
from tests.support.ports import free_port


async def test_aggregator_last_seq_reaches_the_saved_cursor_after_quiet_frames(tmp_path: Path) -> None:
    s = scenario()
    last_event_seq = s.seq - 1  # the status change; the scenario's last frame concerns nobody
    quiet_tail(s, 20)
    async with RelayEmulator() as relay, RunProcess(tmp_path, relay.url, free_port()) as run:
        await play_to_end(relay, run, s)  # the streamer flushed (= committed) up to s.seq
        metrics = await run.wait_metric(f'bluepulse_aggregator_last_seq{{source="relay"}} {float(s.seq)}')
        assert run.stop() == 0
    assert f"bluepulse_streamer_last_seq {float(s.seq)}" in metrics
    assert int((tmp_path / "state" / "cursor").read_text()) == s.seq
    with duckdb.connect(str(run.db), read_only=True) as con:
        row = con.execute(
            "SELECT seq, committed_seq FROM source_positions WHERE partition = 'queue' AND source = 'relay'"
        ).fetchone()
    assert row is not None
    assert row[0] == last_event_seq < s.seq  # the dedup watermark stays at the last event
    assert row[1] == s.seq


def test_a_version_1_store_opens_and_its_committed_position_starts_at_its_watermark(tmp_path: Path) -> None:
    path = tmp_path / "v1.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
        for statement in MIGRATIONS[1]:
            con.execute(statement)
        con.execute("INSERT INTO schema_version VALUES (1, now()::TIMESTAMP)")
        con.execute("INSERT INTO positions VALUES ('topic/0', 12, 500, 3), ('topic/1', 7, 480, 0)")
    with Store.open(path) as store:
        assert store.committed_seqs() == {"relay": 500}
        assert store.positions()["topic/1"].sources["relay"].committed == 480
        store.apply({"topic/1": PartitionBatch((), next_offset=9, marks={"relay": 650})})
        assert store.committed_seqs() == {"relay": 650}
    with Store.open(path) as store:
        position = store.positions()["topic/1"]
    relay = position.sources["relay"]
    assert (position.next_offset, relay.seq, relay.idx, relay.committed) == (9, 480, 0, 650)
