"""Typed configuration from flags and BLUEPULSE_* environment variables.

The only module that reads the environment. Each option has one flag and one env var; a flag
beats the env var, which beats the default. Unknown BLUEPULSE_* variables and bad values are
all reported at once, before anything starts.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    default: Any
    parse: Callable[[str], Any]
    help: str
    commands: tuple[str, ...]
    secret: bool = False
    unset: str = "not set"  # what leaving a None-default option out means, for --help
    flag_only: bool = False  # a switch: `--loop`, no value (the env var still takes true/false)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "BLUEPULSE_" + self.name.upper()


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("must be a whole number") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number") from None
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be between 0 and 65535")
    return value


def _positive(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An empty value (`BLUEPULSE_RATE=`) means unset, like leaving the option out."""

    def parse_optional(text: str) -> Any:
        return parse(text) if text else None

    return parse_optional


def _choice(*choices: str) -> Callable[[str], str]:
    """Any case accepted (`debug`), the canonical spelling kept."""
    canonical = {c.lower(): c for c in choices}

    def parse(text: str) -> str:
        try:
            return canonical[text.strip().lower()]
        except KeyError:
            raise ValueError(f"must be one of {', '.join(choices)}") from None

    return parse


def _url(text: str) -> str:
    """A relay URL must name its scheme and host: a typo fails at start, not in endless retries."""
    parts = urlsplit(text.strip())
    if parts.scheme.lower() not in RELAY_SCHEMES:
        raise ValueError(f"must be a URL starting with {', '.join(s + '://' for s in RELAY_SCHEMES)}")
    try:
        parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
    except ValueError as exc:
        raise ValueError(f"bad port in URL: {exc}") from None
    if not parts.hostname:
        raise ValueError("URL has no host")
    return text.strip()


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


RELAY_SCHEMES: Final = ("wss", "ws", "https", "http")


PIPE: Final = ("run", "streamer", "aggregator", "demo")
KAFKA: Final = ("streamer", "aggregator")
OPTIONS: Final = (
    Option("relay", "wss://bsky.network", _url, "relay base URL (ws://, wss://, http:// or https://)", ("run", "streamer", "record")),
    Option("accounts", Path("accounts.csv"), Path, "tracked accounts CSV", ("run", "streamer", "aggregator", "accounts")),
    Option("state_dir", Path("data"), Path, "streamer state (cursor, memory); demo: data/demo", ("run", "streamer", "demo")),
    Option("db", Path("data/bluepulse.duckdb"), Path, "DuckDB file; demo: <state-dir>/bluepulse.duckdb", ("run", "aggregator", "sql")),
    Option("metrics_host", "127.0.0.1", str, "address /metrics binds to", PIPE),
    Option("metrics_port", 9464, _port, "/metrics port (0 = off)", PIPE),
    Option("out", None, Path, "output file (streamer: events as JSON lines; record: frames)", ("streamer", "record"), unset="none: streamer needs --out or --kafka, record needs --out"),
    Option("kafka", None, str, "Kafka bootstrap HOST:PORT[,…]", KAFKA, unset="no Kafka"),
    Option("topic", "bluepulse.events", str, "Kafka topic", KAFKA),
    Option("partitions", 6, _positive_int, "partitions when creating the topic", KAFKA),
    Option("group", "bluepulse-aggregator", str, "Kafka consumer group", ("aggregator",)),
    Option("kafka_security", "PLAINTEXT", _choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"), "Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", KAFKA),
    Option("kafka_sasl_mechanism", "PLAIN", _choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", KAFKA),
    Option("kafka_username", None, str, "SASL username", KAFKA, unset="no SASL login"),
    Option("kafka_password", None, str, "SASL password (never logged)", KAFKA, secret=True, unset="no SASL login"),
    Option("kafka_ca_file", None, Path, "CA bundle for TLS", KAFKA, unset="the system's CAs"),
    Option("checkpoint_interval", 1.0, _positive, "seconds between cursor saves", ("run", "streamer", "demo")),
    Option("receive_timeout", 60.0, _positive, "seconds of relay silence before reconnecting", ("run", "streamer", "demo")),
    Option("queue_size", 10_000, _positive_int, "in-process queue bound, frames", ("run", "demo")),
    Option("batch_events", 5_000, _positive_int, "events per DuckDB transaction, at most", ("run", "aggregator", "demo")),
    Option("retention_days", 90.0, _positive, "days of event log kept", ("run", "aggregator", "demo")),
    Option("remember_days", 90.0, _positive, "days a like/repost/follow path is remembered to resolve its delete", ("run", "streamer", "demo")),
    Option("snapshot_interval", 10.0, _positive, "seconds between SQL snapshots", ("run", "aggregator", "demo")),
    Option("format", "table", _choice("table", "csv", "json"), "output format: table (aligned columns), csv or json (a list of objects)", ("sql", "accounts")),
    Option("max_rows", None, _optional(_non_negative_int), "rows printed at most (0 = all)", ("sql",), unset="100000 for a table on a terminal, all otherwise"),
    Option("capture", None, Path, "capture file of raw frames (as written by `bluepulse record`)", ("relay",), unset="none: required"),
    Option("host", "127.0.0.1", str, "address to bind", ("relay",)),
    Option("port", 0, _port, "port to bind (0 = any free)", ("relay", "demo")),
    Option("demo_rate", 300.0, _positive, "frames/s the demo day is played at", ("demo",)),
    Option("demo_scale", 1.0, _positive, "volume of the generated demo day", ("demo",)),
    Option("rate", None, _optional(_positive), "frames/s to play", ("relay",), unset="all at once"),
    Option("loop", False, _bool, "replay the capture forever", ("relay",), flag_only=True),
    Option("drop_every", None, _optional(_positive_int), "fault: drop connections every N frames", ("relay",), unset="off"),
    Option("stall_after", None, _optional(_non_negative_int), "fault: go silent after N frames", ("relay",), unset="off"),
    Option("malformed_every", None, _optional(_positive_int), "fault: a malformed frame every N frames", ("relay",), unset="off"),
    Option("limit", None, _optional(_positive_int), "stop after N frames", ("record",), unset="no limit: until the relay closes or Ctrl-C"),
    Option("cursor", None, _optional(_non_negative_int), "start cursor (relay seq)", ("record",), unset="the live tip"),
    Option("log_level", "INFO", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "log level: DEBUG, INFO, WARNING or ERROR (any case)", ("*",)),
    Option("log_format", "text", _choice("text", "json"), "log format: text (key=value) or json (one object a line)", ("*",)),
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


# (command, option) → (help, default as shown) where a command uses an option its own way.
_COMMAND_HELP: Final = {
    ("demo", "state_dir"): (
        "the demo keeps its data in <STATE-DIR>/demo, deleted and recreated at each start",
        "data, so data/demo",
    ),
    ("demo", "port"): ("relay emulator port (0 = any free)", "0"),
}


def shown_default(option: Option, command: str) -> str:
    """The default as --help shows it: what an unset option means, never `None`."""
    if (command, option.name) in _COMMAND_HELP:
        return _COMMAND_HELP[command, option.name][1]
    if option.flag_only:
        return "off"
    return option.unset if option.default is None else str(option.default)


def add_flags(parser: argparse.ArgumentParser, command: str) -> None:
    for option in options_for(command):
        text = _COMMAND_HELP.get((command, option.name), (option.help, ""))[0]
        help_text = f"{text} [{option.env}; default: {shown_default(option, command)}]"
        if option.flag_only:
            parser.add_argument(
                option.flag, dest=option.name, default=None, action="store_true", help=help_text
            )
            continue
        parser.add_argument(
            option.flag, dest=option.name, default=None, metavar=option.name.split("_")[-1].upper(),
            help=help_text,
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
