"""Shared by the deploy tests: paths of deploy/, the Prometheus HTTP API, process helpers."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import stop_or_kill

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "bluepulse.rules.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
ALERTMANAGER_DIR = DEPLOY / "alertmanager"
ALERTMANAGER_CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"


@dataclass(frozen=True, slots=True)
class PrometheusBins:
    prometheus: Path
    promtool: Path


@dataclass(frozen=True, slots=True)
class AlertmanagerBins:
    alertmanager: Path
    amtool: Path


# -- Prometheus HTTP API ---------------------------------------------------------------------
class PromError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Prom:
    base: str

    def get(self, path: str, params: dict[str, str] | list[tuple[str, str]] | None = None) -> Any:
        query = urllib.parse.urlencode(params or {})
        try:
            with urllib.request.urlopen(f"{self.base}{path}?{query}", timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise PromError(exc.read().decode(errors="replace")) from exc
        if body.get("status") != "success":
            raise PromError(json.dumps(body))
        return body["data"]

    def instant(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        data = self.get("/api/v1/query", params)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [{"value": data["result"]}]

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)}
        return list(self.get("/api/v1/query_range", params)["result"])

    def by_account(self, expr: str, at: float | None = None) -> dict[str, float]:
        return {s["metric"]["account"]: float(s["value"][1]) for s in self.instant(expr, at)}

    def scalar(self, expr: str) -> float | None:
        result = self.instant(expr)
        return float(result[0]["value"][1]) if result else None


# -- processes -------------------------------------------------------------------------------
def wait_for(what: str, check: Callable[[], Any], deadline: float, logs: list[Path]) -> Any:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if value := check():
                return value
        except (OSError, PromError) as exc:
            last = exc
        time.sleep(0.1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out waiting for {what} (last error: {last})\n{tails}")


def rfc3339(text: str) -> float:
    """Prometheus' nanosecond timestamps, for Python 3.11's fromisoformat."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bool(resp.status == 200)


def stop(proc: subprocess.Popen[bytes]) -> None:
    stop_or_kill(proc, timeout=20)
