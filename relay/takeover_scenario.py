"""The seed-002 takeover, as firehose frames plus the PLC directory's audit logs.

A tracked hospital posts in office hours for a few days; one night its PLC log gains an
operation moving it to an unknown PDS with a new signing key (the intruder migrated the
account), then the account posts in a burst and reposts an unknown account's political video.
Its handle does not change: only the takeover signal can send the aggregator to the PLC
directory. `expected` says what a correct pipeline shows (identity_history rows, indicators,
the evidence old → new). Deterministic: the same arguments give byte-identical frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from appview.plc_emulator import Entry, did_key, plc_entry
from relay.demo_day import DEFAULT_START, DemoDay, _paris, make_did
from relay.script import FrameScript
from schemas.accounts import Account

SEED: Final = 2  # seed-002
DEMO_SEED: Final = 7  # demo_day's default seed: the day `bluepulse demo` plays
NIGHT: Final = datetime(2026, 11, 5, tzinfo=UTC)  # midnight UTC before the takeover
OLD_PDS: Final = "https://morel.us-east.host.bsky.network"
NEW_PDS: Final = "https://pds.actu-verite.example"
_OFFICE: Final = (
    "Campagne de vaccination contre la grippe : prenez rendez-vous.",
    "Don du sang ce jeudi dans le hall principal.",
    "Nous recrutons des infirmières et infirmiers en réanimation.",
    "Mois sans tabac : nos tabacologues vous accompagnent.",
)
_SPAM: Final = (
    "🔥 La vérité qu'on vous cache ! Regardez avant suppression",
    "Réveillez-vous ! Partagez massivement",
    "Ils ne veulent pas que vous voyiez cette vidéo",
)


@dataclass(frozen=True, slots=True)
class TakeoverExpected:
    """What the pipeline must show once every frame is applied."""

    did: str
    handle: str  # unchanged: the `account` label of the alert
    old_pds: str
    new_pds: str
    old_key: str
    new_key: str
    changed_at: datetime  # createdAt of the PLC op that moved the account
    video_uri: str  # the unknown account's post the hijacked account reposts
    unknown_did: str
    night_posts: int  # posts + reposts made by the account in the burst
    identity_rows: int  # rows identity_history holds for the account after one fetch
    indicators: frozenset[str]  # account:bluepulse_takeover_indicator:value{indicator}
    last_frame: datetime  # the store clock at the end: the burst is in its last hour


class TakeoverScenario(NamedTuple):
    frames: list[bytes]
    accounts: list[Account]
    plc_logs: dict[str, list[Entry]]
    expected: TakeoverExpected


def takeover_scenario(
    *, night: datetime = NIGHT, history_days: int = 3, script: FrameScript | None = None
) -> TakeoverScenario:
    """Frames (appended to `script` when given: its frames are returned), the tracked accounts,
    the PLC audit logs by DID, and the expected outcome. The burst runs 02:45–03:20 UTC of
    `night` (03:45–04:20 in Paris) and is the last activity of the scenario."""
    s = script or FrameScript(start=night - timedelta(days=history_days))
    hospital = Account(
        make_did(SEED, "chu-exemple-garonne"),
        "chu-exemple-garonne.bsky.social",
        "CHU Exemple Garonne",
        "CHU",
        "Occitanie",
    )
    peer = Account(
        make_did(SEED, "ars-exemple-occitanie"),
        "ars-exemple-occitanie.bsky.social",
        "ARS Exemple Occitanie",
        "ARS",
        "Occitanie",
    )
    public = [make_did(SEED, f"public/{i}") for i in range(6)]
    unknown = make_did(SEED, "unknown")
    for day in range(history_days, 0, -1):  # office hours, UTC 08:00–16:00
        morning = night - timedelta(days=day) + timedelta(hours=8)
        for i, text in enumerate(_OFFICE):
            uri = s.at(morning + timedelta(hours=2 * i)).post(hospital.did, text)
            for j, fan in enumerate(public[: 2 + i]):
                s.at(morning + timedelta(hours=2 * i, minutes=5 + j)).like(fan, uri)
        s.at(morning + timedelta(hours=3)).post(peer.did, "Point de situation épidémique.")
    video = s.at(night + timedelta(hours=2, minutes=30)).post(
        unknown,
        "Le discours que les médias refusent de montrer",
        link="https://www.youtube.com/watch?v=seed002",
    )
    burst = night + timedelta(hours=2, minutes=45)
    for i in range(8):
        s.at(burst + timedelta(minutes=4 * i)).post(
            hospital.did, _SPAM[i % len(_SPAM)], link="https://www.youtube.com/watch?v=seed002"
        )
    s.at(burst + timedelta(minutes=35)).repost(hospital.did, video)
    logs, old_key, new_key, changed_at = _plc_logs(hospital, peer, night)
    expected = TakeoverExpected(
        did=hospital.did,
        handle=hospital.handle,
        old_pds=OLD_PDS,
        new_pds=NEW_PDS,
        old_key=old_key,
        new_key=new_key,
        changed_at=changed_at,
        video_uri=video,
        unknown_did=unknown,
        night_posts=9,
        identity_rows=len(logs[hospital.did]),
        indicators=frozenset({"odd_hour_posts", "activity_burst", "pds_change", "signing_key_change"}),
        last_frame=s.now,
    )
    return TakeoverScenario(s.frames, [hospital, peer], logs, expected)


def _plc_logs(
    hospital: Account, peer: Account, night: datetime
) -> tuple[dict[str, list[Entry]], str, str, datetime]:
    """Both accounts' audit logs: genesis, a handle update, and (the hospital) the night's op."""
    logs = {a.did: _history(a) for a in (hospital, peer)}
    changed_at = night + timedelta(hours=2, minutes=40)
    logs[hospital.did].append(_moved(logs[hospital.did], changed_at, hospital.handle))
    old_key, new_key = (e["operation"]["verificationMethods"]["atproto"] for e in logs[hospital.did][-2:])
    return logs, old_key, new_key, changed_at.replace(tzinfo=None)


def demo_plc_logs(day: DemoDay, start: datetime = DEFAULT_START) -> dict[str, list[Entry]]:
    """The PLC directory of `bluepulse demo`: every account's genesis and handle ops, and for
    the account hijacked at night an op moving it to the intruder's PDS with a new key, ten
    seconds before its handle changes on the firehose (02:51 in Paris, demo_day.plan_takeover)."""
    logs = {a.did: _history(a) for a in day.accounts}
    midnight = start.astimezone(_paris()).replace(hour=0, minute=0, second=0, microsecond=0)
    moved_at = (midnight + timedelta(hours=2.85, seconds=-10)).astimezone(UTC)
    intruder = f"actu-verite-{make_did(DEMO_SEED, 'intruder')[-6:]}.bsky.social"  # demo_day's name
    logs[day.takeover_did].append(_moved(logs[day.takeover_did], moved_at, intruder))
    return logs


def _history(account: Account) -> list[Entry]:
    """Created in 2024 on OLD_PDS under a generated handle, renamed the next day."""
    did = account.did
    signing, rotation = did_key(f"{did}/signing"), [did_key(f"{did}/rotation")]
    genesis = plc_entry(
        did,
        datetime(2024, 3, 1, 9, tzinfo=UTC),
        handle=did[8:] + ".bsky.social",
        pds=OLD_PDS,
        signing_key=signing,
        rotation_keys=rotation,
        prev=None,
    )
    renamed = plc_entry(
        did,
        datetime(2024, 3, 2, 10, tzinfo=UTC),
        handle=account.handle,
        pds=OLD_PDS,
        signing_key=signing,
        rotation_keys=rotation,
        prev=str(genesis["cid"]),
    )
    return [genesis, renamed]


def _moved(log: list[Entry], when: datetime, handle: str) -> Entry:
    """The intruder's op: NEW_PDS, a new signing key and their own rotation key."""
    did, prev = str(log[-1]["did"]), str(log[-1]["cid"])
    rotation = [did_key(f"{did}/intruder-rotation")]
    return plc_entry(
        did,
        when,
        handle=handle,
        pds=NEW_PDS,
        signing_key=did_key(f"{did}/intruder"),
        rotation_keys=rotation,
        prev=prev,
    )
