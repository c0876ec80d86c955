"""Read-only snapshot files: a consistent copy readers may open while the writer runs.

DuckDB lets no second process open a file the writer holds, even read-only, so
`bluepulse sql` reads a snapshot. It appears atomically (temp file + fsync + rename):
a reader sees the previous snapshot or the new one, never a half-written file.
Fastest (measured ~20x): CHECKPOINT, then copy the file bytes, valid only while no other
write can commit; if the WAL is not empty after the checkpoint, COPY FROM DATABASE instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb


def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _discard(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _publish(temp: Path, target: Path) -> None:
    with temp.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_snapshot(con: duckdb.DuckDBPyConnection, source: Path, target: Path) -> None:
    """Snapshot `source` (the file `con` writes) to `target`; no write may run meanwhile."""
    if not snapshot_by_file_copy(con, source, target):
        snapshot_by_copy_database(con, target)


def snapshot_by_file_copy(con: duckdb.DuckDBPyConnection, source: Path, target: Path) -> bool:
    """CHECKPOINT, then copy the database file; False (nothing written) if the WAL kept data."""
    temp = _temp_path(target)
    _discard(temp)
    try:
        con.execute("CHECKPOINT").fetchall()
        wal = source.with_name(source.name + ".wal")
        if wal.exists() and wal.stat().st_size > 0:
            return False
        shutil.copyfile(source, temp)
        _publish(temp, target)
    except BaseException:
        _discard(temp)
        raise
    return True


def snapshot_by_copy_database(con: duckdb.DuckDBPyConnection, target: Path) -> None:
    """ATTACH a fresh file and COPY FROM DATABASE into it (tables, views, data)."""
    temp = _temp_path(target)
    _discard(temp)
    row = con.execute("SELECT current_database()").fetchone()
    name = str(row[0]) if row else "main"
    try:
        con.execute(f"ATTACH {_literal(str(temp))} AS bluepulse_snapshot")
        try:
            con.execute(f'COPY FROM DATABASE "{name}" TO bluepulse_snapshot')
        finally:
            con.execute("DETACH bluepulse_snapshot")
        _publish(temp, target)
    except BaseException:
        _discard(temp)
        raise
