"""Positions per source (design §4), the Jetstream URL rules and the --relay/--jetstream exclusion."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bluepulse.config import ConfigError, resolve
from streamer.cursor import CursorStore, cursor_name, source_id, start_cursor
from streamer.jetstream_source import query, stream_url

V2 = "/xrpc/network.bsky.jetstream.subscribeEvents"


def test_source_ids_and_cursor_files() -> None:
    assert source_id(None) == "relay"
    assert source_id("wss://jetstream2.us-east.bsky.network") == "jetstream2@jetstream2.us-east.bsky.network"
    assert source_id("ws://127.0.0.1:6008") == "jetstream2@127.0.0.1:6008"
    assert source_id("wss://jetstream1.us-west.bsky.network/subscribe") == "jetstream1"
    assert cursor_name("relay") == "cursor"
    assert cursor_name("jetstream2@127.0.0.1:6008") == "cursor.jetstream2_127.0.0.1_6008"


def test_stream_urls_and_queries_never_ask_for_dids() -> None:
    assert stream_url("wss://js.example") == f"wss://js.example{V2}"
    assert stream_url("ws://h:1/") == f"ws://h:1{V2}"
    assert stream_url("https://h/subscribe") == "wss://h/subscribe"
    v2 = query(12, v1=False, dictionary_id=7)
    assert v2.startswith("kinds=commit&kinds=identity&kinds=account&collections=app.bsky.feed.post")
    assert v2.endswith("zstdDictionary=7&cursor=12")
    assert query(None, v1=True, dictionary_id=None).startswith("wantedCollections=app.bsky.feed.post")
    assert "dids" not in v2.lower()
    assert "dids" not in query(1, v1=True, dictionary_id=None).lower()


def test_a_new_jetstream_source_starts_ten_seconds_before_the_relay_stood(tmp_path: Path) -> None:
    CursorStore.for_source(tmp_path, "relay").save(31_000_000_000, time_us=1_790_000_000_000_000)
    assert start_cursor(tmp_path, "jetstream2@h:1") == 1_790_000_000_000_000 - 10_000_000
    assert start_cursor(tmp_path, "jetstream1") == 1_790_000_000_000_000 - 10_000_000
    assert CursorStore(tmp_path).load() == 31_000_000_000  # the relay file keeps its one number
    CursorStore.for_source(tmp_path, "jetstream2@h:1").save(500, time_us=1_790_000_100_000_000)
    assert start_cursor(tmp_path, "jetstream2@h:1") is None  # its own saved position wins


def test_the_relay_without_a_cursor_warns_about_the_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    CursorStore.for_source(tmp_path, "jetstream1").save(1_790_000_000_000_000, time_us=1_790_000_000_000_000)
    with caplog.at_level(logging.WARNING, "streamer.cursor"):
        assert start_cursor(tmp_path, "relay") is None
    assert "no relay cursor" in caplog.text
    assert "cursor.jetstream1" in caplog.text


def test_jetstream_with_an_explicit_relay_is_a_configuration_error() -> None:
    flags = {"jetstream": "wss://js.example", "relay": "wss://bsky.network"}
    with pytest.raises(ConfigError, match="--relay and --jetstream"):
        resolve("run", flags, {})
    with pytest.raises(ConfigError, match="--relay and --jetstream"):
        resolve("streamer", {"jetstream": "wss://js.example"}, {"BLUEPULSE_RELAY": "wss://r.example"})
    config = resolve("run", {"jetstream": "wss://js.example", "jetstream_compress": "off"}, {})
    assert config.jetstream == "wss://js.example"  # type: ignore[union-attr]
    assert config.jetstream_compress == "off"  # type: ignore[union-attr]
