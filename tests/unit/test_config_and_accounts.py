"""Configuration and the accounts registry fail early, with every problem listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bluepulse.cli import main
from bluepulse.config import ConfigError, resolve
from schemas.accounts import load_accounts, parse_accounts
from schemas.errors import RegistryError

GOOD = "did,handle,name,category\ndid:plc:aaaaaaaaaaaaaaaaaaaaaaaa,aphp.fr,AP-HP,CHU\n"


def test_flag_beats_env_which_beats_default() -> None:
    env = {"BLUEPULSE_METRICS_PORT": "9000", "BLUEPULSE_TOPIC": "t.env"}
    config = resolve("streamer", {"topic": "t.flag"}, env)
    assert (config.metrics_port, config.topic, config.relay) == (9000, "t.flag", "wss://bsky.network")


def test_all_config_problems_are_reported_at_once() -> None:
    env = {"BLUEPULSE_METRICS_PORT": "x", "BLUEPULSE_NOPE": "1", "BLUEPULSE_KAFKA_PASSWORD": "s3cret"}
    with pytest.raises(ConfigError) as caught:
        resolve("streamer", {"partitions": "0"}, env)
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert "BLUEPULSE_NOPE" in lines[0]
    assert "s3cret" not in str(caught.value)


def test_secrets_are_masked_when_logged() -> None:
    config = resolve("streamer", {}, {"BLUEPULSE_KAFKA_PASSWORD": "s3cret"})
    assert config.kafka_password == "s3cret"
    assert config.public()["kafka_password"] == "***"


def test_registry_reports_every_bad_line() -> None:
    text = GOOD + "did:plc:bad,x,\ndid:plc:aaaaaaaaaaaaaaaaaaaaaaaa,dup.fr,Dup,\n"
    with pytest.raises(RegistryError) as caught:
        parse_accounts(text, "accounts.csv")
    message = str(caught.value)
    assert "line 3: invalid DID" in message
    assert "line 3: empty name" in message
    assert "line 4: duplicate DID" in message


def test_registry_header_must_name_the_columns() -> None:
    with pytest.raises(RegistryError, match="missing column"):
        parse_accounts("did,name\n")


def test_accounts_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(GOOD)
    assert load_accounts(path)[0].category == "CHU"
    assert main(["accounts", "check", "--accounts", str(path)]) == 0
    assert "1 accounts, OK" in capsys.readouterr().out
    path.write_text("did,handle,name\nnope,x,y\n")
    assert main(["accounts", "check", "--accounts", str(path)]) == 2


def test_unwritable_state_dir_stops_at_start(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(GOOD)
    blocked = tmp_path / "file"
    blocked.write_text("")
    argv = [
        "streamer",
        "--accounts",
        str(accounts),
        "--state-dir",
        str(blocked / "state"),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--metrics-port",
        "0",
    ]
    assert main(argv) == 2


def test_followers_baseline_is_optional_and_checked() -> None:
    text = "did,handle,name,followers\ndid:plc:aaaaaaaaaaaaaaaaaaaaaaaa,aphp.fr,AP-HP,12500\n"
    assert parse_accounts(text)[0].followers == 12500
    assert parse_accounts(GOOD)[0].followers is None
    with pytest.raises(RegistryError, match="not a whole number"):
        parse_accounts(text.replace("12500", "beaucoup"))
