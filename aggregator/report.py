"""Render query results as a text table, CSV or JSON (`bluepulse sql --format …`).

Post texts and handles are data, never markup: the table escapes control characters
(newlines, terminal escape sequences) so a hostile post cannot rewrite the terminal;
JSON escapes them by construction; CSV keeps values verbatim, quoted as needed.
Rows are written batch by batch as the query yields them, so any result size prints in
flat memory; `RowLimit` stops after `--max-rows` and says whether rows were left out.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Final, TextIO

FORMATS: Final = ("table", "csv", "json")
_MAX_CELL: Final = 80


def _scalar(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _escape(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif code < 0x20 or 0x7F <= code < 0xA0 or char in "\u2028\u2029\u202e\u2066\u2067":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = _escape(str(_scalar(value)))
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


Row = Sequence[Any]


class RowLimit:
    """The batches cut to the first `limit` rows (None: all); `truncated` tells if more existed."""

    def __init__(self, batches: Iterable[Sequence[Row]], limit: int | None) -> None:
        self._batches = batches
        self._limit = limit
        self.truncated = False

    def __iter__(self) -> Iterator[Sequence[Row]]:
        if self._limit is None:
            yield from self._batches
            return
        left = self._limit
        batches = iter(self._batches)
        for batch in batches:
            if len(batch) >= left:
                if left:
                    yield batch[:left]
                self.truncated = len(batch) > left or any(len(more) for more in batches)
                return
            yield batch
            left -= len(batch)


def write_rows(
    out: TextIO, columns: Sequence[str], batches: Iterable[Sequence[Row]], fmt: str = "table"
) -> int:
    """Write the rows batch by batch as they come (never the whole result at once); the row count."""
    writers = {"table": _write_table, "csv": _write_csv, "json": _write_json}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return writers[fmt](out, columns, batches)


def _write_table(out: TextIO, columns: Sequence[str], batches: Iterable[Sequence[Row]]) -> int:
    """Column widths and alignment come from the first batch and hold for the rest."""
    header = [_cell(c) for c in columns]
    layout: _Layout | None = None
    count = 0
    for batch in batches:
        body = [[_cell(v) for v in row] for row in batch]
        if layout is None:
            layout = _Layout(header, body, batch)
            out.write(layout.line(header) + "\n" + layout.rule() + "\n")
        out.write("".join(layout.line(cells) + "\n" for cells in body))
        out.flush()
        count += len(batch)
    if layout is None:
        layout = _Layout(header, [], [])
        out.write(layout.line(header) + "\n" + layout.rule() + "\n")
    out.write(f"({count} row{'s' if count != 1 else ''})\n")
    return count


class _Layout:
    """Widths (cells already cut at 80 characters) and right-alignment of numeric columns."""

    def __init__(self, header: Sequence[str], body: Sequence[Sequence[str]], rows: Sequence[Row]) -> None:
        self.widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]
        self.numeric = [
            all(isinstance(r[i], int | float | Decimal) for r in rows if r[i] is not None)
            for i in range(len(header))
        ]

    def line(self, cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, self.widths, self.numeric, strict=True)
        ]
        return " | ".join(parts).rstrip()

    def rule(self) -> str:
        return "-+-".join("-" * w for w in self.widths)


def _write_csv(out: TextIO, columns: Sequence[str], batches: Iterable[Sequence[Row]]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for batch in batches:
        writer.writerows(["" if v is None else _scalar(v) for v in row] for row in batch)
        out.flush()
        count += len(batch)
    return count


def _write_json(out: TextIO, columns: Sequence[str], batches: Iterable[Sequence[Row]]) -> int:
    """A JSON array of objects, one per line: valid JSON however many batches arrive."""
    count = 0
    for batch in batches:
        for row in batch:
            record = {c: _scalar(v) for c, v in zip(columns, row, strict=True)}
            out.write(("[\n" if count == 0 else ",\n") + json.dumps(record, ensure_ascii=False, default=str))
            count += 1
        out.flush()
    out.write("[]\n" if count == 0 else "\n]\n")
    return count


def render(columns: Sequence[str], rows: Sequence[Row], fmt: str = "table") -> str:
    """The whole output as one string (small results, tests)."""
    buffer = io.StringIO()
    write_rows(buffer, columns, [rows], fmt)
    return buffer.getvalue().removesuffix("\n") if fmt != "csv" else buffer.getvalue()


def format_table(columns: Sequence[str], rows: Sequence[Row]) -> str:
    """Aligned text table; numbers right-aligned, cells escaped and cut at 80 characters."""
    return render(columns, rows, "table")


def format_csv(columns: Sequence[str], rows: Sequence[Row]) -> str:
    return render(columns, rows, "csv")


def format_json(columns: Sequence[str], rows: Sequence[Row]) -> str:
    """A JSON array of objects, one per row."""
    return render(columns, rows, "json")
