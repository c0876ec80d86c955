"""Typed configuration: every setting once, as a field of a frozen settings group.

The only module that reads the environment (through `options.resolve_into`). A group is a set of
settings one part of the pipeline needs (source, store, transport, metrics…); a command's config
inherits the groups it uses, so `config.metrics_port` is typed and a misspelt name is a mypy
error. The argparse flags, the BLUEPULSE_* reader and the README table derive from the fields:
a new setting (Jetstream, AppView, report) is one `setting(...)` line in its group.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Final

from bluepulse import parsers as p
from bluepulse.errors import ConfigError
from bluepulse.options import (
    Config,
    Option,
    argument,
    arguments,
    collect,
    readme_table,
    repeated,
    resolve_into,
    setting,
)
from report import periods

__all__ = ["OPTIONS", "SETTINGS", "Config", "ConfigError", "Option", "resolve"]

# Settings groups, in the order of --help and of the README table.


@dataclass(frozen=True, kw_only=True)
class SourceSettings:
    """Where the firehose comes from."""

    relay: str = setting("wss://bsky.network", p.url, "relay base URL (ws://, wss://, http:// or https://)")


@dataclass(frozen=True, kw_only=True)
class JetstreamSettings:
    """Jetstream instead of the relay (streamer/jetstream_source.py)."""

    jetstream: str | None = setting(
        None,
        p.optional(p.url),
        "read Jetstream instead of the relay: ws(s)://host[:port] = v2 (e.g. "
        "wss://jetstream2.us-east.bsky.network), a URL ending in /subscribe = v1; excludes --relay",
        unset="the relay",
    )
    jetstream_compress: str = setting(
        "on",
        p.choice("on", "off"),
        "Jetstream v2 dict-zstd compression: on or off (off: plain JSON, to debug)",
    )


@dataclass(frozen=True, kw_only=True)
class TrackedSettings:
    accounts: Path = setting(Path("accounts.csv"), Path, "tracked accounts CSV")


@dataclass(frozen=True, kw_only=True)
class TermsSettings:
    """Watch terms matched in every post's text (schemas/terms.py, streamer/names.py)."""

    terms_file: Path | None = setting(
        None,
        Path,
        "watch terms kept apart from the accounts file: CSV term,account (account = DID or handle "
        "of the accounts file), added to its terms column",
        unset="the accounts file's terms column only",
    )


@dataclass(frozen=True, kw_only=True)
class StreamerSettings:
    """The streamer app: its state directory and timings."""

    state_dir: Path = setting(
        Path("data"),
        Path,
        "streamer state (cursor, memory); demo: data/demo",
        per_command={
            "demo": (
                "the demo keeps its data in <STATE-DIR>/demo, deleted and recreated at each start",
                "data, so data/demo",
            )
        },
    )
    checkpoint_interval: float = setting(1.0, p.positive, "seconds between cursor saves")
    receive_timeout: float = setting(60.0, p.positive, "seconds of relay silence before reconnecting")
    remember_days: float = setting(
        90.0, p.positive, "days a like/repost/follow path is remembered to resolve its delete"
    )


@dataclass(frozen=True, kw_only=True)
class StoreSettings:
    db: Path = setting(Path("data/bluepulse.duckdb"), Path, "DuckDB file; demo: <state-dir>/bluepulse.duckdb")


@dataclass(frozen=True, kw_only=True)
class SqlStoreSettings:
    """`bluepulse sql` reads one store file or several aggregators' files as one (aggregator/union.py)."""

    db: tuple[Path, ...] = repeated(
        (Path("data/bluepulse.duckdb"),),
        Path,
        "DuckDB file; several aggregators' files are read as one",
    )


def snapshot_path(db: Path) -> Path:
    """Where the writer keeps the read-only copy of `--db` that `bluepulse sql` opens meanwhile."""
    return db.with_name(db.stem + ".snapshot" + db.suffix)


@dataclass(frozen=True, kw_only=True)
class AggregatorSettings:
    """The aggregator app: batches, retention, snapshots."""

    batch_events: int = setting(20_000, p.positive_int, "events per DuckDB transaction, at most")
    retention_days: float = setting(90.0, p.positive, "days of event log kept")
    dedup_hours: int = setting(
        96,
        p.positive_int,
        "hours an applied event is remembered by identity (no double count when "
        "switching relay ↔ Jetstream; more than the 72 h of the longest cursor retention)",
    )
    snapshot_interval: float = setting(10.0, p.positive, "seconds between SQL snapshots")
    minute_buckets_hours: float = setting(
        3.0,
        p.at_least(1.0, "the last-hour window and signals read minute buckets"),
        "hours of per-minute account buckets kept (at least 1); older ones roll up into hour "
        "buckets (from the hour floor, at each maintenance)",
    )
    hour_buckets_days: float = setting(
        8.0,
        p.at_least(1.0, "the 24 h window reads hour buckets"),
        "days of per-hour account buckets kept (at least 1); older ones roll up into day "
        "buckets, kept forever",
    )


@dataclass(frozen=True, kw_only=True)
class QueueSettings:
    """The in-process transport of `run` and `demo`."""

    queue_size: int = setting(10_000, p.positive_int, "in-process queue bound, frames")


@dataclass(frozen=True, kw_only=True)
class MetricsSettings:
    metrics_host: str = setting("127.0.0.1", str, "address /metrics binds to")
    metrics_port: int = setting(9464, p.port, "/metrics port (0 = off)")


@dataclass(frozen=True, kw_only=True)
class OutSettings:
    out: Path | None = setting(
        None,
        Path,
        "output file (streamer: events as JSON lines; record: frames)",
        unset="none: streamer needs --out or --kafka, record needs --out",
    )


@dataclass(frozen=True, kw_only=True)
class TransportSettings:
    """The Kafka transport of `streamer` and `aggregator` (transport.kafka.KafkaSettings checks them)."""

    kafka: str | None = setting(None, str, "Kafka bootstrap HOST:PORT[,…]", unset="no Kafka")
    topic: str = setting("bluepulse.events", str, "Kafka topic")
    partitions: int = setting(6, p.positive_int, "partitions when creating the topic")
    kafka_security: str = setting(
        "PLAINTEXT",
        p.choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        "Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    kafka_sasl_mechanism: str = setting(
        "PLAIN",
        p.choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
        "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
    )
    kafka_username: str | None = setting(None, str, "SASL username", unset="no SASL login")
    kafka_password: str | None = setting(
        None, str, "SASL password (never logged)", secret=True, unset="no SASL login"
    )
    kafka_ca_file: Path | None = setting(None, Path, "CA bundle for TLS", unset="the system's CAs")


@dataclass(frozen=True, kw_only=True)
class ConsumerSettings:
    group: str = setting("bluepulse-aggregator", str, "Kafka consumer group")


@dataclass(frozen=True, kw_only=True)
class FormatSettings:
    format: str = setting(
        "table",
        p.choice("table", "csv", "json"),
        "output format: table (aligned columns), csv or json (a list of objects)",
    )


@dataclass(frozen=True, kw_only=True)
class SqlSettings:
    query: str = argument("", "one read-only statement")
    max_rows: int | None = setting(
        None,
        p.optional(p.non_negative_int),
        "rows printed at most (0 = all)",
        unset="100000 for a table on a terminal, all otherwise",
    )


@dataclass(frozen=True, kw_only=True)
class AccountsActionSettings:
    action: str = argument(
        "list",
        "list: print the accounts (see --format); check: validate the file, exit 0 or 2; "
        "add HANDLE…: look accounts up on the AppView and add them to the file; discover QUERY…: "
        "search the AppView for candidates; refresh: re-read profiles (file, store, follower history)",
        choices=("list", "check", "add", "discover", "refresh"),
    )
    targets: tuple[str, ...] = arguments(
        "add: handles, @handles, bsky.app profile URLs or DIDs; discover: search words"
    )


@dataclass(frozen=True, kw_only=True)
class AppViewSettings:
    """Bluesky's public read API (appview/): accounts, profiles, past posts."""

    appview: str = setting(
        "https://public.api.bsky.app", p.http_url, "AppView base URL (public read API, no login)"
    )


@dataclass(frozen=True, kw_only=True)
class AccountsAddSettings:
    """What `accounts add` / `discover --add` write into the accounts file."""

    from_file: Path | None = setting(
        None,
        Path,
        "accounts add: also read accounts pasted in this file (one or more a line; # comments)",
        unset="none",
    )
    category: str | None = setting(
        None, str, "accounts add / discover --add: category of the rows added", unset="empty"
    )
    region: str | None = setting(
        None, str, "accounts add / discover --add: region of the rows added", unset="empty"
    )
    add: bool = setting(
        False, p.boolean, "accounts discover: add the candidates to the accounts file", switch=True
    )


@dataclass(frozen=True, kw_only=True)
class BackfillSettings:
    """The period `bluepulse backfill` reads from the AppView."""

    start: datetime | None = setting(
        None,
        p.optional(p.moment),
        "first day (or time, UTC) of the period",
        unset="none: required",
        flag="from",
    )
    end: datetime | None = setting(
        None,
        p.optional(p.end_moment),
        "last day of the period, included (a time: excluded)",
        unset="now",
        flag="to",
    )


@dataclass(frozen=True, kw_only=True)
class LiveAppViewSettings:
    """What `bluepulse run` reads from the AppView while it runs (one writer on the DuckDB file)."""

    refresh_every: float = setting(
        6 * 3600.0,
        p.duration,
        "profiles re-read (followers history) every DURATION: 90s, 30m, 6h, 1d; 0 = off",
    )
    backfill_from: datetime | None = setting(
        None,
        p.optional(p.moment),
        "backfill the tracked accounts' posts since this date once at start, inside the process",
        unset="no backfill",
    )


def _plc(text: str) -> str:
    """A PLC directory base URL, or `off`."""
    return "off" if text.strip().lower() == "off" else p.http_url(text)


@dataclass(frozen=True, kw_only=True)
class PlcSettings:
    """Takeover forensics (aggregator/forensics.py): where DID identity histories are read."""

    plc: str | None = setting(
        None,
        p.optional(_plc),
        "PLC directory whose audit log of a DID (/<did>/log/audit; did:web: its did.json) is "
        "stored in identity_history on a handle or status change or a takeover signal; off = never",
        unset="https://plc.directory",
    )


@dataclass(frozen=True, kw_only=True)
class ReportSettings:
    """The barometer report (`bluepulse report`, report/): its period, audience and output."""

    first_day: date | None = setting(
        None,
        p.optional(periods.day),
        "report: first day of the period, included (with --to)",
        unset="none: --from/--to, --quarter or --month",
        flag="from",
    )
    last_day: date | None = setting(
        None,
        p.optional(periods.day),
        "report: last day of the period, included (with --from)",
        unset="none: --from/--to, --quarter or --month",
        flag="to",
    )
    quarter: periods.Period | None = setting(
        None, p.optional(periods.quarter), "report: a quarter, YYYYQN (2025Q1)", unset="none"
    )
    month: periods.Period | None = setting(
        None, p.optional(periods.month), "report: a month, YYYY-MM (2025-03)", unset="none"
    )
    lang: str = setting("fr", p.choice("fr", "en"), "report language: fr or en (numbers, dates, text)")
    category: str | None = setting(
        None, str, "report: only the accounts of this category", unset="every account"
    )
    accounts: Path | None = setting(
        None,
        Path,
        "report: the accounts to report on (names, categories, baseline followers)",
        unset="the accounts the store knows",
    )
    out: Path | None = setting(
        None,
        Path,
        "report: directory written (index.html, barometer.csv, top_posts.csv, charts)",
        unset="none: required",
    )


@dataclass(frozen=True, kw_only=True)
class CaptureSettings:
    """The relay emulator serving a capture (`bluepulse relay`)."""

    capture: Path | None = setting(
        None, Path, "capture file of raw frames (as written by `bluepulse record`)", unset="none: required"
    )
    host: str = setting("127.0.0.1", str, "address to bind")


@dataclass(frozen=True, kw_only=True)
class PortSettings:
    port: int = setting(
        0,
        p.port,
        "port to bind (0 = any free)",
        per_command={"demo": ("relay (or --jetstream: Jetstream) emulator port (0 = any free)", "0")},
    )


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    demo_rate: float = setting(300.0, p.positive, "frames/s the demo day is played at")
    demo_scale: float = setting(1.0, p.positive, "volume of the generated demo day")
    jetstream: bool = setting(
        False,
        p.boolean,
        "play the demo day through the built-in Jetstream emulator (v2, dict-zstd) instead of the relay one",
        switch=True,
    )


@dataclass(frozen=True, kw_only=True)
class FaultSettings:
    """How `bluepulse relay` plays a capture, faults included."""

    rate: float | None = setting(None, p.optional(p.positive), "frames/s to play", unset="all at once")
    loop: bool = setting(False, p.boolean, "replay the capture forever", switch=True)
    drop_every: int | None = setting(
        None, p.optional(p.positive_int), "fault: drop connections every N frames", unset="off"
    )
    stall_after: int | None = setting(
        None, p.optional(p.non_negative_int), "fault: go silent after N frames", unset="off"
    )
    malformed_every: int | None = setting(
        None, p.optional(p.positive_int), "fault: a malformed frame every N frames", unset="off"
    )


@dataclass(frozen=True, kw_only=True)
class JetstreamServeSettings:
    """What only the Jetstream emulator has (`bluepulse jetstream`)."""

    floor: int | None = setting(
        None,
        p.optional(p.positive_int),
        "retention floor seq: older v2 seq cursors get 400 CursorTooOld",
        unset="everything served is retained",
    )


@dataclass(frozen=True, kw_only=True)
class LimitSettings:
    limit: int | None = setting(
        None,
        p.optional(p.positive_int),
        "record: stop after N frames; accounts discover: the first N candidates (all queries together)",
        unset="no limit (record: until the relay closes or Ctrl-C; discover: 25 per query)",
    )


@dataclass(frozen=True, kw_only=True)
class RecordSettings:
    cursor: int | None = setting(
        None, p.optional(p.non_negative_int), "start cursor (relay seq)", unset="the live tip"
    )


@dataclass(frozen=True, kw_only=True)
class LogSettings:
    log_level: str = setting(
        "INFO",
        p.choice("DEBUG", "INFO", "WARNING", "ERROR"),
        "log level: DEBUG, INFO, WARNING or ERROR (any case)",
    )
    log_format: str = setting(
        "text", p.choice("text", "json"), "log format: text (key=value) or json (one object a line)"
    )


# The two apps, each the settings it reads; `run` is both, `streamer` / `aggregator` one each.


@dataclass(frozen=True, kw_only=True)
class StreamerAppSettings(
    SourceSettings, JetstreamSettings, TrackedSettings, TermsSettings, StreamerSettings
):
    pass


@dataclass(frozen=True, kw_only=True)
class AggregatorAppSettings(TrackedSettings, StoreSettings, AggregatorSettings, PlcSettings):
    pass


# One config per command: the groups it inherits are the settings it has.


@dataclass(frozen=True, kw_only=True)
class RunConfig(
    Config,
    StreamerAppSettings,
    AggregatorAppSettings,
    QueueSettings,
    MetricsSettings,
    AppViewSettings,
    LiveAppViewSettings,
    LogSettings,
):
    command = "run"
    summary = "single machine: relay → streamer → in-process queue → aggregator → DuckDB + /metrics"


@dataclass(frozen=True, kw_only=True)
class DemoConfig(
    Config,
    StreamerSettings,
    TermsSettings,
    AggregatorSettings,
    QueueSettings,
    MetricsSettings,
    PortSettings,
    DemoSettings,
    LogSettings,
):
    command = "demo"
    summary = (
        "the same pipeline offline, on the built-in relay emulator and a generated day "
        "(starts fresh each time: <state-dir>/demo is deleted and recreated)"
    )


@dataclass(frozen=True, kw_only=True)
class StreamerConfig(
    Config, StreamerAppSettings, MetricsSettings, OutSettings, TransportSettings, LogSettings
):
    command = "streamer"
    summary = "relay → tracked-account events → Kafka or a JSONL file"


@dataclass(frozen=True, kw_only=True)
class AggregatorConfig(
    Config, AggregatorAppSettings, MetricsSettings, TransportSettings, ConsumerSettings, LogSettings
):
    command = "aggregator"
    summary = "Kafka → DuckDB + /metrics"


@dataclass(frozen=True, kw_only=True)
class AccountsConfig(
    Config,
    AccountsActionSettings,
    TrackedSettings,
    AppViewSettings,
    AccountsAddSettings,
    LimitSettings,
    StoreSettings,
    FormatSettings,
    LogSettings,
):
    command = "accounts"
    summary = "list, check, add, discover or refresh the tracked accounts (add/discover/refresh: AppView)"


@dataclass(frozen=True, kw_only=True)
class BackfillConfig(Config, BackfillSettings, TrackedSettings, AppViewSettings, StoreSettings, LogSettings):
    command = "backfill"
    summary = "store the tracked accounts' posts of a period with their AppView counts (DuckDB file)"


@dataclass(frozen=True, kw_only=True)
class SqlConfig(Config, SqlSettings, SqlStoreSettings, FormatSettings, LogSettings):
    command = "sql"
    summary = "read-only SQL on the DuckDB file (works while the aggregator runs)"


@dataclass(frozen=True, kw_only=True)
class ReportConfig(Config, ReportSettings, StoreSettings, LogSettings):
    command = "report"
    summary = "the barometer report of a period: index.html (fr/en), barometer.csv, top_posts.csv, charts"


@dataclass(frozen=True, kw_only=True)
class RelayConfig(Config, CaptureSettings, PortSettings, FaultSettings, LogSettings):
    command = "relay"
    summary = "serve a capture file with the relay wire protocol (emulator)"


@dataclass(frozen=True, kw_only=True)
class JetstreamEmulatorConfig(
    Config, CaptureSettings, PortSettings, FaultSettings, JetstreamServeSettings, LogSettings
):
    command = "jetstream"
    summary = "serve a capture file with the Jetstream v2 and v1 wire protocols (emulator)"


@dataclass(frozen=True, kw_only=True)
class RecordConfig(Config, SourceSettings, OutSettings, LimitSettings, RecordSettings, LogSettings):
    command = "record"
    summary = "capture a live firehose into a capture file"


PipelineConfig = RunConfig | DemoConfig | StreamerConfig | AggregatorConfig  # the commands that write
ToolConfig = (
    AccountsConfig
    | BackfillConfig
    | SqlConfig
    | ReportConfig
    | RelayConfig
    | JetstreamEmulatorConfig
    | RecordConfig
)
AnyConfig = PipelineConfig | ToolConfig
COMMANDS: Final[tuple[type[AnyConfig], ...]] = (
    RunConfig,
    DemoConfig,
    StreamerConfig,
    AggregatorConfig,
    AccountsConfig,
    BackfillConfig,
    SqlConfig,
    ReportConfig,
    RelayConfig,
    JetstreamEmulatorConfig,
    RecordConfig,
)
BY_COMMAND: Final = {c.command: c for c in COMMANDS}
SETTINGS: Final = collect(COMMANDS)  # what the parser is built from
OPTIONS: Final = tuple(o for o in SETTINGS if not o.spec.positional)  # each a flag and a BLUEPULSE_* variable
_KNOWN_ENV: Final = frozenset(o.env for o in OPTIONS)


def resolve(command: str, flags: Mapping[str, object], environ: Mapping[str, str] | None = None) -> AnyConfig:
    """The config of `command`: a flag (None = not given) beats BLUEPULSE_*, which beats the default.
    `--jetstream` with an explicit `--relay` (flag or variable) is an error: which one to read?"""
    config = resolve_into(BY_COMMAND[command], flags, environ, _KNOWN_ENV)
    if isinstance(config, JetstreamSettings) and config.jetstream is not None:
        env = os.environ if environ is None else environ
        if flags.get("relay") is not None or "BLUEPULSE_RELAY" in env:
            raise ConfigError(
                "--relay and --jetstream (BLUEPULSE_RELAY, BLUEPULSE_JETSTREAM) exclude each other: give one"
            )
    return config


def config_table() -> str:
    """The README's configuration table, as the fields say it should read."""
    return readme_table(OPTIONS, BY_COMMAND)
