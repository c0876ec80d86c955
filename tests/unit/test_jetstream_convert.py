"""The emulator converts relay frames as production Jetstream does: the real window against the
events production Jetstream v1 sent for the same window (expected_v1.jsonl, the oracle)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.car import commit_frame, identity_frame, info_frame, sync_frame
from relay.jetstream_convert import Pending, cid_string, convert_frame, go_json, wire_time

FIELDS = ("did", "kind")
COMMIT_FIELDS = ("rev", "operation", "collection", "rkey", "cid")


def converted(frames: list[bytes]) -> list[Pending]:
    return [event for frame in frames for event in convert_frame(frame)]


def v1_events(frames: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for i, event in enumerate(converted(frames)):
        text = event.v1(i + 1, 1_783_175_888_000_000 + i)
        if text is not None:
            out.append(json.loads(text))
    return out


def raw_record(line: str) -> str | None:
    """The record's JSON text exactly as written on the wire."""
    at = line.find('"record":')
    return line[at + len('"record":') : line.rindex(',"cid"')] if at >= 0 else None


def test_the_real_window_converts_to_production_s_events(
    real_frames: list[bytes], expected_v1: list[dict[str, Any]]
) -> None:
    got = v1_events(real_frames)
    assert len(got) == len(expected_v1) == 152
    for ours, theirs in zip(got, expected_v1, strict=True):
        assert [ours[f] for f in FIELDS] == [theirs[f] for f in FIELDS]
        kind = theirs["kind"]
        if kind == "commit":
            assert [ours["commit"].get(f) for f in COMMIT_FIELDS] == [
                theirs["commit"].get(f) for f in COMMIT_FIELDS
            ]
            assert ours["commit"].get("record") == theirs["commit"].get("record")
        else:
            assert ours[kind] == theirs[kind]  # the upstream event verbatim, its own seq and time
    kinds = [e["kind"] for e in got]
    assert (kinds.count("identity"), kinds.count("account")) == (1, 1)


def test_record_text_is_byte_identical_to_production(real_frames: list[bytes]) -> None:
    from tests.conftest import corpus_path

    expected = [raw_record(line) for line in corpus_path("expected_v1.jsonl").read_text().splitlines()]
    ours = [raw_record(e.v1(1, 1).decode()) for e in converted(real_frames) if e.v1(1, 1) is not None]
    assert ours == expected  # key order, blob field order, `&` escaped as \\u0026: as Go writes them
    assert any("\\u0026" in r for r in ours if r)


def test_v2_frames_wrap_each_kind_as_the_lexicon_says(real_frames: list[bytes]) -> None:
    events = converted(real_frames)
    commit = next(e for e in events if e.kind == "commit" and e.record is not None)
    frame = json.loads(commit.v2(7, 1_783_175_888_085_434))
    assert frame["$type"] == "message"
    payload = frame["payload"]
    assert payload["$type"] == "network.bsky.jetstream.subscribeEvents#commit"
    assert list(payload) == sorted(payload)  # the generated encoder's field order
    assert (payload["seq"], payload["time"]) == (7, "2026-07-04T14:38:08.085434Z")
    assert payload["cid"].startswith("bafyrei")
    assert isinstance(payload["record"], dict)
    identity = next(e for e in events if e.kind == "identity")
    wrapped = json.loads(identity.v2(8, 1_783_175_888_384_849))["payload"]
    assert wrapped["identity"] == {
        "did": "did:plc:hqvhxrowqbemo5e4wjnj6zao",
        "seq": 31527015470,  # the relay's seq and time, not Jetstream's
        "time": "2026-07-04T14:38:07.877Z",
    }
    assert (wrapped["seq"], wrapped["did"]) == (8, "did:plc:hqvhxrowqbemo5e4wjnj6zao")
    delete = next(e for e in events if e.operation == "delete")
    assert {"record", "cid"}.isdisjoint(json.loads(delete.v2(9, 1))["payload"])


def test_sync_is_v2_only_and_its_blocks_are_bytes() -> None:
    (event,) = convert_frame(sync_frame(5, "did:plc:sync", time="2026-07-04T14:38:07.877Z"))
    assert event.v1(1, 1) is None
    payload = json.loads(event.v2(1, 1))["payload"]
    assert payload["$type"].endswith("#sync")
    assert set(payload["sync"]["blocks"]) == {"$bytes"}
    assert not payload["sync"]["blocks"]["$bytes"].endswith("=")  # unpadded, as atproto JSON


def test_links_bytes_and_bad_ops() -> None:
    record = {"$type": "x.y.z", "data": b"\x00\x01\x02\x03", "text": "a<b>&c"}
    frame = commit_frame(1, "did:plc:a", [("create", "x.y.z/k1", record), ("create", "bad path", record)])
    (event,) = convert_frame(frame)  # the op with an invalid path is dropped alone
    assert event.record == '{"$type":"x.y.z","data":{"$bytes":"AAECAw"},"text":"a\\u003cb\\u003e\\u0026c"}'
    assert convert_frame(info_frame("OutdatedCursor")) == []
    assert convert_frame(b"\xff garbage") == []
    assert convert_frame(identity_frame(2, "did:plc:a", "a.example"))[0].kind == "identity"


@pytest.mark.parametrize(
    ("value", "text"),
    [({"b": 1, "a": [True, None]}, '{"a":[true,null],"b":1}'), ("\u2028é", '"\\u2028é"')],
)
def test_go_json(value: object, text: str) -> None:
    assert go_json(value) == text


def test_cid_strings_and_times() -> None:
    assert cid_string(b"\x01\x71\x12\x20" + bytes(32)).startswith("bafyrei")
    assert cid_string(b"\x12\x20" + bytes(32)).startswith("Qm")  # a CIDv0 is base58btc
    assert wire_time(1_783_175_888_000_001) == "2026-07-04T14:38:08.000001Z"
