"""Query results render as table, CSV or JSON; post texts and handles are data, never markup."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal

import pytest

from aggregator.report import format_csv, format_json, format_table, render

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
    assert records[0] == {"handle": "hospital-a.example.com", "likes": 12, "rate": 0.5,
                          "seen": "2026-07-04T12:00:00"}  # fmt: skip
    assert records[1]["handle"] == "b\x1b[31mred\x1b[0m\nline"
    assert records[2]["rate"] == "1.5"


def test_render_refuses_unknown_formats() -> None:
    assert render(["a"], [(1,)], "json") == format_json(["a"], [(1,)])
    with pytest.raises(ValueError, match="unknown format"):
        render(["a"], [(1,)], "xml")
