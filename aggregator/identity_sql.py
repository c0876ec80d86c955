"""Identity forensics, store stage: `identity_history` rows written in one transaction.

Idempotent by (did, cid): fetching a log again adds only the operations it did not have, and
an operation nullified since the last fetch gets its flag. Runs from a background job through
`Store.record_identity`, never inside a batch apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import duckdb
import pyarrow as pa

from aggregator.plc import IdentityOp

_NEW_SQL: Final = """SELECT count(*) FROM identity_ops o
WHERE NOT EXISTS (SELECT 1 FROM identity_history h WHERE h.did = o.did AND h.cid = o.cid)"""
_WRITE_SQL: Final = """INSERT INTO identity_history
    (did, time, handle, pds, signing_key, rotation_keys, cid, nullified, kind, fetched_at)
SELECT did, time, handle, pds, signing_key, rotation_keys, cid, nullified, kind, fetched_at
FROM identity_ops
ON CONFLICT (did, cid) DO UPDATE SET nullified = excluded.nullified"""


def identity_table(ops: Sequence[IdentityOp], fetched_at: datetime) -> pa.Table:
    """The rows as columns (one cid once: the last entry wins, as the log is ordered)."""
    unique = list({(op.did, op.cid): op for op in ops}.values())
    return pa.table(
        {
            "did": pa.array([o.did for o in unique], pa.string()),
            "time": pa.array([o.time for o in unique], pa.timestamp("us")),
            "handle": pa.array([o.handle for o in unique], pa.string()),
            "pds": pa.array([o.pds for o in unique], pa.string()),
            "signing_key": pa.array([o.signing_key for o in unique], pa.string()),
            "rotation_keys": pa.array([list(o.rotation_keys) for o in unique], pa.list_(pa.string())),
            "cid": pa.array([o.cid for o in unique], pa.string()),
            "nullified": pa.array([o.nullified for o in unique], pa.bool_()),
            "kind": pa.array([o.kind for o in unique], pa.string()),
            "fetched_at": pa.array([fetched_at] * len(unique), pa.timestamp("us")),
        }
    )


def write_identity(con: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    """Insert (or re-flag) the rows; returns how many were new. Inside the caller's transaction."""
    con.register("identity_ops", table)
    try:
        row = con.execute(_NEW_SQL).fetchone()
        con.execute(_WRITE_SQL)
    finally:
        con.unregister("identity_ops")
    return int(row[0]) if row else 0
