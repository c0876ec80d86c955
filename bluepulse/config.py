"""Typed configuration from flags and BLUEPULSE_* environment variables.

The only module that reads the environment. Each option has one flag and one env var; a flag
beats the env var, which beats the default. Unknown BLUEPULSE_* variables and bad values are
all reported at once, before anything starts.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    default: Any
    parse: Callable[[str], Any]
    help: str
    commands: tuple[str, ...]
    secret: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "BLUEPULSE_" + self.name.upper()


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be between 0 and 65535")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _opt_int(text: str) -> int | None:
    return int(text) if text else None


PIPE: Final = ("run", "streamer", "aggregator", "demo")
KAFKA: Final = ("streamer", "aggregator")
OPTIONS: Final = (
    Option("relay", "wss://bsky.network", str, "relay base URL", ("run", "streamer", "record")),
    Option("accounts", Path("accounts.csv"), Path, "tracked accounts CSV", ("run", "streamer", "aggregator", "accounts")),
    Option("state_dir", Path("data"), Path, "streamer state (cursor, memory); demo: data/demo", ("run", "streamer", "demo")),
    Option("db", Path("data/bluepulse.duckdb"), Path, "DuckDB file; demo: <state-dir>/bluepulse.duckdb", ("run", "aggregator", "sql")),
    Option("metrics_host", "127.0.0.1", str, "address /metrics binds to", PIPE),
    Option("metrics_port", 9464, _port, "/metrics port (0 = off)", PIPE),
    Option("out", None, Path, "output file (streamer: events as JSON lines; record: frames)", ("streamer", "record")),
    Option("kafka", None, str, "Kafka bootstrap HOST:PORT[,…]", KAFKA),
    Option("topic", "bluepulse.events", str, "Kafka topic", KAFKA),
    Option("partitions", 6, _positive_int, "partitions when creating the topic", KAFKA),
    Option("group", "bluepulse-aggregator", str, "Kafka consumer group", ("aggregator",)),
    Option("kafka_security", "PLAINTEXT", _choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"), "Kafka security protocol", KAFKA),
    Option("kafka_sasl_mechanism", "PLAIN", _choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), "SASL mechanism", KAFKA),
    Option("kafka_username", None, str, "SASL username", KAFKA),
    Option("kafka_password", None, str, "SASL password (never logged)", KAFKA, secret=True),
    Option("kafka_ca_file", None, Path, "CA bundle for TLS", KAFKA),
    Option("checkpoint_interval", 1.0, _positive, "seconds between cursor saves", ("run", "streamer", "demo")),
    Option("receive_timeout", 60.0, _positive, "seconds of relay silence before reconnecting", ("run", "streamer", "demo")),
    Option("queue_size", 10_000, _positive_int, "in-process queue bound, frames", ("run", "demo")),
    Option("batch_events", 5_000, _positive_int, "events per DuckDB transaction, at most", ("run", "aggregator", "demo")),
    Option("retention_days", 90.0, _positive, "days of event log kept", ("run", "aggregator", "demo")),
    Option("snapshot_interval", 10.0, _positive, "seconds between SQL snapshots", ("run", "aggregator", "demo")),
    Option("format", "table", _choice("table", "csv", "json"), "output format", ("sql", "accounts")),
    Option("capture", None, Path, "capture file of raw frames", ("relay",)),
    Option("host", "127.0.0.1", str, "address to bind", ("relay",)),
    Option("port", 0, _port, "port to bind (0 = any free)", ("relay", "demo")),
    Option("demo_rate", 300.0, _positive, "frames/s the demo day is played at", ("demo",)),
    Option("demo_scale", 1.0, _positive, "volume of the generated demo day", ("demo",)),
    Option("rate", None, lambda t: float(t) if t else None, "frames/s to play (default: all at once)", ("relay",)),
    Option("loop", False, _bool, "replay the capture forever", ("relay",)),
    Option("drop_every", None, _opt_int, "fault: drop connections every N frames", ("relay",)),
    Option("stall_after", None, _opt_int, "fault: go silent after N frames", ("relay",)),
    Option("malformed_every", None, _opt_int, "fault: a malformed frame every N frames", ("relay",)),
    Option("limit", None, _opt_int, "stop after N frames", ("record",)),
    Option("cursor", None, _opt_int, "start cursor", ("record",)),
    Option("log_level", "INFO", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "log level", ("*",)),
    Option("log_format", "text", _choice("text", "json"), "log format", ("*",)),
)  # fmt: skip
_BY_ENV: Final = {o.env: o for o in OPTIONS}
# Read by scripts/kafka (the development broker) and the test suite, not by the CLI.
TOOLING_ENV: Final = frozenset({"BLUEPULSE_KAFKA_DIR", "BLUEPULSE_KAFKA_HOME", "BLUEPULSE_KAFKA_PORT"})


class ConfigError(ValueError):
    """Every configuration problem, one per line."""


@dataclass(frozen=True)
class Config:
    command: str
    values: Mapping[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def public(self) -> dict[str, Any]:
        """Values safe to log (secrets masked)."""
        secret = {o.name for o in OPTIONS if o.secret}
        return {k: ("***" if k in secret and v else v) for k, v in self.values.items()}


def options_for(command: str) -> list[Option]:
    return [o for o in OPTIONS if command in o.commands or "*" in o.commands]


def add_flags(parser: argparse.ArgumentParser, command: str) -> None:
    for option in options_for(command):
        parser.add_argument(
            option.flag, dest=option.name, default=None, metavar=option.name.split("_")[-1].upper(),
            help=f"{option.help} [{option.env}; default {option.default}]",
        )  # fmt: skip


def resolve(command: str, flags: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    problems = [
        f"unknown environment variable {key}" for key in sorted(env)
        if key.startswith("BLUEPULSE_") and key not in _BY_ENV and key not in TOOLING_ENV
        and not key.startswith("BLUEPULSE_TEST_")
    ]  # fmt: skip
    values: dict[str, Any] = {}
    for option in options_for(command):
        raw, origin = flags.get(option.name), option.flag
        if raw is None and option.env in env:
            raw, origin = env[option.env], option.env
        if raw is None:
            values[option.name] = option.default
            continue
        try:
            values[option.name] = option.parse(str(raw))
        except ValueError as exc:
            shown = "***" if option.secret else repr(raw)
            problems.append(f"{origin}={shown}: {exc}")
    extra = {k: v for k, v in flags.items() if k not in values and v is not None}
    values.update(extra)
    if problems:
        raise ConfigError("\n".join(problems))
    return Config(command, values)
