"""The tracked-accounts registry: a CSV file both halves read (streamer: DIDs; aggregator: labels).

Header `did,handle,name` with optional `category,region,followers` (the follower baseline
interaction rates divide by; left empty it stays unknown and rates are NULL, never a guess).
Every problem is reported at once, with its line number, so a broken file stops the program
at start with one clear message.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REQUIRED_COLUMNS: Final = ("did", "handle", "name")
OPTIONAL_COLUMNS: Final = ("category", "region", "followers")
_DID_RE: Final = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[A-Za-z0-9.\-%:]+)$")
_HANDLE_RE: Final = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*$")


@dataclass(frozen=True, slots=True)
class Account:
    did: str
    handle: str
    name: str
    category: str = ""
    region: str = ""
    followers: int | None = None


class RegistryError(ValueError):
    """The registry file is unusable; the message lists every problem found."""


def load_accounts(path: Path) -> list[Account]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read accounts file: {exc.strerror}") from exc
    return parse_accounts(text, str(path))


def parse_accounts(text: str, source: str = "<accounts>") -> list[Account]:
    reader = csv.DictReader(text.splitlines())
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
            "(expected header did,handle,name[,category,region,followers])"
        )
    accounts: list[Account] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
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
        if not values.get("name"):
            problems.append(f"line {line}: empty name")
        followers = values.get("followers", "")
        if followers and not followers.isdigit():
            problems.append(f"line {line}: followers {followers!r} is not a whole number")
        accounts.append(
            Account(
                did=did,
                handle=handle.lower(),
                name=values.get("name", ""),
                category=values.get("category", ""),
                region=values.get("region", ""),
                followers=int(followers) if followers.isdigit() else None,
            )
        )
    if problems:
        raise RegistryError(f"{source}: " + "; ".join(problems))
    if not accounts:
        raise RegistryError(f"{source}: no accounts listed")
    return accounts
