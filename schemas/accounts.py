"""The tracked-accounts registry: a CSV file both halves read (streamer: DIDs; aggregator: labels).

Header `did,handle,name` with optional `category,region,followers` (the follower baseline
interaction rates divide by; left empty it stays unknown and rates are NULL, never a guess) and
`terms` (names and variants matched in any post's text, `;`-separated: schemas/terms.py).
Every problem is reported at once, with its line number, so a broken file stops the program
at start with one clear message. Spreadsheet exports are read as they come: UTF-8 or UTF-16 with
a BOM, Windows-1252, semicolon separators. One handle on two DIDs is refused (two series, one label).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from schemas.errors import RegistryError
from schemas.terms import SEPARATOR, parse_terms_file, split_terms

REQUIRED_COLUMNS: Final = ("did", "handle", "name")
OPTIONAL_COLUMNS: Final = ("category", "region", "followers", "terms")
_DID_RE: Final = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[A-Za-z0-9.\-%:]+)$")
_HANDLE_RE: Final = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*$")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Account:
    did: str
    handle: str
    name: str
    category: str = ""
    region: str = ""
    followers: int | None = None
    terms: tuple[str, ...] = ()  # watch terms: names and variants (schemas/terms.py)


def load_accounts(path: Path) -> list[Account]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read accounts file: {exc.strerror}") from exc
    return parse_accounts(decode_accounts(data, str(path)), str(path))


def decode_accounts(data: bytes, source: str = "<accounts>") -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252: what spreadsheets export.

    A French spreadsheet saves "CSV" as Windows-1252 (Latin-1 plus €, œ, …); bytes that are not
    UTF-8 are read that way, with a log line saying so. UTF-16 without a BOM (NUL bytes) is
    refused with the line it starts on rather than guessed.
    """
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise RegistryError(f"{source}: line {_line_of(data, exc.start)}: not valid {codec}") from exc
    nul = data.find(b"\x00")
    if nul >= 0:
        raise RegistryError(
            f"{source}: line {_line_of(data, nul)}: NUL bytes, not a text CSV "
            "(UTF-16 without a byte-order mark? save it as CSV UTF-8)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start)
    text = data.decode("cp1252", errors="replace")
    if "\ufffd" in text:  # bytes cp1252 leaves undefined: plain Latin-1 (ISO-8859-1) reads them all
        text = data.decode("latin-1")
    log.warning("%s is not UTF-8 (first at line %d): read as Windows-1252/Latin-1", source, line)
    return text


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def parse_accounts(text: str, source: str = "<accounts>") -> list[Account]:
    lines = text.splitlines()
    first = lines[0] if lines else ""
    # French spreadsheets separate "CSV" fields with semicolons
    delimiter = ";" if ";" in first and "," not in first else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        raise RegistryError(
            f"{source}: line 1: {'; '.join(parts)} "
            "(expected header did,handle,name[,category,region,followers,terms])"
        )
    accounts: list[Account] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    handles: dict[str, tuple[int, str]] = {}
    for row in reader:
        line = reader.line_num
        values = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            problems.append(f"line {line}: too many fields")
            continue
        did, handle = values.get("did", ""), values.get("handle", "").lstrip("@")
        if not _DID_RE.match(did):
            problems.append(f"line {line}: invalid DID {did!r} (expected did:plc:… or did:web:…)")
        elif did in seen:
            problems.append(f"line {line}: duplicate DID {did} (first on line {seen[did]})")
        else:
            seen[did] = line
        if not _HANDLE_RE.match(handle):
            problems.append(f"line {line}: invalid handle {handle!r}")
        elif handle.lower() in handles and handles[handle.lower()][1] != did:
            # one handle, two DIDs: two metric series with the same label, and one of them is wrong
            other_line, other_did = handles[handle.lower()]
            problems.append(
                f"line {line}: handle {handle} ({did}) is also on line {other_line} ({other_did})"
            )
        elif handle.lower() not in handles:
            handles[handle.lower()] = (line, did)
        if not values.get("name"):
            problems.append(f"line {line}: empty name")
        followers = values.get("followers", "")
        if followers and not followers.isdigit():
            problems.append(f"line {line}: followers {followers!r} is not a whole number")
        terms, bad_terms = split_terms(values.get("terms", ""))
        problems.extend(f"line {line}: {problem}" for problem in bad_terms)
        accounts.append(
            Account(
                did=did,
                handle=handle.lower(),
                name=values.get("name", ""),
                category=values.get("category", ""),
                region=values.get("region", ""),
                followers=int(followers) if followers.isdigit() else None,
                terms=terms,
            )
        )
    if problems:
        raise RegistryError(f"{source}: " + "; ".join(problems))
    if not accounts:
        raise RegistryError(f"{source}: no accounts listed")
    return accounts


def accounts_csv(accounts: Sequence[Account]) -> str:
    """The accounts as a file `load_accounts` reads back (every column; `terms` when one has any)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    with_terms = any(a.terms for a in accounts)
    writer.writerow(
        REQUIRED_COLUMNS + OPTIONAL_COLUMNS if with_terms else REQUIRED_COLUMNS + OPTIONAL_COLUMNS[:3]
    )
    for a in accounts:
        followers = "" if a.followers is None else str(a.followers)
        row = [a.did, a.handle, a.name, a.category, a.region, followers]
        writer.writerow([*row, SEPARATOR.join(a.terms)] if with_terms else row)
    return out.getvalue()


def load_terms_file(path: Path, accounts: Sequence[Account]) -> dict[str, tuple[str, ...]]:
    """did → terms of a `--terms-file` (schemas/terms.py), read as leniently as the accounts file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read terms file: {exc.strerror}") from exc
    return parse_terms_file(
        decode_accounts(data, str(path)), [(a.did, a.handle) for a in accounts], str(path)
    )


def write_accounts(path: Path, accounts: Sequence[Account]) -> None:
    """Write the accounts file atomically (temp file + rename): a reader sees the old or the new."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_text(accounts_csv(accounts), encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot write accounts file: {exc.strerror or exc}") from exc
