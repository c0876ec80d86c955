"""The decoder against production Jetstream's reading of the same real relay frames."""

from __future__ import annotations

from typing import Any

from schemas import Direction, Event
from streamer.filter import DELETES_ONLY, DID_TOKEN, MENTIONS, SKIP, FrameFilter
from streamer.frames import decode_envelope
from streamer.records import Memory, frame_events

KEPT = {"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.feed.repost", "app.bsky.graph.follow"}


def _decode_all(frames: list[bytes], tracked: set[str]) -> list[Event]:
    memory: dict[tuple[str, str], Memory] = {}
    flt = FrameFilter(tracked)
    events: list[Event] = []
    for frame in frames:
        verdict = flt.classify(frame)
        if verdict == SKIP:
            continue
        env = decode_envelope(frame)
        result = frame_events(env, tracked, lambda a, p: memory.get((a, p)), need_records=verdict == MENTIONS)
        assert result.skipped == []
        memory.update({(a, p): m for a, p, m in result.remember})
        for actor, _, _ in result.remember:
            flt.add_rememberer(actor)
        events.extend(result.events)
    return events


def _expected_key(line: dict[str, Any]) -> tuple[Any, ...]:
    if line["kind"] != "commit":
        return (line["kind"], line["did"])
    c = line["commit"]
    record = c.get("record") or {}
    subject = record.get("subject")
    subject_ref = subject.get("uri") if isinstance(subject, dict) else subject
    if c["collection"] == "app.bsky.feed.post":
        subject_ref = record.get("reply", {}).get("parent", {}).get("uri")
    return (
        c["collection"],
        line["did"],
        c["rkey"],
        c["operation"],
        record.get("createdAt"),
        record.get("text"),
        subject_ref,
    )


def _event_key(event: Event) -> tuple[Any, ...]:
    if event.kind.value in ("handle", "account"):
        return ("identity" if event.kind.value == "handle" else "account", event.actor_did)
    assert event.uri is not None
    _, _, actor, collection, rkey = event.uri.split("/")
    subject_ref = event.target_did if collection.endswith("follow") else event.subject_uri
    if event.action.value == "delete":
        return (collection, actor, rkey, "delete", None, None, None)
    return (
        collection,
        actor,
        rkey,
        event.action.value,
        event.created_at,
        event.text,
        subject_ref,
    )


def test_every_tracked_commit_matches_production_jetstream_one_to_one(
    real_frames: list[bytes], expected_v1: list[dict[str, Any]], real_dids: set[str]
) -> None:
    events = _decode_all(real_frames, real_dids)
    by_events = [e for e in events if e.direction is Direction.BY]
    expected = [
        line for line in expected_v1 if line["kind"] != "commit" or line["commit"]["collection"] in KEPT
    ]
    assert len(by_events) == len(expected) == 149
    assert sorted(map(_event_key, by_events)) == sorted(map(_expected_key, expected))


def test_frames_are_skipped_without_decoding_when_nobody_is_tracked(
    real_frames: list[bytes],
) -> None:
    flt = FrameFilter(["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"])
    verdicts = [flt.classify(f) for f in real_frames]
    # only non-commit frames (identity, account) survive: no repo has remembered paths
    assert verdicts.count(SKIP) == 150 - 2
    assert _decode_all(real_frames, {"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}) == []


def test_engagement_to_a_tracked_post_is_found_in_other_repos(
    real_frames: list[bytes], expected_v1: list[dict[str, Any]]
) -> None:
    liked = [
        line["commit"]["record"]["subject"]["uri"]
        for line in expected_v1
        if line["kind"] == "commit" and line["commit"]["collection"] == "app.bsky.feed.like"
    ]
    author = liked[0].split("/")[2]
    events = _decode_all(real_frames, {author})
    to_events = [e for e in events if e.direction is Direction.TO and e.kind.value == "like"]
    assert to_events
    assert all(e.subject_did == author and e.actor_did != author for e in to_events)
    assert liked[0] in {e.subject_uri for e in to_events}


def test_the_bounded_scan_never_skips_a_frame_with_events(real_frames: list[bytes]) -> None:
    """Every DID of every real frame, tracked alone: the fast path keeps each frame that
    yields an event (DIDs it may skip sit before a record's $type: `via`, `text`)."""
    with_events = 0
    for frame in real_frames:
        env = decode_envelope(frame)
        for did in {d.decode() for d in DID_TOKEN.findall(frame)}:
            if frame_events(env, {did}, lambda a, p: None).events:
                assert FrameFilter([did]).classify(frame) == MENTIONS, (did, env.body.get("ops"))
                with_events += 1
    assert with_events > 250


def test_a_delete_is_kept_only_for_repos_with_remembered_paths(real_frames: list[bytes]) -> None:
    deleters = [f for f in real_frames if b"\x66delete" in f]
    assert len(deleters) == 4
    repo = decode_envelope(deleters[0]).body["repo"]
    flt = FrameFilter(["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"])
    assert flt.classify(deleters[0]) == SKIP
    flt.add_rememberer(repo)
    assert flt.classify(deleters[0]) == DELETES_ONLY
