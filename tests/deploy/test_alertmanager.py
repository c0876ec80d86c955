"""deploy/alertmanager: the config passes amtool, every alert reaches its team, inhibition holds.

`amtool check-config` validates the config and its templates; `amtool config routes test`
resolves the receiver of every (alert, severity) the rules file declares; a real Alertmanager
(production config, test endpoints: tests/deploy/alerting.py) shows which alerts inhibit which,
and delivers a rendered e-mail. The rules file is read line by line (no YAML parser in the
venv), relying on its layout: `- alert:` then `severity:` and `audience:` under `labels:`.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.alerting import SmtpSink, WebhookReceiver, alertmanager, config_for_tests, now_iso
from tests.deploy.support import ALERTMANAGER_CONFIG, ALERTMANAGER_DIR, RULES, AlertmanagerBins, wait_for

# The team each alert is for (issue 16): the communication teams of the establishments, or
# whoever operates the pipeline. A new alert must be added here, with its `audience` label.
AUDIENCE = {
    "ViralPost": "communication",
    "NameMentionSpike": "communication",
    "AccountTakeoverSuspected": "communication",
    "AccountDeactivated": "communication",
    "InactiveAccount": "communication",
    "BluepulseTargetDown": "operators",
    "StreamerLagHigh": "operators",
    "StreamerNoFrames": "operators",
    "StreamerMalformedFrames": "operators",
    "RelayErrorMessages": "operators",
    "AggregatorStalled": "operators",
    "AggregatorMessagesSkipped": "operators",
    "AggregatorConsumerLagHigh": "operators",
    "AggregatorHandoffUnverified": "operators",
}
# (audience, severity) -> receiver: critical alerts go to the urgent receivers
RECEIVER = {
    ("communication", "critical"): "communication-urgent",
    ("communication", "warning"): "communication",
    ("communication", "info"): "communication",
    ("operators", "critical"): "operators-urgent",
    ("operators", "warning"): "operators",
    ("operators", "info"): "operators",
}
ACCOUNT = "chu-exemple.bsky.social"


def alert_rules() -> list[dict[str, str]]:
    """One dict per alerting rule: alertname, and its severity and audience labels."""
    rules: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in RULES.read_text().splitlines():
        if m := re.match(r"\s*- (alert|record): (\S+)", line):
            current = {"alertname": m.group(2)} if m.group(1) == "alert" else None
            if current is not None:
                rules.append(current)
        elif current is not None and (m := re.match(r"\s*(severity|audience): (\w+)\s*$", line)):
            current[m.group(1)] = m.group(2)
    return rules


def amtool(bins: AlertmanagerBins, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bins.amtool), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ALERTMANAGER_DIR,
    )


def routed_to(bins: AlertmanagerBins, labels: dict[str, str], config: Path = ALERTMANAGER_CONFIG) -> str:
    proc = amtool(
        bins, "config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in labels.items())
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def example_labels(rule: dict[str, str]) -> dict[str, str]:
    """The labels Prometheus sends for this rule: per account, or per scraped process."""
    labels = dict(rule)
    if labels.get("audience") == "communication":
        labels["account"] = ACCOUNT
    elif labels["alertname"] != "AggregatorStalled":  # one alert for the whole pipeline
        labels |= {"job": "bluepulse-streamer", "instance": "streamer:9464"}
    return labels


def test_config_and_templates_are_valid(alertmanager_bins: AlertmanagerBins) -> None:
    proc = amtool(alertmanager_bins, "check-config", str(ALERTMANAGER_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " - 1 templates" in proc.stdout, proc.stdout
    assert proc.stdout.count("SUCCESS") == 2, proc.stdout  # the config, then its templates
    assert "3 inhibit rules" in proc.stdout


def test_every_alert_has_an_audience_and_a_severity() -> None:
    rules = alert_rules()
    assert len(rules) >= 13
    missing = [r for r in rules if not {"severity", "audience"} <= r.keys()]
    assert missing == [], "alerting rules without severity or audience label"
    wrong = {r["alertname"]: r["audience"] for r in rules if AUDIENCE.get(r["alertname"]) != r["audience"]}
    assert wrong == {}, "audience label differs from AUDIENCE (a new alert? add it there)"


def test_every_alert_reaches_its_receiver(alertmanager_bins: AlertmanagerBins) -> None:
    routed = {}
    for rule in alert_rules():
        labels = example_labels(rule)
        routed[(rule["alertname"], rule["severity"])] = routed_to(alertmanager_bins, labels)
    expected = {
        (r["alertname"], r["severity"]): RECEIVER[(r["audience"], r["severity"])] for r in alert_rules()
    }
    assert routed == expected
    # both audiences and both urgencies are exercised by the rules as they are
    assert set(routed.values()) == {"communication", "communication-urgent", "operators", "operators-urgent"}


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "SomethingNew", "severity": "critical"}, "unrouted"),
        ({"alertname": "SomethingNew", "severity": "warning", "audience": "marketing"}, "unrouted"),
        ({"alertname": "ViralPost", "severity": "info"}, "unrouted"),  # label forgotten
        (
            {"alertname": "Anything", "severity": "critical", "audience": "communication"},
            "communication-urgent",
        ),
        ({"alertname": "Anything", "audience": "operators"}, "operators"),
    ],
)
def test_alerts_without_a_known_audience_still_reach_the_operators(
    alertmanager_bins: AlertmanagerBins, labels: dict[str, str], receiver: str
) -> None:
    assert routed_to(alertmanager_bins, labels) == receiver
    assert "operators@example.org" in ALERTMANAGER_CONFIG.read_text().split("- name: unrouted", 1)[1]


# -- against a real Alertmanager -----------------------------------------------------------------
def alert(name: str, **labels: str) -> dict[str, Any]:
    rule = next(
        r
        for r in alert_rules()
        if r["alertname"] == name and r["severity"] == labels.get("severity", r["severity"])
    )
    merged = example_labels(rule) | labels
    return {
        "labels": merged,
        "annotations": {"summary": f"{name} test", "description": f"{name} description"},
        "startsAt": now_iso(-60),
        "endsAt": now_iso(600),
        "generatorURL": "http://prometheus.test/graph",
    }


def test_inhibition_and_an_e_mail_from_a_real_alertmanager(
    alertmanager_bins: AlertmanagerBins, tmp_path: Path
) -> None:
    streamer = {"job": "bluepulse-streamer", "instance": "streamer:9464"}
    other = {"job": "bluepulse-streamer", "instance": "streamer-2:9464"}
    aggregator = {"job": "bluepulse-aggregator", "instance": "aggregator:9464"}
    alerts = [
        alert("BluepulseTargetDown", **streamer),
        alert("StreamerNoFrames", **streamer),  # caused by the target down: inhibited
        alert("StreamerLagHigh", **other),  # another process: sent
        alert("BluepulseTargetDown", **aggregator),
        alert("AggregatorStalled"),  # the aggregator is down: inhibited
        alert("AccountTakeoverSuspected", severity="critical", account=ACCOUNT),
        alert("AccountTakeoverSuspected", severity="warning", account=ACCOUNT),  # superseded
        alert("AccountTakeoverSuspected", severity="warning", account="other.bsky.social"),
        alert("ViralPost", account=ACCOUNT),
    ]
    deadline = time.monotonic() + 60
    with WebhookReceiver().serving() as hooks, SmtpSink().serving() as smtp:
        config = config_for_tests(hooks.base, smtp.port)
        with alertmanager(alertmanager_bins, config, tmp_path, deadline) as am:
            # the inhibiting alerts first: Alertmanager updates its inhibitor asynchronously, so
            # a target posted in the same request may be flushed before its source is known
            sources = [  # BluepulseTargetDown, and the critical form of the takeover alert
                a
                for a in alerts
                if a["labels"]["alertname"] == "BluepulseTargetDown"
                or (a["labels"]["alertname"], a["labels"]["severity"])
                == ("AccountTakeoverSuspected", "critical")
            ]
            am.post_alerts(sources)
            wait_for(
                "the inhibiting alerts in Alertmanager",
                lambda: len(am.get("/api/v2/alerts")) >= len(sources) or None,
                deadline,
                [am.log],
            )
            time.sleep(0.5)  # the inhibitor's cache follows the alert store
            am.post_alerts([a for a in alerts if a not in sources])

            def states() -> dict[tuple[str, str, str], str] | None:
                got = am.get("/api/v2/alerts")
                if len(got) < len(alerts):
                    return None
                return {
                    (
                        a["labels"]["alertname"],
                        a["labels"]["severity"],
                        a["labels"].get("instance") or a["labels"].get("account", ""),
                    ): a["status"]["state"]
                    for a in got
                }

            seen = wait_for("the alerts in Alertmanager", states, deadline, [am.log])
            assert seen == {
                ("BluepulseTargetDown", "critical", "streamer:9464"): "active",
                ("StreamerNoFrames", "critical", "streamer:9464"): "suppressed",
                ("StreamerLagHigh", "warning", "streamer-2:9464"): "active",
                ("BluepulseTargetDown", "critical", "aggregator:9464"): "active",
                ("AggregatorStalled", "critical", ""): "suppressed",
                ("AccountTakeoverSuspected", "critical", ACCOUNT): "active",
                ("AccountTakeoverSuspected", "warning", ACCOUNT): "suppressed",
                ("AccountTakeoverSuspected", "warning", "other.bsky.social"): "active",
                ("ViralPost", "info", ACCOUNT): "active",
            }

            # grouping: per alert and account for the teams, per alert and process for operators
            groups = {
                (g["receiver"]["name"], tuple(sorted(g["labels"].items())))
                for g in am.get("/api/v2/alerts/groups")
            }
            assert ("communication", (("account", ACCOUNT), ("alertname", "ViralPost"))) in groups
            lag = (
                ("alertname", "StreamerLagHigh"),
                ("instance", "streamer-2:9464"),
                ("job", "bluepulse-streamer"),
            )
            assert ("operators", lag) in groups

            # what reaches the webhooks: the active alerts only, each through its receiver(s)
            def delivered() -> set[tuple[str, str, str]] | None:
                got = {
                    (n.path, a["labels"]["alertname"], a["labels"]["severity"])
                    for n in hooks.received()
                    for a in n.body["alerts"]
                }
                return got if len(got) >= 7 else None

            got = wait_for("the webhook notifications", delivered, deadline, [am.log])
            assert got == {
                ("operators", "BluepulseTargetDown", "critical"),
                ("operators-urgent", "BluepulseTargetDown", "critical"),
                ("operators", "StreamerLagHigh", "warning"),
                ("communication", "AccountTakeoverSuspected", "critical"),
                ("communication-urgent", "AccountTakeoverSuspected", "critical"),
                ("communication", "AccountTakeoverSuspected", "warning"),
                ("communication", "ViralPost", "info"),
            }
            mails = wait_for(
                "the e-mails", lambda: len(smtp.received()) >= 5 and smtp.received(), deadline, [am.log]
            )

    subjects = sorted(str(m["Subject"]) for m in mails)
    urgent = next(
        m for m in mails if str(m["Subject"]).startswith("[URGENT]") and ACCOUNT in str(m["Subject"])
    )
    assert str(urgent["Subject"]) == f"[URGENT] [bluepulse FIRING:1] AccountTakeoverSuspected {ACCOUNT}", (
        subjects
    )
    assert str(urgent["To"]) == "communication@example.org"
    parts = [part.get_content_type() for part in urgent.walk() if not part.is_multipart()]
    assert parts == ["text/plain"]  # no HTML part: labels are never markup
    body = urgent.get_body(("plain",)).get_content()
    assert "Firing (1):" in body
    assert "AccountTakeoverSuspected test" in body
    assert f"severity: critical    account: {ACCOUNT}" in body
    assert "AccountTakeoverSuspected description" in body
    assert "source: http://prometheus.test/graph" in body
    ops = [m for m in mails if str(m["To"]) == "operators@example.org"]
    assert any("StreamerLagHigh streamer-2:9464" in str(m["Subject"]) for m in ops), subjects
    assert not any(
        "StreamerNoFrames" in str(m["Subject"]) or "AggregatorStalled" in str(m["Subject"]) for m in mails
    )
