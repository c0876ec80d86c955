"""Who owes which messages of a partition after a crash or a handoff (aggregator/handoff.py)."""

from __future__ import annotations

from aggregator.handoff import MAX_STINTS, PREFIX, Settlement, Stint, parse, render, settle

A, B, C = "aaaa000000000001", "bbbb000000000002", "cccc000000000003"


def test_stints_round_trip_through_the_commit_metadata() -> None:
    stints = [Stint(A, 0), Stint(B, 150), Stint(A, 4_000_000_000)]
    assert parse(render(stints)) == stints
    assert len(render(stints).encode()) < 100


def test_the_history_keeps_the_newest_stints_under_the_broker_limit() -> None:
    many = [Stint(f"{n:016x}", n * 10) for n in range(100)]
    kept = parse(render(many))
    assert kept == many[-MAX_STINTS:]
    assert len(render(many).encode()) < 1024  # offset.metadata.max.bytes is 4096


def test_metadata_of_other_tools_or_older_versions_is_not_read_as_stints() -> None:
    assert parse(None) is None
    assert parse("") is None
    assert parse("consumer-x") is None
    assert parse(PREFIX + "no-offset") is None
    assert parse(PREFIX + "x@-1") is None


def test_a_restart_of_the_last_committer_resumes_at_its_file() -> None:
    """Killed between its offset commit (150) and COMMIT (file at 100): its own to consume."""
    assert settle(A, 100, 150, [Stint(A, 0)], holds=True) == Settlement(None, 100, True)
    assert settle(A, 150, 150, [Stint(A, 0)], holds=True) == Settlement(None, 150, True)


def test_the_last_committer_not_holding_the_partition_applies_what_it_owes() -> None:
    assert settle(A, 100, 150, [Stint(A, 0)], holds=False) == Settlement((100, 150), 150, True)
    assert settle(A, 150, 150, [Stint(A, 0)], holds=False) == Settlement(None, 150, True)


def test_the_next_owner_starts_at_the_group_commit_and_the_crashed_file_owes_the_gap() -> None:
    # B took the partition at A's commit (150); A's file ended at 100: A owes 100..149
    stints = [Stint(A, 0), Stint(B, 150)]
    assert settle(B, None, 300, stints, holds=True) == Settlement(None, 150, True)
    assert settle(A, 100, 300, stints, holds=False) == Settlement((100, 150), 300, True)
    assert settle(A, 100, 300, stints, holds=True) == Settlement((100, 150), 300, True)
    # once applied, the file stores 150: nothing more is owed, whatever happens next
    assert settle(A, 150, 300, stints, holds=False) == Settlement(None, 300, True)
    assert settle(A, 150, 900, [*stints, Stint(C, 400)], holds=True) == Settlement(None, 900, True)


def test_the_debt_is_read_through_a_chain_of_later_owners() -> None:
    stints = [Stint(A, 0), Stint(B, 150), Stint(C, 400), Stint(B, 700)]
    assert settle(A, 100, 900, stints, holds=False).owed == (100, 150)
    assert settle(C, 650, 900, stints, holds=False).owed == (650, 700)
    assert settle(B, 700, 900, stints, holds=True) == Settlement(None, 700, True)


def test_a_crash_before_the_first_commit_of_a_file_owes_its_whole_stint() -> None:
    assert settle(A, None, 90, [Stint(A, 40)], holds=False) == Settlement((40, 90), 90, True)
    assert settle(A, None, 90, [Stint(A, 40)], holds=True) == Settlement(None, 40, True)
    assert settle(A, None, 200, [Stint(A, 40), Stint(B, 90)], holds=False).owed == (40, 90)


def test_an_earlier_stint_of_the_file_was_settled_when_the_later_one_began() -> None:
    # A stored 100 in its first stint, B took 100..399, A came back at 400 and crashed at 450
    stints = [Stint(A, 0), Stint(B, 100), Stint(A, 400)]
    assert settle(A, 100, 500, stints, holds=False) == Settlement((400, 500), 500, True)


def test_without_a_history_naming_the_file_the_later_offset_wins_and_is_reported() -> None:
    assert settle(A, 100, 150, None, holds=True) == Settlement(None, 150, False)
    assert settle(A, 150, 100, None, holds=True) == Settlement(None, 150, True)
    assert settle(A, 100, 150, [Stint(B, 150)], holds=True) == Settlement(None, 150, False)
    assert settle(A, None, 150, [Stint(B, 0)], holds=True) == Settlement(None, 150, True)
    assert settle(A, 100, None, None, holds=True) == Settlement(None, 100, True)
    assert settle(A, None, None, None, holds=True) == Settlement(None, None, True)


def test_a_successor_that_started_inside_the_file_is_reported() -> None:
    """Files of DuckDB-first versions: a crash between the commits doubled a batch."""
    assert settle(A, 150, 300, [Stint(A, 0), Stint(B, 100)], holds=False) == Settlement(None, 300, False)
