"""`bluepulse sql` as a process: rows stream in flat memory, --max-rows cuts with a note, short refusals."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.support.processes import clean_env

CLI = [sys.executable, "-m", "bluepulse.cli", "sql"]
NOTE = "(showing the first {} rows; --max-rows to change)"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlcli") / "store.duckdb"
    duckdb.connect(str(path)).close()
    return path


def sql(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*CLI, "--db", str(db), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=env or clean_env(), check=False
    )


def peak_rss_mb(db: Path, query: str) -> float:
    """Peak RSS of one `bluepulse sql --format csv` process writing to /dev/null, measured by its parent."""
    probe = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    argv = [sys.executable, "-c", probe, *CLI, "--db", str(db), "--format", "csv", query]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=clean_env(), check=True)
    return int(out.stdout.split()[-1]) / 1024


def test_a_large_result_streams_in_flat_memory(db: Path) -> None:
    baseline = peak_rss_mb(db, "SELECT 1")
    large = peak_rss_mb(db, "SELECT * FROM range(3000000)")
    # loading the whole result took ~300 MB more than the baseline; streamed, it is the same process
    assert large - baseline < 80, (baseline, large)
    assert large < 300


def test_a_pipe_gets_every_row_and_max_rows_cuts_with_a_note(db: Path) -> None:
    everything = sql(db, "SELECT * FROM range(100010)")  # table format, stdout a pipe: no default cut
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.splitlines()[-1] == "(100010 rows)"
    assert "showing the first" not in everything.stderr

    cut = sql(db, "--max-rows", "5", "SELECT * FROM range(100)")
    assert cut.stdout.splitlines()[-1] == "(5 rows)"
    assert NOTE.format(5) in cut.stderr

    by_env = sql(db, "--format", "csv", "SELECT * FROM range(100)", env=clean_env(BLUEPULSE_MAX_ROWS="7"))
    assert by_env.stdout.splitlines() == ["range", *map(str, range(7))]
    assert NOTE.format(7) in by_env.stderr

    exact = sql(db, "--max-rows", "3", "--format", "json", "SELECT * FROM range(3)")
    assert exact.stdout.count('"range"') == 3
    assert "showing the first" not in exact.stderr  # nothing was left out

    unlimited = sql(db, "--max-rows", "0", "--format", "csv", "SELECT * FROM range(12345)")
    assert len(unlimited.stdout.splitlines()) == 12346

    negative = sql(db, "--max-rows", "-1", "SELECT 1")
    assert negative.returncode == 2
    assert "--max-rows='-1': must be 0 or more" in negative.stderr


def test_a_table_on_a_terminal_stops_at_100_000_rows(db: Path) -> None:
    primary, secondary = pty.openpty()
    argv = [*CLI, "--db", str(db), "SELECT * FROM range(100003)"]
    proc = subprocess.Popen(argv, stdout=secondary, stderr=subprocess.PIPE, env=clean_env())
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, stderr
    lines = b"".join(chunks).decode().splitlines()
    assert lines[-1] == "(100000 rows)"
    assert NOTE.format("100 000") in stderr


REFUSALS = {
    "ANALYZE": "query refused: ANALYZE recomputes the store's statistics",
    "PIVOT events ON kind USING count(*)": "query refused: PIVOT without an IN list",
    "UPDATE EXTENSIONS": "query refused: UPDATE EXTENSIONS fetches extensions",
    "VACUUM": "query refused: VACUUM rewrites the store",
}


@pytest.mark.parametrize(("query", "message"), REFUSALS.items())
def test_refusals_name_the_statement_once_without_a_traceback(db: Path, query: str, message: str) -> None:
    result = sql(db, query)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("refused") == 1
    assert "Traceback" not in result.stderr


def test_comment_before_explain_and_a_directory_as_db(db: Path, tmp_path: Path) -> None:
    explained = sql(db, "/* c */ EXPLAIN SELECT 1")
    assert explained.returncode == 0, explained.stderr
    assert "physical_plan" in explained.stdout
    directory = sql(tmp_path, "SELECT 1")
    assert directory.returncode == 2
    assert f"{tmp_path}: is a directory" in directory.stderr
    assert "no such store file" not in directory.stderr


def test_a_reader_that_stops_early_ends_the_query_quietly(db: Path) -> None:
    argv = [*CLI, "--db", str(db), "--format", "csv", "SELECT * FROM range(50000000)"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"range\n"
    assert proc.stdout.readline() == b"0\n"  # rows arrive before the query is done
    proc.stdout.close()  # like `| head -2`
    started = time.monotonic()
    assert proc.wait(timeout=60) == 0
    assert time.monotonic() - started < 30
    assert proc.stderr is not None
    assert b"Traceback" not in proc.stderr.read()
