"""Pasted accounts → profiles: parse, resolve handles to DIDs, read profiles 25 at a time.

Every input ends in exactly one of `found` or `unknown`, with the reason in words, so
`accounts add` can write the found ones and list the rest (exit 1) without losing either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from appview.actors import ActorRejected, parse_actor
from appview.client import AppViewClient
from appview.models import Profile


@dataclass(frozen=True, slots=True)
class Found:
    raw: str
    profile: Profile


@dataclass(frozen=True, slots=True)
class Unknown:
    raw: str
    reason: str


@dataclass(slots=True)
class Lookup:
    found: list[Found] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)

    def dids(self) -> list[str]:
        """Found DIDs, each once, in input order."""
        return list(dict.fromkeys(f.profile.did for f in self.found))


async def lookup_accounts(client: AppViewClient, texts: Iterable[str]) -> Lookup:
    """Resolve what people pasted; the order of `found` follows the input."""
    parsed = [(raw, parse_actor(raw)) for raw in texts]
    handles = [ref.value for _, ref in parsed if not isinstance(ref, ActorRejected) and ref.kind == "handle"]
    resolutions = {r.handle: r for r in await client.resolve_handles(handles)}
    did_of: dict[str, str] = {}
    for raw, ref in parsed:
        if isinstance(ref, ActorRejected):
            continue
        did = ref.value if ref.kind == "did" else resolutions[ref.value].did
        if did:
            did_of[raw] = did
    profiles = {p.did: p for p in await client.get_profiles(did_of.values())}
    result = Lookup()
    for raw, ref in parsed:
        if isinstance(ref, ActorRejected):
            result.unknown.append(Unknown(raw, ref.detail))
        elif raw in did_of and did_of[raw] in profiles:
            result.found.append(Found(raw, profiles[did_of[raw]]))
        elif raw in did_of:
            result.unknown.append(Unknown(raw, f"no Bluesky profile for {did_of[raw]}"))
        else:
            error = resolutions[ref.value].error or "no DID"
            result.unknown.append(Unknown(raw, f"handle {ref.value} does not resolve ({error})"))
    return result
