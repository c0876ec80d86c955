"""Typed configuration: every setting once, as a field of a frozen settings group.

The only module that reads the environment (through `options.resolve_into`). A group is a set of
settings one part of the pipeline needs (source, store, transport, metrics…); a command's config
inherits the groups it uses, so `config.metrics_port` is typed and a misspelt name is a mypy
error. The argparse flags, the BLUEPULSE_* reader and the README table derive from the fields:
a new setting (Jetstream, AppView, report) is one `setting(...)` line in its group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bluepulse import parsers as p
from bluepulse.errors import ConfigError
from bluepulse.options import Config, Option, argument, collect, readme_table, resolve_into, setting

__all__ = ["OPTIONS", "SETTINGS", "Config", "ConfigError", "Option", "resolve"]

# Settings groups, in the order of --help and of the README table.


@dataclass(frozen=True, kw_only=True)
class SourceSettings:
    """Where the firehose comes from."""

    relay: str = setting("wss://bsky.network", p.url, "relay base URL (ws://, wss://, http:// or https://)")


@dataclass(frozen=True, kw_only=True)
class TrackedSettings:
    accounts: Path = setting(Path("accounts.csv"), Path, "tracked accounts CSV")


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


def snapshot_path(db: Path) -> Path:
    """Where the writer keeps the read-only copy of `--db` that `bluepulse sql` opens meanwhile."""
    return db.with_name(db.stem + ".snapshot" + db.suffix)


@dataclass(frozen=True, kw_only=True)
class AggregatorSettings:
    """The aggregator app: batches, retention, snapshots."""

    batch_events: int = setting(5_000, p.positive_int, "events per DuckDB transaction, at most")
    retention_days: float = setting(90.0, p.positive, "days of event log kept")
    snapshot_interval: float = setting(10.0, p.positive, "seconds between SQL snapshots")


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
        "list: print the accounts (see --format); check: validate the file, exit 0 or 2",
        choices=("list", "check"),
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
        per_command={"demo": ("relay emulator port (0 = any free)", "0")},
    )


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    demo_rate: float = setting(300.0, p.positive, "frames/s the demo day is played at")
    demo_scale: float = setting(1.0, p.positive, "volume of the generated demo day")


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
class RecordSettings:
    limit: int | None = setting(
        None,
        p.optional(p.positive_int),
        "stop after N frames",
        unset="no limit: until the relay closes or Ctrl-C",
    )
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
class StreamerAppSettings(SourceSettings, TrackedSettings, StreamerSettings):
    pass


@dataclass(frozen=True, kw_only=True)
class AggregatorAppSettings(TrackedSettings, StoreSettings, AggregatorSettings):
    pass


# One config per command: the groups it inherits are the settings it has.


@dataclass(frozen=True, kw_only=True)
class RunConfig(
    Config, StreamerAppSettings, AggregatorAppSettings, QueueSettings, MetricsSettings, LogSettings
):
    command = "run"
    summary = "single machine: relay → streamer → in-process queue → aggregator → DuckDB + /metrics"


@dataclass(frozen=True, kw_only=True)
class DemoConfig(
    Config,
    StreamerSettings,
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
class AccountsConfig(Config, AccountsActionSettings, TrackedSettings, FormatSettings, LogSettings):
    command = "accounts"
    summary = "list or check the tracked accounts file"


@dataclass(frozen=True, kw_only=True)
class SqlConfig(Config, SqlSettings, StoreSettings, FormatSettings, LogSettings):
    command = "sql"
    summary = "read-only SQL on the DuckDB file (works while the aggregator runs)"


@dataclass(frozen=True, kw_only=True)
class RelayConfig(Config, CaptureSettings, PortSettings, FaultSettings, LogSettings):
    command = "relay"
    summary = "serve a capture file with the relay wire protocol (emulator)"


@dataclass(frozen=True, kw_only=True)
class RecordConfig(Config, SourceSettings, OutSettings, RecordSettings, LogSettings):
    command = "record"
    summary = "capture a live firehose into a capture file"


PipelineConfig = RunConfig | DemoConfig | StreamerConfig | AggregatorConfig  # the commands that write
ToolConfig = AccountsConfig | SqlConfig | RelayConfig | RecordConfig
AnyConfig = PipelineConfig | ToolConfig
COMMANDS: Final[tuple[type[AnyConfig], ...]] = (
    RunConfig,
    DemoConfig,
    StreamerConfig,
    AggregatorConfig,
    AccountsConfig,
    SqlConfig,
    RelayConfig,
    RecordConfig,
)
BY_COMMAND: Final = {c.command: c for c in COMMANDS}
SETTINGS: Final = collect(COMMANDS)  # what the parser is built from
OPTIONS: Final = tuple(o for o in SETTINGS if not o.spec.positional)  # each a flag and a BLUEPULSE_* variable
_KNOWN_ENV: Final = frozenset(o.env for o in OPTIONS)


def resolve(command: str, flags: Mapping[str, object], environ: Mapping[str, str] | None = None) -> AnyConfig:
    """The config of `command`: a flag (None = not given) beats BLUEPULSE_*, which beats the default."""
    return resolve_into(BY_COMMAND[command], flags, environ, _KNOWN_ENV)


def config_table() -> str:
    """The README's configuration table, as the fields say it should read."""
    return readme_table(OPTIONS, BY_COMMAND)
