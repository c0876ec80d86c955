"""Decoding one frame is total: any bytes in → events or a skip reason (a FrameReason) out."""

from __future__ import annotations

import random
from typing import Any

import libipld
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.car import cid_for, commit_frame, dag_cbor, link
from relay.mutate import DEEP, Sample, build_car, deep_record, deep_value
from relay.mutations import MUTATIONS
from schemas import decode, encode
from streamer.cbor_bounds import MAX_DEPTH, check
from streamer.errors import BoundsError, FrameError, FrameReason
from streamer.frames import decode_blocks, decode_envelope
from streamer.records import FrameResult, frame_events

TRACKED = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
OTHER = "did:plc:xxxxxxxxxxxxxxxxxxxxxxxx"
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_frame(frame: bytes, tracked: frozenset[str] = frozenset({TRACKED, OTHER})) -> FrameResult | str:
    """The streamer's decode path for one frame: a result, or the skip reason."""
    try:
        env = decode_envelope(frame)
        return frame_events(env, tracked, lambda _a, _p: None)
    except FrameError as exc:
        reason = exc.reason
    assert reason in set(FrameReason)
    return reason


def assert_contract(result: FrameResult | str) -> None:
    """Every emitted event survives the event contract's own validation."""
    if isinstance(result, FrameResult):
        for event in result.events:
            assert decode(encode(event)) == event


# DAG-CBOR data model values: what a hostile record may hold
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.sampled_from([TRACKED, f"at://{TRACKED}/app.bsky.feed.post/3k", "app.bsky.richtext.facet#mention"]),
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
field_names = st.sampled_from(
    [
        "subject",
        "text",
        "createdAt",
        "$type",
        "reply",
        "embed",
        "facets",
        "uri",
        "parent",
        "root",
        "record",
        "external",
        "features",
        "did",
        "cid",
    ]
)
records = st.recursive(
    values,
    lambda inner: st.dictionaries(field_names, inner, max_size=6),
    max_leaves=30,
).filter(lambda v: isinstance(v, dict))
collections = st.sampled_from(
    ["app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.feed.repost", "app.bsky.graph.follow", "zz.x"]
)


def test_every_real_frame_and_record_passes_the_bounds_walk(real_frames: list[bytes]) -> None:
    for frame in real_frames:
        assert check(frame, count=2) == len(frame)
        sample = Sample.of(frame)
        for _cid, data in sample.sections:
            assert check(data) == len(data)


def test_a_200000_deep_record_is_a_too_deep_skip_not_a_recursion_error() -> None:
    frame = commit_frame(1, OTHER, [("create", "app.bsky.feed.post/3k", {"text": "x"})])
    sample = Sample.of(frame)
    hostile = sample.with_record(deep_record(DEEP))
    with pytest.raises(RecursionError):  # what killed the streamer: libipld on its own
        libipld.decode_dag_cbor(deep_record(DEEP))
    assert decode_frame(hostile) == "too_deep"
    assert decode_frame(b"\xa2at" + deep_value(DEEP)) == "too_deep"


def test_depth_up_to_the_limit_decodes_and_one_more_is_refused() -> None:
    assert check(deep_value(MAX_DEPTH)) == len(deep_value(MAX_DEPTH))
    with pytest.raises(BoundsError, match="too_deep"):
        check(deep_value(MAX_DEPTH + 1))


@given(st.binary(max_size=3000))
@FAST
def test_any_bytes_give_a_result_or_a_reason(data: bytes) -> None:
    reasons = []
    try:
        assert 0 <= check(data) <= len(data)
    except BoundsError as exc:
        reasons.append(exc.reason)
    assert_contract(decode_frame(data))
    try:
        decode_blocks({"blocks": data}, {data[:36], b"\x01q\x12 " + bytes(32)})
    except FrameError as exc:
        reasons.append(exc.reason)
    assert set(reasons) <= set(FrameReason)


@given(records, collections, st.sampled_from(["create", "update", "delete"]), st.booleans())
@FAST
def test_any_record_in_a_valid_commit_gives_events_or_op_skips(
    record: dict[str, Any], collection: str, action: str, by_tracked: bool
) -> None:
    repo = TRACKED if by_tracked else OTHER
    placeholder = commit_frame(7, repo, [(action, f"{collection}/3kabc", {"text": ""})])
    frame = Sample.of(placeholder).with_record(libipld.encode_dag_cbor(record))  # real DAG-CBOR floats
    result = decode_frame(frame, frozenset({TRACKED}))
    assert isinstance(result, FrameResult), result
    assert_contract(result)


@given(
    st.dictionaries(
        st.sampled_from(["ops", "seq", "repo", "blocks", "time", "did", "handle", "active"]), values
    ),
    st.sampled_from(["#commit", "#identity", "#account", "#sync", "#zz", ""]),
)
@FAST
def test_any_body_of_any_kind_gives_a_result_or_a_reason(body: dict[str, Any], kind: str) -> None:
    frame = libipld.encode_dag_cbor({"t": kind, "op": 1}) + libipld.encode_dag_cbor({"did": TRACKED, **body})
    assert_contract(decode_frame(frame))


@given(
    st.lists(st.fixed_dictionaries({"path": values, "action": values, "cid": values}) | values, max_size=4),
    st.lists(st.tuples(st.binary(min_size=36, max_size=36), st.binary(max_size=200)), max_size=4),
)
@FAST
def test_any_ops_and_car_sections_give_a_result_or_a_reason(ops: list[Any], sections: list[Any]) -> None:
    car = build_car(dag_cbor({"roots": [link(cid_for(b"r"))], "version": 1}), sections)
    body = {"ops": ops, "seq": 3, "repo": TRACKED, "blocks": car, "time": "2026-01-01T00:00:00Z"}
    assert_contract(decode_frame(dag_cbor({"t": "#commit", "op": 1}) + dag_cbor(body)))


@given(st.integers(0, 2**32), st.integers(0, 149), st.sampled_from(sorted(MUTATIONS)))
@settings(max_examples=400, deadline=None)
def test_mutations_of_real_frames_give_a_result_or_a_reason(
    real_frames: list[bytes], seed: int, which: int, mutation: str
) -> None:
    samples = _samples(real_frames)
    frame = MUTATIONS[mutation][0](random.Random(seed), samples[which], samples)
    assert_contract(decode_frame(frame))


_SAMPLES: list[Sample] = []


def _samples(frames: list[bytes]) -> list[Sample]:
    if not _SAMPLES:
        _SAMPLES.extend(Sample.of(frame) for frame in frames)
    return _SAMPLES
