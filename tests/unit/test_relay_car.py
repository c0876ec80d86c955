"""Frames built by relay.car decode like the relay's; capture files round-trip."""

from __future__ import annotations

from pathlib import Path

import libipld
import pytest

from relay.capture import (
    CaptureWriter,
    frame_seq,
    iter_frames,
    looped,
    read_frames,
    rewrite_seq,
    write_frames,
)
from relay.car import (
    Op,
    account_frame,
    cid_for,
    commit_frame,
    error_frame,
    identity_frame,
    info_frame,
    sync_frame,
)
from relay.errors import CaptureError
from tests.conftest import corpus_path

ALICE = "did:plc:alice000000000000000000"
LIKE = {
    "$type": "app.bsky.feed.like",
    "subject": {"uri": "at://did:plc:bob/app.bsky.feed.post/3kpost", "cid": "bafyreiabc"},
    "createdAt": "2026-07-04T14:38:08.999Z",
}
POST = {"$type": "app.bsky.feed.post", "text": "hello", "createdAt": "2026-07-04T14:38:08Z"}


def test_commit_frame_decodes_like_a_relay_commit() -> None:
    ops: list[Op] = [
        ("create", "app.bsky.feed.like/3klike", LIKE),
        ("update", "app.bsky.feed.post/3kpost", POST),
        ("delete", "app.bsky.graph.follow/3kfollow", None),
    ]
    frame = commit_frame(42, ALICE, ops, time="2026-07-04T14:38:07.517Z", rev="3mptbypluud2a")
    header, body = libipld.decode_dag_cbor_multi(frame)
    assert header == {"op": 1, "t": "#commit"}
    assert body["seq"] == 42
    assert body["repo"] == ALICE
    assert body["rev"] == "3mptbypluud2a"
    assert body["time"] == "2026-07-04T14:38:07.517Z"
    assert (body["blobs"], body["rebase"], body["tooBig"]) == ([], False, False)
    assert [(op["action"], op["path"]) for op in body["ops"]] == [(a, p) for a, p, _ in ops]
    assert body["ops"][2]["cid"] is None
    car_header, blocks = libipld.decode_car(body["blocks"])
    assert car_header["roots"] == [body["commit"]]
    assert blocks[body["ops"][0]["cid"]] == LIKE
    assert blocks[body["ops"][1]["cid"]] == POST
    commit = blocks[body["commit"]]
    assert (commit["did"], commit["rev"], commit["version"]) == (ALICE, "3mptbypluud2a", 3)
    assert len(commit["sig"]) == 64
    assert commit["data"] in blocks
    assert isinstance(body["prevData"], bytes)


def test_commit_frame_keys_and_links_match_a_real_frame(real_frames: list[bytes]) -> None:
    _, real = libipld.decode_dag_cbor_multi(real_frames[0])
    _, built = libipld.decode_dag_cbor_multi(commit_frame(1, ALICE, [("create", "a/b", LIKE)]))
    assert set(built) == set(real)
    assert set(built["ops"][0]) == set(real["ops"][0])
    assert built["ops"][0]["cid"][:4] == real["ops"][0]["cid"][:4] == b"\x01\x71\x12\x20"


def test_record_block_is_keyed_by_its_sha256_cid() -> None:
    frame = commit_frame(1, ALICE, [("create", "app.bsky.feed.like/3k", LIKE)])
    _, body = libipld.decode_dag_cbor_multi(frame)
    cid = body["ops"][0]["cid"]
    assert cid == cid_for(libipld.encode_dag_cbor(LIKE))


def test_filler_blocks_grow_the_frame_without_adding_dids() -> None:
    small = commit_frame(1, ALICE, [("create", "app.bsky.feed.like/3k", LIKE)])
    big = commit_frame(1, ALICE, [("create", "app.bsky.feed.like/3k", LIKE)], filler_blocks=8)
    assert len(big) - len(small) > 4000
    assert big.count(b"did:") == small.count(b"did:")
    _, body = libipld.decode_dag_cbor_multi(big)
    assert len(libipld.decode_car(body["blocks"])[1]) == 3 + 8


def test_unknown_action_is_rejected() -> None:
    with pytest.raises(ValueError, match="action"):
        commit_frame(1, ALICE, [("upsert", "a/b", LIKE)])


def test_identity_account_sync_info_error_frames_have_relay_shapes() -> None:
    t = "2026-07-04T14:38:07.877Z"
    assert libipld.decode_dag_cbor_multi(identity_frame(7, ALICE, "alice.test", t)) == [
        {"op": 1, "t": "#identity"},
        {"did": ALICE, "seq": 7, "time": t, "handle": "alice.test"},
    ]
    assert libipld.decode_dag_cbor_multi(account_frame(8, ALICE, False, "takendown", t)) == [
        {"op": 1, "t": "#account"},
        {"did": ALICE, "seq": 8, "time": t, "active": False, "status": "takendown"},
    ]
    header, body = libipld.decode_dag_cbor_multi(sync_frame(9, ALICE, t))
    assert header == {"op": 1, "t": "#sync"}
    assert (body["did"], body["seq"], body["time"]) == (ALICE, 9, t)
    roots = libipld.decode_car(body["blocks"])[0]["roots"]
    assert libipld.decode_car(body["blocks"])[1][roots[0]]["rev"] == body["rev"]
    assert libipld.decode_dag_cbor_multi(info_frame("OutdatedCursor")) == [
        {"op": 1, "t": "#info"},
        {"name": "OutdatedCursor"},
    ]
    assert libipld.decode_dag_cbor_multi(error_frame("FutureCursor", "no")) == [
        {"op": -1},
        {"error": "FutureCursor", "message": "no"},
    ]
    assert frame_seq(info_frame("OutdatedCursor")) is None


def test_rewrite_seq_changes_only_the_seq(real_frames: list[bytes]) -> None:
    for frame in real_frames[:20] + real_frames[-2:]:
        rewritten = rewrite_seq(frame, 7)
        _, old = libipld.decode_dag_cbor_multi(frame)
        _, new = libipld.decode_dag_cbor_multi(rewritten)
        assert new["seq"] == 7
        assert {k: v for k, v in new.items() if k != "seq"} == {k: v for k, v in old.items() if k != "seq"}
        if "blocks" in old:
            assert old["blocks"] in rewritten
        assert rewrite_seq(frame, old["seq"]) == frame


def test_looped_cycles_the_window_with_consecutive_seqs(real_frames: list[bytes]) -> None:
    frames = looped(real_frames, 320, 1000)
    assert [frame_seq(f) for f in frames] == list(range(1000, 1320))
    assert rewrite_seq(frames[150], frame_seq(real_frames[0]) or 0) == real_frames[0]
    assert rewrite_seq(frames[319], frame_seq(real_frames[19]) or 0) == real_frames[19]


def test_fixture_capture_has_150_contiguous_frames(real_frames: list[bytes]) -> None:
    assert real_frames == read_frames(corpus_path("frames.bin.zst"))  # the shared fixture
    assert len(real_frames) == 150
    seqs = [frame_seq(f) for f in real_frames]
    assert seqs == list(range(31527015322, 31527015472))


@pytest.mark.parametrize("name", ["capture.bin", "capture.bin.zst"])
def test_capture_round_trips_byte_for_byte(tmp_path: Path, real_frames: list[bytes], name: str) -> None:
    path = tmp_path / name
    assert write_frames(path, real_frames[:100]) == 100
    with CaptureWriter(path) as writer:  # appending adds a second zstd frame
        for frame in real_frames[100:]:
            writer.write(frame)
    assert read_frames(path) == real_frames
    assert next(iter_frames(path)) == real_frames[0]
    if name.endswith(".zst"):
        assert path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd magic
        assert path.stat().st_size < sum(map(len, real_frames))


def test_truncated_capture_fails_loudly(tmp_path: Path, real_frames: list[bytes]) -> None:
    path = tmp_path / "cut.bin"
    write_frames(path, real_frames[:3])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CaptureError, match="truncated"):
        read_frames(path)
