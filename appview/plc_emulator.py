"""Local PLC directory emulator on loopback: `/<did>/log/audit` and did:web's `did.json`.

The AppView emulator's HTTP/1.1 server answering other paths: each DID's audit log comes from a
scenario dict (entries as plc.directory writes them; helpers below build them), and a did:web
document is served for the DID its Host header and path name (`did:web:127.0.0.1%3A8080` →
`/.well-known/did.json`). Faults: `fail_first` requests answer 503, then every `fail_every`-th;
an unreachable directory is a port nobody listens on. `calls` records what was asked.
"""

from __future__ import annotations

import hashlib
import time
from base64 import b32encode
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import orjson

from appview.emulator import AppViewEmulator, Call
from appview.scenario import Scenario, World

Entry = dict[str, Any]


class PlcEmulator(AppViewEmulator):
    """`async with PlcEmulator({did: [entry, …]}) as plc: plc.url`."""

    def __init__(
        self,
        logs: Mapping[str, list[Entry]] | None = None,
        web_docs: Mapping[str, dict[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        fail_first: int = 0,
        fail_every: int | None = None,
        latency: float = 0.0,
    ) -> None:
        super().__init__(World(Scenario(accounts=0)), host, port, fail_every=fail_every, latency=latency)
        self.logs = {did: list(entries) for did, entries in (logs or {}).items()}
        self.web_docs = dict(web_docs or {})
        self.fail_first = fail_first

    async def __aenter__(self) -> PlcEmulator:
        await self.start()
        return self

    def web_did(self, path: str = "") -> str:
        """The did:web this emulator serves at `path` (e.g. `user:alice`; '' = the host's own)."""
        name = "did:web:" + quote(f"{self.host}:{self.port}", safe="")
        return f"{name}:{path}" if path else name

    async def _respond(
        self, client: str, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        path = unquote(urlsplit(target).path)
        host = headers.get("host", "")
        if self.latency:
            import asyncio  # noqa: PLC0415 - only a faulty emulator waits

            await asyncio.sleep(self.latency)
        self.requests += 1
        if self.requests <= self.fail_first or (self.fail_every and self.requests % self.fail_every == 0):
            self.failed += 1
            status, payload = 503, {"message": "injected failure"}
        elif method != "GET":
            status, payload = 405, {"message": f"{method} not allowed"}
        else:
            status, payload = self._lookup(path, host)
        self.calls.append(Call(path, {}, status, time.monotonic()))
        return status, {}, orjson.dumps(payload)

    def _lookup(self, path: str, host: str) -> tuple[int, Any]:
        if path.endswith("/log/audit"):
            did = path.removeprefix("/").removesuffix("/log/audit")
            if did in self.logs:
                return 200, self.logs[did]
            return 404, {"message": f"DID not registered: {did}"}
        if path.endswith("/did.json"):
            parts = [] if path == "/.well-known/did.json" else path.strip("/").split("/")[:-1]
            did = ":".join(["did:web", quote(host, safe=""), *parts])
            if did in self.web_docs:
                return 200, self.web_docs[did]
            return 404, {"message": f"no DID document for {did}"}
        return 404, {"message": f"not found: {path}"}


# -- scenario vocabulary: audit-log entries and DID documents as the real services write them --


def cid_of(content: object) -> str:
    """A CID-looking, deterministic identifier of `content` (base32 of its sha256)."""
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).digest()
    return "bafyrei" + b32encode(digest).decode().lower().rstrip("=")[:52]


def did_key(seed: str) -> str:
    """A did:key-looking signing / rotation key, deterministic from `seed`."""
    return "did:key:zQ3sh" + b32encode(hashlib.sha256(seed.encode()).digest()).decode().lower()[:44]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def plc_entry(
    did: str,
    when: datetime,
    *,
    handle: str,
    pds: str,
    signing_key: str,
    rotation_keys: list[str],
    prev: str | None,
    nullified: bool = False,
) -> Entry:
    """One `plc_operation` entry of an audit log."""
    op = {
        "type": "plc_operation",
        "rotationKeys": rotation_keys,
        "verificationMethods": {"atproto": signing_key},
        "alsoKnownAs": [f"at://{handle}"],
        "services": {"atproto_pds": {"type": "AtprotoPersonalDataServer", "endpoint": pds}},
        "prev": prev,
        "sig": "sig-" + cid_of([did, iso(when)])[7:40],
    }
    return {"did": did, "operation": op, "cid": cid_of(op), "nullified": nullified, "createdAt": iso(when)}


def legacy_create_entry(
    did: str, when: datetime, *, handle: str, service: str, signing_key: str, recovery_key: str
) -> Entry:
    """The genesis op of an old (2023) account: the legacy `create` shape."""
    op = {
        "type": "create",
        "signingKey": signing_key,
        "recoveryKey": recovery_key,
        "handle": handle,
        "service": service,
        "prev": None,
        "sig": "sig-" + cid_of([did, "create"])[7:40],
    }
    return {"did": did, "operation": op, "cid": cid_of(op), "nullified": False, "createdAt": iso(when)}


def tombstone_entry(did: str, when: datetime, *, prev: str) -> Entry:
    op = {"type": "plc_tombstone", "prev": prev, "sig": "sig-tomb"}
    return {"did": did, "operation": op, "cid": cid_of(op), "nullified": False, "createdAt": iso(when)}


def did_web_document(did: str, *, handle: str, pds: str, key_multibase: str) -> dict[str, Any]:
    """A did:web DID document as an atproto PDS expects it."""
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "alsoKnownAs": [f"at://{handle}"],
        "verificationMethod": [
            {
                "id": f"{did}#atproto",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key_multibase,
            }
        ],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}],
    }
