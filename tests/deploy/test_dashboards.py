"""Every dashboard panel query answers with data from a real Prometheus scraping a real demo.

A Prometheus server (temp dir, loopback port, 250 ms scrapes, the production rules evaluated
every 500 ms) scrapes `bluepulse demo`, which plays a generated day through the whole pipeline
in about a second. Once the last frame is committed and scraped, every target of every
dashboard runs through the HTTP API (instant or range, as the panel asks), with `$account` /
`$category` as `.*` and then as one real account. Then the demo stops and `bluepulse sql` on
its DuckDB file must give the numbers the dashboard showed.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aggregator.exposition import StoreCollector
from tests.deploy.support import (
    DASHBOARDS,
    REPO,
    RULES,
    Prom,
    PromError,
    PrometheusBins,
    http_ok,
    rfc3339,
    stop,
    wait_for,
)
from tests.support.ports import free_port
from tests.support.processes import clean_env

SCRAPE = 0.25  # seconds; the demo plays its day in ~1.2 s, so a few scrapes land mid-day
EVALUATION = 0.5
# how stale the signal metrics may be after a commit (aggregator/exposition.py)
SIGNALS_MIN_AGE = float(inspect.signature(StoreCollector).parameters["signals_min_age"].default)
DEADLINE = 60.0
ESTABLISHMENTS = "Establishments: totals (equal to SQL account_totals)"
TOP_POSTS = "Top posts, last hour"
NO_FOLLOWERS = (
    "follower baseline: nothing in bluepulse fills accounts.followers yet (Store.set_followers "
    "has no caller, the registry CSV has no followers column), so the gauge has no sample"
)
# (panel title, refId) -> why its query may return no series (it must still not error). Every
# other query must return data; a signal at 0 (nobody viral, no takeover) is still a series.
BAROMETER = "Barometer: establishments over the range"
NOTHING_WRONG = "empty whenever nothing is wrong"
MAY_BE_EMPTY = {
    (ESTABLISHMENTS, "A"): NO_FOLLOWERS,
    ("Followers", "A"): NO_FOLLOWERS,
    ("Followers over time", "A"): NO_FOLLOWERS,
    (BAROMETER, "A"): NO_FOLLOWERS,
    (BAROMETER, "G"): NO_FOLLOWERS,
    ("Interaction rate per post (per follower)", "A"): NO_FOLLOWERS,
    ("Alerts for operators (pending and firing)", "A"): NOTHING_WRONG,
    (TOP_POSTS, "A"): (
        "instant query at the end of the demo day: nobody interacted in the store clock's last "
        "hour (23:00-24:00), so no rank is exposed; the same query over the playback must have "
        "rows (test_top_posts_join_uri_and_account_over_the_playback)"
    ),
    ("Kafka consumer lag", "A"): (
        "only `bluepulse aggregator --kafka` has partitions; the demo uses the in-process queue"
    ),
    ("Alerts (pending and firing)", "A"): (
        "empty whenever nothing is wrong (the demo's pending alerts are checked by "
        "test_demo_day_raises_its_scripted_alerts)"
    ),
}


def prometheus_config(metrics_port: int | None) -> str:
    target = (
        f"""
  - job_name: bluepulse-run
    static_configs:
      - targets: ["127.0.0.1:{metrics_port}"]"""
        if metrics_port
        else " []"
    )
    return f"""global:
  scrape_interval: {int(SCRAPE * 1000)}ms
  scrape_timeout: {int(SCRAPE * 1000)}ms
  evaluation_interval: {int(EVALUATION * 1000)}ms
rule_files:
  - {RULES}
scrape_configs:{target}
"""


def stop_scraping(prom: Prom, config: Path, metrics_port: int, deadline: float, logs: list[Path]) -> None:
    """Drop the demo target before SIGTERM, so no /metrics read runs while the store closes.

    Works around a race in production code: Store.close() raises ResourceInUseException
    ("connection is busy") when a scrape's reader cursor is mid-query, and the process aborts.
    Our own two reads after the target is gone pass the collector's lock behind any read
    Prometheus had in flight.
    """
    config.write_text(prometheus_config(None))
    urllib.request.urlopen(urllib.request.Request(f"{prom.base}/-/reload", method="POST"), timeout=10).close()
    wait_for(
        "Prometheus to drop the demo target",
        lambda: not prom.get("/api/v1/targets")["activeTargets"],
        deadline,
        logs,
    )
    for _ in range(2):
        assert http_ok(f"http://127.0.0.1:{metrics_port}/metrics")


# -- dashboards ------------------------------------------------------------------------------
def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel["title"], target


def substitute(expr: str, account: str, category: str = ".*") -> str:
    for name, value in (
        ("account", account),
        ("category", category),
        ("__rate_interval", "1m"),
        ("__interval", "1s"),
        ("__range_s", "3600"),
        ("__range", "1h"),
        ("instance", ".*"),
    ):
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in expr, f"unknown template variable left in {expr!r}"
    return expr


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


@dataclass(slots=True)
class Answer:
    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool
    error: str | None = None
    series: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Demo:
    prom: Prom
    started: float
    settled: float  # rules evaluated on the final scrape, the demo still running: query `at` it
    account: str  # a real account: the one the demo day hijacks
    exposed: set[str]  # metric names the demo's /metrics declares
    answers: dict[str, list[Answer]]  # per substitution: ".*" and the real account
    sql: dict[str, dict[str, Any]]  # handle -> account_totals row (+ engagement_1h)


def ask_every_panel(prom: Prom, account: str, start: float) -> list[Answer]:
    answers = []
    for path in DASHBOARDS:
        for title, target in targets(load(path)):
            expr = substitute(target["expr"], account)
            answer = Answer(path.name, title, target["refId"], expr, bool(target.get("instant")))
            try:
                if answer.instant:
                    answer.series = prom.instant(expr)
                else:
                    answer.series = prom.range(expr, start, time.time(), SCRAPE)
            except PromError as exc:
                answer.error = str(exc)
            answers.append(answer)
    return answers


def run_sql(db: Path, query: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "bluepulse.cli", "sql", "--db", str(db), "--format", "json", query],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


def committed_everything(prom: Prom, frames: int) -> float | None:
    """Scrape time once every frame is received and every emitted event committed."""
    received = prom.scalar("max(bluepulse_streamer_frames_received_total)")
    emitted = prom.scalar("sum(bluepulse_streamer_events_emitted_total)")
    done = prom.scalar(
        "sum(bluepulse_aggregator_events_applied_total + bluepulse_aggregator_events_replayed_total)"
    )
    if received != frames or emitted is None or done != emitted:
        return None
    return prom.scalar("max(timestamp(bluepulse_aggregator_events_applied_total))")


def scraped_after(prom: Prom, moment: float) -> float | None:
    last = prom.scalar("max(timestamp(bluepulse_aggregator_events_applied_total))")
    return last if last is not None and last > moment else None


def rules_evaluated_after(prom: Prom, moment: float) -> bool:
    groups = prom.get("/api/v1/rules")["groups"]
    return bool(groups) and all(rfc3339(g["lastEvaluation"]) > moment for g in groups)


@pytest.fixture(scope="module")
def demo(prometheus_bins: PrometheusBins, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("deploy")
    prom_port, metrics_port = free_port(), free_port()
    (tmp / "prometheus.yml").write_text(prometheus_config(metrics_port))
    prom_log, demo_log = tmp / "prometheus.log", tmp / "demo.log"
    logs = [prom_log, demo_log]
    prom = Prom(f"http://127.0.0.1:{prom_port}")
    deadline = time.monotonic() + DEADLINE
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with prom_log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        str(prometheus_bins.prometheus),
                        f"--config.file={tmp / 'prometheus.yml'}",
                        f"--storage.tsdb.path={tmp / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                        "--web.enable-lifecycle",
                        "--log.level=warn",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=tmp,
                )
            )
        ready = f"{prom.base}/-/ready"
        wait_for("Prometheus to be ready", lambda: http_ok(ready), deadline, logs)
        # Prometheus applies discovered targets every 5 s: wait until it scrapes the (still
        # closed) port, or the first scrape would come after the day is over.
        wait_for(
            "Prometheus to scrape the demo's port",
            lambda: prom.instant('up{job="bluepulse-run"}'),
            deadline,
            logs,
        )
        started = time.time()
        with demo_log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bluepulse.cli",
                        "demo",
                        "--state-dir",
                        str(tmp / "state"),
                        "--metrics-port",
                        str(metrics_port),
                        "--demo-rate",
                        "3000",
                        "--demo-scale",
                        "0.3",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                    env=clean_env(),
                )
            )
        demo_proc = procs[-1]
        wait_for("the demo day to be played", lambda: "fully played" in demo_log.read_text(), deadline, logs)
        frames = int(re.search(r"demo: (\d+) frames", demo_log.read_text()).group(1))  # type: ignore[union-attr]
        committed = wait_for(
            "the last event committed and scraped", lambda: committed_everything(prom, frames), deadline, logs
        )
        # the signal metrics are recomputed at most every SIGNALS_MIN_AGE: a scrape that long
        # after the last commit shows them computed on the final store
        fresh_from = committed + SIGNALS_MIN_AGE
        fresh = wait_for(
            "a scrape with fresh signals", lambda: scraped_after(prom, fresh_from), deadline, logs
        )
        wait_for(
            "the rules evaluated on that scrape", lambda: rules_evaluated_after(prom, fresh), deadline, logs
        )
        # the forensics job reads the hijacked account's PLC log some seconds after its indicators
        # turn on (aggregator/forensics.py polls every 5 s): the PLC evidence panels need it
        wait_for(
            "the PLC evidence of the night's takeover",
            lambda: prom.instant("bluepulse_account_identity_change_info"),
            deadline,
            logs,
        )
        settled = time.time()
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        exposed = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
        top = prom.instant("topk(1, max by (account) (bluepulse_account_handle_changes_24h))")
        assert top, "the demo day hijacks one account: a handle change must be exposed"
        account = top[0]["metric"]["account"]
        answers = {
            ".*": ask_every_panel(prom, ".*", started - 1),
            account: ask_every_panel(prom, account, started - 1),
        }

        stop_scraping(prom, tmp / "prometheus.yml", metrics_port, deadline, logs)
        stop(demo_proc)  # the writer lets go of the DuckDB file: `bluepulse sql` reads it directly
        assert demo_proc.returncode == 0, demo_log.read_text()[-3000:]
        db = tmp / "state" / "demo" / "bluepulse.duckdb"
        rows = run_sql(
            db,
            "SELECT handle, posts, likes, reposts, replies, quotes, follows_gained, "
            "follows_lost, active FROM account_totals",
        )
        sql = {r["handle"]: r for r in rows}
        window = "SELECT t.handle, w.interactions FROM account_window w JOIN account_totals t USING (did) "
        for r in run_sql(db, window + "WHERE w.\"window\" = '1h'"):
            sql[r["handle"]]["engagement_1h"] = r["interactions"]
        yield Demo(prom, started, settled, account, exposed, answers, sql)
    finally:
        for proc in reversed(procs):
            stop(proc)


# -- the dashboard files themselves ------------------------------------------------------------
# uid -> the template variables its queries use (besides datasource); one board per audience
BOARDS = {
    "bluepulse-overview": {"account", "category"},
    "bluepulse-establishment": {"account"},
    "bluepulse-barometer": {"account", "category"},
    "bluepulse-pipeline": {"instance"},
}


def test_dashboards_are_well_formed() -> None:
    assert DASHBOARDS, "no deploy/grafana/dashboards/*.json"
    uids = set()
    for path in DASHBOARDS:
        board = load(path)
        uids.add(board["uid"])
        assert board["title"]
        names = {v["name"] for v in board["templating"]["list"]}
        assert names == {"datasource"} | BOARDS[board["uid"]], path.name
        used = {
            m.group(1)
            for _, target in targets(board)
            for m in re.finditer(r"\$\{?(\w+)", target["expr"])
            if not m.group(1).startswith("__")
        }
        assert used == BOARDS[board["uid"]], f"{path.name}: variables the queries use"
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), "panel ids must be unique"
        titles = [p["title"] for p in panels(board) if p["type"] != "row"]
        assert len(titles) == len(set(titles)), "titles name the panels in this test"
        for panel in panels(board):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]
            refs = [t["refId"] for t in panel.get("targets", [])]
            assert len(refs) == len(set(refs)), panel["title"]
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        assert sum(1 for _ in targets(board)) >= 15, path.name
    assert uids == set(BOARDS)


def test_the_establishment_dashboard_shows_one_account_at_a_time() -> None:
    board = load(next(p for p in DASHBOARDS if p.name == "bluepulse-establishment.json"))
    account = next(v for v in board["templating"]["list"] if v["name"] == "account")
    assert account["multi"] is False
    assert account["includeAll"] is False
    for title, target in targets(board):
        if "bluepulse_account" in target["expr"] or "ALERTS" in target["expr"]:
            assert 'account=~"$account"' in target["expr"], title


# -- against the real Prometheus -------------------------------------------------------------------
@pytest.mark.parametrize("substitution", ["all", "one account"])
def test_every_panel_query_answers_with_data(demo: Demo, substitution: str) -> None:
    answers = demo.answers[".*" if substitution == "all" else demo.account]
    failed = [f"{a.panel}/{a.ref}: {a.error}" for a in answers if a.error]
    assert failed == [], "queries Prometheus refused"
    empty = [
        f"{a.panel}/{a.ref} ({'instant' if a.instant else 'range'}): {a.expr}"
        for a in answers
        if not a.series and (a.panel, a.ref) not in MAY_BE_EMPTY
    ]
    assert empty == [], "panel queries without data"
    assert len(answers) >= 20


def test_template_variables_list_the_demo_accounts(demo: Demo) -> None:
    for path in DASHBOARDS:
        for var in load(path)["templating"]["list"]:
            if var["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.+), *(\w+)\)", var["definition"])
            assert m, var["definition"]
            series = demo.prom.get("/api/v1/series", [("match[]", substitute(m.group(1), ".*"))])
            values = {s[m.group(2)] for s in series if m.group(2) in s}
            assert values, var["name"]
            if var["name"] == "account":
                # every tracked handle, plus the intruder's handle the hijacked account wore for a
                # while: the `account` label is the handle, so a handle change starts new series
                assert set(demo.sql) <= values
                assert len(values - set(demo.sql)) <= 1


def test_dashboard_numbers_equal_sql(demo: Demo) -> None:
    """Invariant 5: what Grafana shows equals what SQL shows."""
    columns = {
        "C": "posts",
        "D": "likes",
        "E": "reposts",
        "F": "replies",
        "G": "quotes",
        "H": "engagement_1h",
    }
    shown = {
        a.ref: {s["metric"]["account"]: float(s["value"][1]) for s in a.series}
        for a in demo.answers[".*"]
        if a.panel == ESTABLISHMENTS
    }
    for ref, column in columns.items():
        assert shown[ref] == {h: float(r[column]) for h, r in demo.sql.items()}, column
    assert sum(shown["D"].values()) > 100  # a day of engagement, not a table of zeros
    net_follows = {h: float(r["follows_gained"] - r["follows_lost"]) for h, r in demo.sql.items()}
    assert shown["B"] == net_follows


def test_scraped_signals_equal_sql(demo: Demo) -> None:
    active = demo.prom.by_account("bluepulse_account_active", at=demo.settled)
    assert active == {h: 0.0 if r["active"] is False else 1.0 for h, r in demo.sql.items()}
    assert sorted(active.values()).count(0.0) == 1  # the demo deactivates one account


def test_top_posts_join_uri_and_account_over_the_playback(demo: Demo) -> None:
    answer = next(a for a in demo.answers[".*"] if a.panel == TOP_POSTS)
    series = demo.prom.range(answer.expr, demo.started - 1, time.time(), SCRAPE)
    assert series, "no scrape during the playback had hot posts"
    known = set(demo.prom.get("/api/v1/label/account/values"))
    for s in series:
        assert s["metric"]["uri"].startswith("at://did:")
        assert s["metric"]["account"] in known
        assert int(s["metric"]["rank"]) in range(1, 11)
    assert {s["metric"]["account"] for s in series} & set(demo.sql)


def test_demo_day_raises_its_scripted_alerts(demo: Demo) -> None:
    alerts = demo.prom.instant("ALERTS", at=demo.settled)
    seen = {(a["metric"]["alertname"], a["metric"].get("account")) for a in alerts}
    deactivated = next(h for h, r in demo.sql.items() if r["active"] is False)
    assert ("AccountDeactivated", deactivated) in seen
    assert ("AccountTakeoverSuspected", demo.account) in seen


def test_rules_load_and_evaluate_without_errors(demo: Demo) -> None:
    groups = demo.prom.get("/api/v1/rules")["groups"]
    assert {g["file"] for g in groups} == {str(RULES)}
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert broken == []


def test_rules_and_dashboards_use_only_exposed_or_recorded_metrics(demo: Demo) -> None:
    groups = demo.prom.get("/api/v1/rules")["groups"]
    recorded = {r["name"] for g in groups for r in g["rules"] if r["type"] == "recording"}
    text = RULES.read_text() + "".join(p.read_text() for p in DASHBOARDS)
    used = set(re.findall(r"\b((?:account|job):bluepulse_[a-z0-9_:]*[a-z0-9_]|bluepulse_[a-z0-9_]+)", text))
    assert used - demo.exposed - recorded == set()
    assert len(used) > 40
