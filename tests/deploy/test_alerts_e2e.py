"""Alerts end to end, for real: firehose → bluepulse → Prometheus → Alertmanager → webhook.

A night on the relay emulator: the seed-002 takeover (relay/takeover_scenario.py: a hospital
moved to an unknown PDS posts a burst of spam at night and reposts an unknown account's video;
its PLC log is served by the PLC emulator), a post of another hospital going viral, and a
bad buzz: twenty posts naming the hijacked hospital by its watch terms, none tagging it.
`bluepulse run` reads it; a real Prometheus scrapes it every 250 ms with the project's rules
(a test copy where only the three expected alerts wait seconds instead of minutes: `for:`), and
sends to a real Alertmanager running the production routes (tests/deploy/alerting.py) whose
webhooks and SMTP relay are this test's. The three alerts must arrive with their labels and
annotations (account handle, post URI, bsky.app link, the PLC evidence), each through its
receiver, and nothing else may fire or even be pending.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from appview.plc_emulator import PlcEmulator
from relay.demo_day import make_did
from relay.emulator import RelayEmulator
from relay.script import FrameScript
from relay.takeover_scenario import TakeoverExpected, takeover_scenario
from schemas.accounts import Account, accounts_csv
from tests.deploy.alerting import Notification, SmtpSink, WebhookReceiver, alertmanager, config_for_tests
from tests.deploy.support import (
    RULES,
    AlertmanagerBins,
    Prom,
    PrometheusBins,
    http_ok,
    rfc3339,
    wait_for,
)
from tests.support.ports import free_port
from tests.support.processes import ChildProcess, bluepulse_argv

SEED = 16
SCRAPE, EVALUATION = 0.25, 0.5
DEADLINE = 120.0
# The alerts this night must raise, (alertname, severity) → their `for:` in the test copy of the
# rules (minutes in production). The takeover waits longer: the forensics job polls the signals
# every 5 s, then reads the PLC log; production's 1m gives the evidence the same head start
# before the first notification (Alertmanager does not re-send for changed annotations).
SHORT_FOR = {
    ("ViralPost", "info"): "2s",
    ("AccountTakeoverSuspected", "critical"): "40s",  # 15 s was too short on a loaded machine
    ("NameMentionSpike", "warning"): "2s",
}
EXPECTED = set(SHORT_FOR)
VIRAL = Account(
    make_did(SEED, "chu-exemple-rive"), "chu-exemple-rive.bsky.social", "CHU Exemple Rive", "CHU", "Normandie"
)
TERMS = ("CHU Exemple Garonne", "CHU de Garonne", "#CHUExempleGaronne")
MENTIONS = 20
VIRAL_LIKES = 45
_BUZZ = (
    "Le chu exemple garonne publie des vidéos complotistes ?! Quelqu'un a piraté leur compte ?",
    "Incroyable ce que poste le CHU Exemple Garonne cette nuit",
    "#CHUExempleGaronne vous avez été hackés ? Ces posts sont lunaires",
    "Le CHU de Garonne relaie une vidéo politique à 4 h du matin, sérieusement ?",
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Night:
    frames: list[bytes]
    accounts: list[Account]
    plc_logs: dict[str, Any]
    takeover: TakeoverExpected
    viral_post: str
    last: datetime  # the time of the last frame (the highest seq)


def night(midnight: datetime) -> Night:
    """Three ordinary days for the viral hospital, then the seed-002 takeover, then the night's
    viral post and bad buzz, all in the store clock's last hour (the takeover burst ends it).

    `midnight`: where the scenario puts 00:00 of the night; the test shifts it so that the last
    frame is about now, as on a live firehose (frames days old would make the streamer's lag
    huge, and StreamerLagHigh pending). The indicators compare hours of the day, not clocks.
    """
    NIGHT = midnight  # noqa: N806 - the scenario's name for it
    s = FrameScript(start=NIGHT - timedelta(days=3))
    public = [make_did(SEED, f"public/{i}") for i in range(VIRAL_LIKES)]
    for day in (3, 2, 1):  # 4 posts a day in office hours, 2 likes each: 2 interactions per post
        morning = NIGHT - timedelta(days=day) + timedelta(hours=9)
        for i in range(4):
            uri = s.at(morning + timedelta(hours=2 * i)).post(
                VIRAL.did, f"Information aux patients n°{day}{i}."
            )
            for j in range(2):
                s.at(morning + timedelta(hours=2 * i, minutes=10 + j)).like(public[j], uri)
    sc = takeover_scenario(night=NIGHT, script=s)
    start = NIGHT + timedelta(hours=2, minutes=47)  # the burst runs 02:45–03:20 UTC
    viral = s.at(start).post(VIRAL.did, "Merci à nos équipes de nuit, mobilisées pour les urgences.")
    for i, fan in enumerate(public):
        s.at(start + timedelta(minutes=2, seconds=20 * i)).like(fan, viral)
    for i in range(MENTIONS):  # 03:00–03:19, untracked authors, no mention facet
        author = make_did(SEED, f"buzz/{i}")
        s.at(NIGHT + timedelta(hours=3, seconds=57 * i)).post(author, _BUZZ[i % len(_BUZZ)])
    assert s.now <= sc.expected.last_frame + timedelta(minutes=1)
    hospital, peer = sc.accounts
    accounts = [replace(hospital, terms=TERMS), peer, VIRAL]
    return Night(s.frames, accounts, dict(sc.plc_logs), sc.expected, viral, s.now)


def rules_copy(path: Path) -> Path:
    """The production rules with SHORT_FOR on the expected alerts, every other rule unchanged."""
    blocks = re.split(r"(?m)^(?=      - (?:alert|record): )", RULES.read_text())
    shortened = 0
    for i, block in enumerate(blocks):
        name = re.match(r"      - alert: (\S+)", block)
        severity = re.search(r"^\s+severity: (\w+)", block, re.M)
        if name and severity and (key := (name.group(1), severity.group(1))) in SHORT_FOR:
            blocks[i], n = re.subn(r"(?m)^        for: \S+$", f"        for: {SHORT_FOR[key]}", block)
            shortened += n
    assert shortened == len(EXPECTED), (
        "an expected alert lost its `for:` (or the rules file's layout changed)"
    )
    path.write_text("".join(blocks))
    return path


def prometheus_config(rules: Path, metrics_port: int, alertmanager_base: str) -> str:
    return f"""global:
  scrape_interval: {int(SCRAPE * 1000)}ms
  scrape_timeout: {int(SCRAPE * 1000)}ms
  evaluation_interval: {int(EVALUATION * 1000)}ms
rule_files:
  - {rules}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{alertmanager_base.removeprefix("http://")}"]
scrape_configs:
  - job_name: bluepulse-run
    static_configs:
      - targets: ["127.0.0.1:{metrics_port}"]
"""


async def waiting(what: str, check: Callable[[], T | None], deadline: float, logs: list[Path]) -> T:
    """tests.deploy.support.wait_for in a thread: the emulators keep serving meanwhile."""
    result: T = await asyncio.to_thread(wait_for, what, check, deadline, logs)
    return result


Sent = dict[tuple[str, str, str, str, str], dict[str, Any]]


def firing(notifications: list[Notification]) -> Sent:
    """(receiver, webhook, alertname, severity, account) → the alert, for every firing alert sent.
    `webhook`: the placeholder host of the production config the notification went to."""
    out: Sent = {}
    for n in notifications:
        for a in n.body["alerts"]:
            labels = a["labels"]
            if a["status"] == "firing":
                key = (labels["alertname"], labels["severity"], labels.get("account", ""))
                out[(n.body["receiver"], n.path, *key)] = a
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    night: Night
    alerts: list[dict[str, Any]]  # Prometheus' ALERTS at the end
    indicators: set[str]  # the hijacked account's takeover indicators at the end
    notifications: list[Notification]
    am_alerts: list[dict[str, Any]]  # Alertmanager's /api/v2/alerts at the end
    mails: list[Any]
    plc_calls: int


class Pipeline:
    """bluepulse run, then Prometheus scraping it and sending to Alertmanager."""

    def __init__(self, tmp: Path, n: Night, relay: str, plc: str, bins: PrometheusBins) -> None:
        self.tmp, self.bins = tmp, bins
        accounts = tmp / "accounts.csv"
        accounts.write_text(accounts_csv(n.accounts))
        self.metrics_port, prom_port = free_port(), free_port()
        self.prom = Prom(f"http://127.0.0.1:{prom_port}")
        argv = bluepulse_argv(
            "run",
            "--relay",
            relay,
            "--plc",
            plc,
            "--accounts",
            str(accounts),
            "--state-dir",
            str(tmp / "state"),
            "--db",
            str(tmp / "bluepulse.duckdb"),
            "--metrics-port",
            str(self.metrics_port),
            "--checkpoint-interval",
            "0.1",
        )
        self.run = ChildProcess("run", argv, tmp / "run.log")
        prometheus = [
            str(bins.prometheus),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ]
        self.prometheus = ChildProcess("prometheus", prometheus, tmp / "prometheus.log", cwd=tmp)
        self.logs = [self.run.log, self.prometheus.log]

    def start_prometheus(self, alertmanager_base: str) -> None:
        rules = rules_copy(self.tmp / "rules.yml")
        (self.tmp / "prometheus.yml").write_text(
            prometheus_config(rules, self.metrics_port, alertmanager_base)
        )
        self.prometheus.start()

    def close(self) -> None:
        self.prometheus.stop_or_kill()
        self.run.stop_or_kill()
        self.run.close()


async def play(tmp: Path, prometheus_bins: PrometheusBins, alertmanager_bins: AlertmanagerBins) -> Outcome:
    # the last frame a few seconds ago, as on a live firehose
    probe = datetime(2026, 1, 1, tzinfo=UTC)
    n = night(datetime.now(UTC).replace(microsecond=0) - (night(probe).last - probe) - timedelta(seconds=5))
    deadline = time.monotonic() + DEADLINE
    with WebhookReceiver().serving() as hooks, SmtpSink().serving() as smtp:
        async with RelayEmulator() as relay, PlcEmulator(n.plc_logs) as plc:
            pipeline = Pipeline(tmp, n, relay.url, plc.url, prometheus_bins)
            prom, logs = pipeline.prom, pipeline.logs
            try:
                pipeline.run.start()
                config = config_for_tests(hooks.base, smtp.port)
                with alertmanager(alertmanager_bins, config, tmp / "am", deadline) as am:
                    logs.append(am.log)
                    metrics = f"http://127.0.0.1:{pipeline.metrics_port}/metrics"
                    await waiting("bluepulse run's /metrics", lambda: http_ok(metrics), deadline, logs)
                    pipeline.start_prometheus(am.base)
                    # the first scrapes see every counter at 0, before any frame
                    up = 'up{job="bluepulse-run"} == 1'
                    await waiting(
                        "Prometheus to scrape bluepulse run", lambda: prom.instant(up), deadline, logs
                    )
                    async with asyncio.timeout(30):
                        await relay.wait_for_connections(1)
                    for i in range(0, len(n.frames), 20):  # ~3 s of playback: scrapes land mid-night
                        for frame in n.frames[i : i + 20]:
                            relay.publish(frame)
                        await asyncio.sleep(0.1)

                    def committed() -> bool:
                        return prom.scalar("max(bluepulse_aggregator_last_seq)") == len(n.frames)

                    await waiting("every frame committed", committed, deadline, logs)

                    def all_three() -> Sent | None:
                        got = firing(hooks.received())
                        return got if {(k[2], k[3]) for k in got} >= EXPECTED else None

                    await waiting("the three alerts at the webhook", all_three, deadline, logs)
                    # then more evaluations and notification rounds: anything else would show
                    settle = time.time() + 5
                    await asyncio.sleep(5)

                    def evaluated() -> bool:
                        groups = prom.get("/api/v1/rules")["groups"]
                        return all(rfc3339(g["lastEvaluation"]) > settle for g in groups)

                    await waiting("rules evaluated after the quiet period", evaluated, deadline, logs)

                    def all_mails() -> bool:  # e-mails go out after the webhooks: wait for them
                        subjects = " ".join(str(m["Subject"]) for m in smtp.received())
                        return all(name in subjects for name in ("ViralPost", "NameMentionSpike", "Takeover"))

                    await waiting("the three e-mails", all_mails, deadline, logs)
                    indicators = (
                        f'account:bluepulse_takeover_indicator:value{{account="{n.takeover.handle}"}}'
                    )
                    return Outcome(
                        night=n,
                        alerts=prom.instant("ALERTS"),
                        indicators={s["metric"]["indicator"] for s in prom.instant(indicators)},
                        notifications=hooks.received(),
                        am_alerts=am.get("/api/v2/alerts"),
                        mails=smtp.received(),
                        plc_calls=len(plc.calls),
                    )
            finally:
                pipeline.close()


@pytest.fixture(scope="module")
def outcome(
    prometheus_bins: PrometheusBins,
    alertmanager_bins: AlertmanagerBins,
    tmp_path_factory: pytest.TempPathFactory,
) -> Outcome:
    return asyncio.run(play(tmp_path_factory.mktemp("alerts"), prometheus_bins, alertmanager_bins))


def test_prometheus_fires_the_three_alerts_and_nothing_else_is_even_pending(outcome: Outcome) -> None:
    alerts = {
        (a["metric"]["alertname"], a["metric"]["severity"], a["metric"]["alertstate"]) for a in outcome.alerts
    }
    assert alerts == {(name, severity, "firing") for name, severity in EXPECTED}


def test_alertmanager_holds_the_same_three_none_inhibited(outcome: Outcome) -> None:
    active = sorted((a["labels"]["alertname"], a["status"]["state"]) for a in outcome.am_alerts)
    assert active == sorted((name, "active") for name, _ in EXPECTED)


def test_each_alert_reaches_the_webhooks_of_its_receiver(outcome: Outcome) -> None:
    hospital, viral = outcome.night.takeover.handle, VIRAL.handle
    assert set(firing(outcome.notifications)) == {
        ("communication", "communication", "ViralPost", "info", viral),
        ("communication-urgent", "communication", "AccountTakeoverSuspected", "critical", hospital),
        ("communication-urgent", "communication-urgent", "AccountTakeoverSuspected", "critical", hospital),
        ("communication", "communication", "NameMentionSpike", "warning", hospital),
    }
    for x in outcome.notifications:
        assert x.body["version"] == "4"
        assert x.body["commonLabels"]["audience"] == "communication"
        assert all(a["status"] == "firing" for a in x.body["alerts"]), "nothing resolves during the night"


def sent(outcome: Outcome, receiver: str, alertname: str, severity: str, account: str) -> dict[str, Any]:
    return firing(outcome.notifications)[(receiver, receiver, alertname, severity, account)]


def test_viral_post_names_the_account_the_post_and_its_bsky_app_page(outcome: Outcome) -> None:
    post, viral = outcome.night.viral_post, VIRAL.handle
    alert = sent(outcome, "communication", "ViralPost", "info", viral)
    assert alert["labels"] == {
        "alertname": "ViralPost",
        "severity": "info",
        "audience": "communication",
        "account": viral,
    }
    did, rkey = post.removeprefix("at://").split("/app.bsky.feed.post/")
    assert alert["annotations"]["summary"] == f"A post by {viral} is going viral"
    assert alert["annotations"]["post"] == post
    assert alert["annotations"]["link"] == f"https://bsky.app/profile/{did}/post/{rkey}"
    assert f"received {VIRAL_LIKES} interactions" in alert["annotations"]["description"]
    assert f"Post: {post}" in alert["annotations"]["description"]


def test_takeover_carries_its_indicators_and_the_plc_evidence(outcome: Outcome) -> None:
    x = outcome.night.takeover
    alert = sent(outcome, "communication-urgent", "AccountTakeoverSuspected", "critical", x.handle)
    labels = {"alertname": "AccountTakeoverSuspected", "severity": "critical", "audience": "communication"}
    assert alert["labels"] == labels | {"account": x.handle}
    assert set(x.indicators) <= outcome.indicators
    count = len(outcome.indicators)
    assert (
        alert["annotations"]["summary"] == f"{x.handle} may be hijacked: {count} takeover indicators at once"
    )
    for indicator in outcome.indicators:
        assert f"{indicator}=" in alert["annotations"]["description"]
    # the PLC evidence (issue 16 item 3): old → new, read from the PLC emulator
    assert outcome.plc_calls, "the takeover signal never sent the aggregator to the PLC directory"
    assert alert["annotations"]["evidence"] == (
        f"PLC log of {x.did}, {x.changed_at:%Y-%m-%dT%H:%M:%SZ}: PDS {x.old_pds} → {x.new_pds}; "
        f"signing key {x.old_key} → {x.new_key}"
    )


def test_name_mention_spike_counts_the_posts_naming_the_account(outcome: Outcome) -> None:
    hospital = outcome.night.takeover.handle
    alert = sent(outcome, "communication", "NameMentionSpike", "warning", hospital)
    labels = {"alertname": "NameMentionSpike", "severity": "warning", "audience": "communication"}
    assert alert["labels"] == labels | {"account": hospital}
    summary = alert["annotations"]["summary"]
    named = re.fullmatch(rf"{re.escape(hospital)} is named in (\d+) posts in 30 minutes", summary)
    assert named, summary
    # increase() extrapolates the sampled range to the whole 30 min window: a little above, never below
    assert MENTIONS <= int(named.group(1)) <= MENTIONS * 1.2, summary
    assert alert["annotations"]["search"] == f"https://bsky.app/search?q={hospital}"


def test_the_communication_team_gets_the_e_mails(outcome: Outcome) -> None:
    hospital, viral, post = outcome.night.takeover.handle, VIRAL.handle, outcome.night.viral_post
    subjects = sorted(str(m["Subject"]) for m in outcome.mails)
    assert {str(m["To"]) for m in outcome.mails} == {"communication@example.org"}, subjects
    assert f"[URGENT] [bluepulse FIRING:1] AccountTakeoverSuspected {hospital}" in subjects
    assert f"[bluepulse FIRING:1] NameMentionSpike {hospital}" in subjects
    viral_mail = next(
        m for m in outcome.mails if str(m["Subject"]) == f"[bluepulse FIRING:1] ViralPost {viral}"
    )
    body = viral_mail.get_body(("plain",)).get_content()
    did, rkey = post.removeprefix("at://").split("/app.bsky.feed.post/")
    assert f"post: {post}" in body
    assert f"on Bluesky: https://bsky.app/profile/{did}/post/{rkey}" in body
    takeover = next(m for m in outcome.mails if "AccountTakeoverSuspected" in str(m["Subject"]))
    assert "evidence: PLC log of " in takeover.get_body(("plain",)).get_content()
