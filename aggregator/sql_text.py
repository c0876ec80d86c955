"""The words of a SQL statement as the user wrote them, past whitespace and comments.

DuckDB's statement type sometimes misnames a statement (ANALYZE is a VACUUM, a PIVOT is
MULTI), and an EXPLAIN's own text may start with comments: refusal messages and the
EXPLAIN check read the leading keywords here instead.
"""

from __future__ import annotations

import re
from typing import Final

_BLANKS: Final = re.compile(r"\s+|--[^\n]*")
_WORD: Final = re.compile(r"[A-Za-z_]+")
_EXPLAIN_OPTIONS: Final = re.compile(r"\(\s*FORMAT\s+\w+\s*\)", re.IGNORECASE)
# Second keywords that make one statement with the first: IMPORT DATABASE, UPDATE EXTENSIONS…
_SECOND_WORDS: Final = frozenset({"DATABASE", "EXTENSIONS", "INSTALL", "CHECKPOINT", "VARIABLE"})


def skip_blanks(sql: str, pos: int) -> int:
    """Index of the first character after whitespace and comments (nested /* */ included)."""
    while pos < len(sql):
        if match := _BLANKS.match(sql, pos):
            pos = match.end()
        elif sql.startswith("/*", pos):
            depth, pos = 1, pos + 2
            while pos < len(sql) and depth:
                if sql.startswith("/*", pos):
                    depth, pos = depth + 1, pos + 2
                elif sql.startswith("*/", pos):
                    depth, pos = depth - 1, pos + 2
                else:
                    pos += 1
        else:
            break
    return pos


def word_at(sql: str, pos: int) -> tuple[str, int]:
    """The keyword starting at `pos` (after blanks), upper-cased, and the index after it."""
    pos = skip_blanks(sql, pos)
    match = _WORD.match(sql, pos)
    return (match.group().upper(), match.end()) if match else ("", pos)


def leading_words(sql: str) -> str:
    """The statement's first keyword, with its second when they name one statement (IMPORT DATABASE)."""
    first, end = word_at(sql, 0)
    second, _ = word_at(sql, end)
    return f"{first} {second}" if second in _SECOND_WORDS else first


def after_explain(sql: str) -> str:
    """The statement an EXPLAIN [ANALYZE] [(FORMAT …)] explains; comments anywhere before it."""
    word, pos = word_at(sql, 0)
    if word != "EXPLAIN":
        return ""
    word, end = word_at(sql, pos)
    if word in ("ANALYZE", "ANALYSE"):
        pos = end
    pos = skip_blanks(sql, pos)
    if options := _EXPLAIN_OPTIONS.match(sql, pos):
        pos = options.end()
    return sql[pos:]
