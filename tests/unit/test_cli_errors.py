"""Every bad input the CLI can meet is one clear line: exit 2 for usage, exit 1 for a failure."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bluepulse import commands, lock
from bluepulse.cli import build_parser, main
from bluepulse.config import OPTIONS, ConfigError, resolve
from relay.capture import write_frames

ACCOUNTS = (
    "did,handle,name,category,region,followers\n"
    "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa,aphp.fr,Hôpitaux de Paris – AP-HP,CHU,IDF,2060\n"
    "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb,curie.fr,Institut Curie,CLCC,IDF,\n"
)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def accounts(tmp_path: Path) -> Path:
    path = tmp_path / "accounts.csv"
    path.write_text(ACCOUNTS, encoding="utf-8")
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# item 7: one message, not a traceback


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["relay", "--rate", "0"], "--rate='0': must be positive"),
        (["relay", "--rate", "-5"], "--rate='-5': must be positive"),
        (["relay", "--drop-every", "0"], "--drop-every='0': must be a positive integer"),
        (["relay", "--malformed-every", "0"], "--malformed-every='0'"),
        (["relay", "--stall-after", "-1"], "--stall-after='-1'"),
        (["record", "--limit", "0"], "--limit='0'"),
        (["relay", "--port", "http"], "--port='http': must be a whole number"),
    ],
)
def test_bad_counts_and_rates_are_configuration_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert named in err


def test_metrics_port_in_use_is_one_line(
    capsys: pytest.CaptureFixture[str], accounts: Path, tmp_path: Path, busy_port: int
) -> None:
    argv = [
        "streamer",
        "--accounts",
        str(accounts),
        "--state-dir",
        str(tmp_path / "s"),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--metrics-port",
        str(busy_port),
    ]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert f"--metrics-port {busy_port}: 127.0.0.1:{busy_port} is already in use" in err
    assert len(err.strip().splitlines()) == 1


def test_unresolvable_metrics_host_is_one_line(
    capsys: pytest.CaptureFixture[str], accounts: Path, tmp_path: Path
) -> None:
    argv = [
        "streamer",
        "--accounts",
        str(accounts),
        "--state-dir",
        str(tmp_path / "s"),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--metrics-host",
        "no-such-host.invalid",
    ]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert "--metrics-host no-such-host.invalid: cannot resolve" in err


def test_demo_port_in_use_wipes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, busy_port: int
) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "bluepulse.duckdb").write_text("previous day")
    code, _, err = run_cli(
        capsys, "demo", "--port", str(busy_port), "--metrics-port", "0", "--state-dir", str(tmp_path)
    )
    assert code == 2
    assert f"--port {busy_port}: 127.0.0.1:{busy_port} is already in use" in err
    assert (tmp_path / "demo" / "bluepulse.duckdb").read_text() == "previous day"


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16", "utf-16-be", "utf-8-sig"])
def test_spreadsheet_encodings_are_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "accounts.csv"
    text = ACCOUNTS.replace("–", "-") if encoding == "latin-1" else ACCOUNTS
    bom = "\ufeff" if encoding == "utf-16-be" else ""  # utf-16 and utf-8-sig write their own
    path.write_bytes((bom + text).encode(encoding))
    code, out, err = run_cli(capsys, "accounts", "list", "--accounts", str(path), "--format", "json")
    assert code == 0, err
    assert json.loads(out)[0]["name"].startswith("Hôpitaux de Paris")


def test_utf16_without_bom_names_the_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(ACCOUNTS.encode("utf-16-le"))
    code, _, err = run_cli(capsys, "accounts", "check", "--accounts", str(path))
    assert code == 2
    assert "line 1: NUL bytes, not a text CSV (UTF-16 without a byte-order mark?" in err


def test_semicolon_csv_from_a_french_spreadsheet_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(ACCOUNTS.replace(",", ";").encode("cp1252"))
    code, out, _ = run_cli(capsys, "accounts", "check", "--accounts", str(path))
    assert (code, out.strip()) == (0, f"{path}: 2 accounts, OK")


def test_capture_that_is_missing_a_directory_or_not_a_capture_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, real_frames: list[bytes]
) -> None:
    text = tmp_path / "accounts.csv"
    text.write_text(ACCOUNTS)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    fake_zst = tmp_path / "fake.bin.zst"
    fake_zst.write_bytes(b"not zstd at all")
    cut = tmp_path / "cut.bin"
    write_frames(cut, real_frames[:2])
    cut.write_bytes(cut.read_bytes()[:-5])
    cases = {
        tmp_path / "missing.bin": "no such file",
        tmp_path: "is a directory, not a capture file",
        text: "not a capture file",
        fake_zst: "named .zst but not zstd-compressed",
        empty: "empty capture, no frames to serve",
        cut: "truncated frame at the end of the capture (after 1 frames)",
    }
    for path, message in cases.items():
        code, _, err = run_cli(capsys, "relay", "--capture", str(path))
        assert code == 2, path
        assert message in err, err
        if path != cut:
            assert "truncated" not in err


def test_record_from_a_refused_relay_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "rec.bin"
    code, _, err = run_cli(capsys, "record", "--relay", "ws://127.0.0.1:1", "--out", str(out))
    assert code == 1
    assert "cannot record from relay ws://127.0.0.1:1: connection refused" in err
    assert not out.exists()  # no empty capture left behind


# item 8: accepted but wrong


@pytest.mark.parametrize("option", [o for o in OPTIONS if isinstance(o.default, float) or o.name == "rate"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_every_float_option_rejects_non_finite_numbers(option: object, value: str) -> None:
    name = option.name  # type: ignore[attr-defined]
    command = option.commands[0]  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="must be a finite number"):
        resolve(command, {name: value}, {})


def test_demo_rate_nan_stops_the_demo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys, "demo", "--demo-rate", "nan", "--checkpoint-interval", "nan", "--state-dir", str(tmp_path)
    )
    assert code == 2
    assert "--demo-rate='nan': must be a finite number" in err
    assert "--checkpoint-interval='nan': must be a finite number" in err
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(
    "url", ["not-a-url", "ws://", "ftp://relay.example", "wss://host:port", "bsky.network"]
)
def test_relay_url_is_checked_at_start(capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str) -> None:
    code, _, err = run_cli(capsys, "record", "--relay", url, "--out", str(tmp_path / "r.bin"))
    assert code == 2
    assert f"--relay={url!r}" in err


def test_relay_urls_of_every_scheme_are_accepted() -> None:
    for url in ("wss://bsky.network", "ws://127.0.0.1:8080", "https://relay.example/", "http://[::1]:80"):
        assert resolve("record", {"relay": url}, {}).relay == url


def test_log_level_and_formats_accept_any_case(capsys: pytest.CaptureFixture[str], accounts: Path) -> None:
    code, out, _ = run_cli(
        capsys, "accounts", "list", "--accounts", str(accounts), "--log-level", "debug", "--format", "CSV"
    )
    assert code == 0
    assert out.startswith("did,handle,name,category,region,followers\n")
    assert resolve("sql", {}, {"BLUEPULSE_LOG_LEVEL": "warning"}).log_level == "WARNING"


def test_loop_is_a_flag_and_still_an_env_var() -> None:
    args = vars(build_parser().parse_args(["relay", "--loop"]))
    assert resolve("relay", {k: v for k, v in args.items() if k != "command"}, {}).loop is True
    assert resolve("relay", {}, {"BLUEPULSE_LOOP": "1"}).loop is True
    assert resolve("relay", {}, {}).loop is False
    with pytest.raises(SystemExit):
        build_parser().parse_args(["relay", "--loop", "true"])


def test_one_handle_on_two_dids_is_rejected_naming_both_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(ACCOUNTS + "did:plc:cccccccccccccccccccccccc,APHP.fr,Doublon,,\n")
    code, _, err = run_cli(capsys, "accounts", "check", "--accounts", str(path))
    assert code == 2
    assert (
        "line 4: handle APHP.fr (did:plc:cccccccccccccccccccccccc) is also on line 2 "
        "(did:plc:aaaaaaaaaaaaaaaaaaaaaaaa)"
    ) in err


def test_accounts_list_honours_the_format_and_shows_followers(
    capsys: pytest.CaptureFixture[str], accounts: Path
) -> None:
    _, as_json, _ = run_cli(capsys, "accounts", "list", "--accounts", str(accounts), "--format", "json")
    rows = json.loads(as_json)
    assert [(r["handle"], r["followers"]) for r in rows] == [("aphp.fr", 2060), ("curie.fr", None)]
    _, as_csv, _ = run_cli(capsys, "accounts", "list", "--accounts", str(accounts), "--format", "csv")
    assert as_csv.splitlines()[1].endswith(",CHU,IDF,2060")
    _, table, _ = run_cli(capsys, "accounts", "list", "--accounts", str(accounts))
    lines = table.splitlines()
    assert lines[0].split() == [
        "did",
        "|",
        "handle",
        "|",
        "name",
        "|",
        "category",
        "|",
        "region",
        "|",
        "followers",
    ]
    assert lines[0].index("handle") == lines[2].index("aphp.fr") == lines[3].index("curie.fr")
    assert "2060" in lines[2]


# item 9: locks


def test_a_held_lock_names_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with lock.hold(path, "state directory s"):
        assert path.read_text().splitlines()[0] == str(__import__("os").getpid())
        with (
            pytest.raises(lock.LockError, match=r"state directory s is in use by pid \d+ \("),
            lock.hold(path, "state directory s"),
        ):
            pass
    with lock.hold(path, "state directory s"):  # released: free again
        pass


def test_run_on_a_locked_state_dir_stops_before_touching_anything(
    capsys: pytest.CaptureFixture[str], accounts: Path, tmp_path: Path
) -> None:
    state, db = tmp_path / "state", tmp_path / "db" / "bluepulse.duckdb"
    argv = [
        "run",
        "--accounts",
        str(accounts),
        "--state-dir",
        str(state),
        "--db",
        str(db),
        "--relay",
        "ws://127.0.0.1:1",
        "--metrics-port",
        "0",
    ]
    with lock.hold(lock.dir_lock_path(state), "state directory"):
        code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert f"state directory {state} is in use by pid" in err
    assert sorted(p.name for p in state.iterdir()) == ["bluepulse.lock"]
    assert not db.exists()
    with lock.hold(lock.file_lock_path(db), "DuckDB store"):
        code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert f"DuckDB store {db} is in use by pid" in err
    assert not db.exists()


def test_aggregator_and_streamer_take_their_locks(
    capsys: pytest.CaptureFixture[str], accounts: Path, tmp_path: Path
) -> None:
    db = tmp_path / "bluepulse.duckdb"
    with lock.hold(lock.file_lock_path(db), "DuckDB store"):
        code, _, err = run_cli(
            capsys,
            "aggregator",
            "--kafka",
            "127.0.0.1:1",
            "--db",
            str(db),
            "--accounts",
            str(accounts),
            "--metrics-port",
            "0",
        )
    assert (code, "is in use by pid" in err) == (2, True)
    state = str(tmp_path / "s")
    with lock.hold(lock.dir_lock_path(tmp_path / "s"), "state directory"):
        code, _, err = run_cli(
            capsys,
            "streamer",
            "--out",
            str(tmp_path / "o"),
            "--state-dir",
            state,
            "--accounts",
            str(accounts),
            "--metrics-port",
            "0",
        )
    assert (code, "is in use by pid" in err) == (2, True)


# item 11: help


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


def test_help_speaks_to_users_and_never_says_none(capsys: pytest.CaptureFixture[str]) -> None:
    top = help_of(capsys)
    assert top.splitlines()[2].startswith("bluepulse follows the Bluesky firehose")
    assert "wiring function" not in top
    for command in ("run", "demo", "streamer", "aggregator", "accounts", "sql", "relay", "record"):
        text = help_of(capsys, command)
        assert "None" not in text, command
        assert "default " not in text.replace("default: ", ""), command
    demo = " ".join(help_of(capsys, "demo").split())
    assert "default: data, so data/demo" in demo
    assert "starts fresh each time" in demo
    relay = " ".join(help_of(capsys, "relay").split())
    assert "frames/s to play [BLUEPULSE_RATE; default: all at once]" in relay
    assert "[BLUEPULSE_DROP_EVERY; default: off]" in relay
    accounts = " ".join(help_of(capsys, "accounts").split())
    assert "list: print the accounts" in accounts
    assert "table (aligned columns), csv or json" in accounts
    assert "DEBUG, INFO, WARNING or ERROR (any case)" in accounts


def test_demo_hint_is_a_command_this_shell_can_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = tmp_path / "venv" / "bin" / "bluepulse"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["venv/bin/bluepulse", "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert commands.runnable_command() == "venv/bin/bluepulse"
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    assert commands.runnable_command() == "bluepulse"
    monkeypatch.setattr(sys, "argv", ["/x/bluepulse/cli.py"])
    assert commands.runnable_command().endswith(" -m bluepulse.cli")
