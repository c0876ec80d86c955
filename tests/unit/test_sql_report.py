"""Query results render as table, CSV or JSON; post texts and handles are data, never markup."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest

from aggregator.report import RowLimit, format_csv, format_json, format_table, render, write_rows

COLUMNS = ["handle", "likes", "rate", "seen"]
ROWS = [
    ("hospital-a.example.com", 12, 0.5, datetime(2026, 7, 4, 12, 0)),
    ("b\x1b[31mred\x1b[0m\nline", 3, None, None),
]


def test_table_aligns_and_escapes_control_characters() -> None:
    text = format_table(COLUMNS, ROWS)
    assert "\x1b" not in text
    assert "b\\x1b[31mred\\x1b[0m\\nline" in text
    lines = text.splitlines()
    assert lines[0].startswith("handle")
    assert lines[-1] == "(2 rows)"
    assert lines[2].endswith("2026-07-04T12:00:00")
    assert "NULL" in lines[3]
    assert len(lines) == 5  # header, rule, two rows (the newline stayed escaped), footer


def test_table_cuts_long_cells() -> None:
    text = format_table(["text"], [("x" * 500,)])
    assert max(len(line) for line in text.splitlines()) == 80


def test_csv_keeps_values_verbatim_and_quoted() -> None:
    parsed = list(csv.reader(io.StringIO(format_csv(COLUMNS, ROWS))))
    assert parsed[0] == COLUMNS
    assert parsed[1] == ["hospital-a.example.com", "12", "0.5", "2026-07-04T12:00:00"]
    assert parsed[2] == ["b\x1b[31mred\x1b[0m\nline", "3", "", ""]


def test_json_is_a_list_of_objects_with_escaped_controls() -> None:
    text = format_json(COLUMNS, [*ROWS, ("c", 1, Decimal("1.5"), None)])
    assert "\x1b" not in text
    records = json.loads(text)
    assert records[0] == {
        "handle": "hospital-a.example.com",
        "likes": 12,
        "rate": 0.5,
        "seen": "2026-07-04T12:00:00",
    }
    assert records[1]["handle"] == "b\x1b[31mred\x1b[0m\nline"
    assert records[2]["rate"] == "1.5"


def test_render_refuses_unknown_formats() -> None:
    assert render(["a"], [(1,)], "json") == format_json(["a"], [(1,)])
    with pytest.raises(ValueError, match="unknown format"):
        render(["a"], [(1,)], "xml")


def test_table_streams_with_the_first_batch_widths() -> None:
    out = io.StringIO()
    count = write_rows(out, ["n", "s"], iter([[(1, "ab"), (22, "c")], [(333, "defgh")]]), "table")
    lines = out.getvalue().splitlines()
    assert count == 3
    assert lines[:2] == [" n | s", "---+---"]  # widths from the first batch…
    assert lines[2:4] == [" 1 | ab", "22 | c"]
    assert lines[4] == "333 | defgh"  # …kept: a wider later cell is printed whole
    assert lines[-1] == "(3 rows)"


def test_json_stays_one_valid_array_across_batches() -> None:
    for batches, expected in (([], []), ([[(1,)], [], [(2,), (3,)]], [{"a": 1}, {"a": 2}, {"a": 3}])):
        out = io.StringIO()
        write_rows(out, ["a"], iter(batches), "json")
        assert json.loads(out.getvalue()) == expected


def test_csv_streams_every_batch_after_one_header() -> None:
    out = io.StringIO()
    batches: list[list[tuple[int | None]]] = [[(1,)], [(None,)]]
    assert write_rows(out, ["a"], iter(batches), "csv") == 2
    assert out.getvalue() == 'a\n1\n""\n'  # csv quotes a lone empty field


LIMIT = 25


@pytest.mark.parametrize(
    ("sizes", "shown", "truncated"),
    [
        ([10, 10, 10], 25, True),
        ([10, 10, 5], 25, False),
        ([10, 15], 25, False),
        ([10, 15, 1], 25, True),
        ([30], 25, True),
        ([7], 7, False),
    ],
)
def test_row_limit_cuts_and_knows_when_rows_were_left_out(
    sizes: list[int], shown: int, truncated: bool
) -> None:
    log: list[int] = []

    def gen() -> Iterator[list[tuple[int]]]:
        for size in sizes:
            log.append(size)
            yield [(0,)] * size

    limited = RowLimit(gen(), LIMIT)
    assert sum(len(b) for b in limited) == shown
    assert limited.truncated is truncated
    assert len(log) <= len(sizes)  # stops fetching once it knows
    unlimited = RowLimit(iter([[(0,)] * 40]), None)
    assert sum(len(b) for b in unlimited) == 40
    assert not unlimited.truncated
