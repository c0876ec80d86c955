"""Watch terms: the names and spelling variants of a tracked account (issue 16).

People rarely tag an institution; they write "le CHU de Toulouse", "AP-HP", "#APHP". A term
comes from the accounts file's `terms` cell (`;`-separated: `CHU de Toulouse;CHU Toulouse;
#CHUToulouse`) or from `--terms-file` (CSV `term,account`, one term a row, `account` the DID or
handle of an account of the accounts file: every term counts for one account, so the Kafka key
and the per-account metric stay what they are). Terms are checked here, every problem at once
with its line (the file is read by schemas/accounts.py `load_terms_file`); streamer/names.py
matches them. `normalize` is the one folding both sides use: NFKD, combining marks dropped,
casefold, runs of white space made one space.
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

from schemas.errors import RegistryError

MIN_TERM: Final = 3  # characters of a term, its leading `#` not counted
SEPARATOR: Final = ";"
FILE_COLUMNS: Final = ("term", "account")
_SPACES: Final = re.compile(r"\s+")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@functools.cache
def _marks() -> re.Pattern[str]:
    """The combining marks of the Basic Multilingual Plane (accents of every script) as a
    regex class of ranges. Astral ones (historic scripts, musical notation) are left out: with
    them the class no longer fits sre's fast BMP charset and a post's normalization costs 4×."""
    ranges: list[list[int]] = []
    for code in range(0x10000):
        if unicodedata.combining(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return re.compile("[" + "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]+")


def normalize(text: str) -> str:
    """Case- and accent-insensitive form: `Hôpital  Necker` → `hopital necker`.

    ASCII text (most posts) only needs lower(); other text is decomposed (NFKD: `é` → `e` +
    U+0301, `ﬁ` → `fi`), stripped of its combining marks (one regex pass, ~2× faster than a
    loop over characters) and casefolded (`ß` → `ss`).
    """
    if text.isascii():
        folded = text.lower()
    else:
        folded = _marks().sub("", unicodedata.normalize("NFKD", text)).casefold()
    return _SPACES.sub(" ", folded) if "  " in folded or not folded.isprintable() else folded


def term_problem(term: str) -> str | None:
    """Why `term` (already stripped) cannot be a watch term, or None."""
    if not term:
        return "empty term"
    if _CONTROL.search(term):
        return f"malformed term {term!r} (control character)"
    body = term[1:] if term.startswith("#") else term
    if "#" in body:
        return f"malformed term {term!r} (# only as the first character, for a hashtag)"
    if not any(c.isalnum() for c in body):
        return f"malformed term {term!r} (no letter or digit)"
    if len(normalize(body)) < MIN_TERM:
        return f"term {term!r} is shorter than {MIN_TERM} characters"
    return None


def split_terms(cell: str) -> tuple[tuple[str, ...], list[str]]:
    """The terms of a `;`-separated cell, and the problems found (an empty cell: no terms)."""
    if not cell.strip():
        return (), []
    terms: dict[str, None] = {}
    problems = []
    for raw in cell.split(SEPARATOR):
        term = raw.strip()
        problem = term_problem(term)
        if problem is not None:
            problems.append(f"{problem} in terms {cell!r}" if not term else problem)
        elif normalize(term) not in map(normalize, terms):
            terms[term] = None
    return tuple(terms), problems


def parse_terms_file(
    text: str, accounts: Iterable[tuple[str, str]], source: str = "<terms>"
) -> dict[str, tuple[str, ...]]:
    """Header `term,account` (or `;`-separated); every problem listed at once, with its line."""
    lines = text.splitlines()
    first = lines[0] if lines else ""
    delimiter = ";" if ";" in first and "," not in first else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if header != list(FILE_COLUMNS):
        raise RegistryError(f"{source}: line 1: expected the header term,account, got {first!r}")
    known: dict[str, str] = {}
    for did, handle in accounts:
        known[did] = did
        known[handle.lower()] = did
    found: dict[str, dict[str, None]] = {}
    problems: list[str] = []
    for row in reader:
        line = reader.line_num
        if None in row:
            problems.append(f"line {line}: too many fields (quote a term that holds {delimiter!r})")
            continue
        values = [(v or "").strip() for v in row.values()]
        term, account = values[0], values[1].lstrip("@").lower() if len(values) > 1 else ""
        problem = term_problem(term)
        if problem is not None:
            problems.append(f"line {line}: {problem}")
        if not account:
            problems.append(
                f"line {line}: term {term!r} has no account (a DID or handle of the accounts file)"
            )
        elif account not in known:
            problems.append(f"line {line}: account {account!r} is not in the accounts file")
        elif problem is None:
            found.setdefault(known[account], {})[term] = None
    if problems:
        raise RegistryError(f"{source}: " + "; ".join(problems))
    return {did: tuple(terms) for did, terms in found.items()}


def merge_terms(*sources: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """did → terms, each term once per account (compared normalized), in the order given."""
    out: dict[str, dict[str, str]] = {}
    for source in sources:
        for did, terms in source.items():
            seen = out.setdefault(did, {})
            for term in terms:
                seen.setdefault(normalize(term), term)
    return {did: tuple(terms.values()) for did, terms in out.items() if terms}
