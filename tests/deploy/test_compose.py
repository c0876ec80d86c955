"""deploy/compose.yaml and deploy/Dockerfile agree with the code (no Docker needed).

The bluepulse services' BLUEPULSE_* variables go through the real config resolver, the image
installs every package pyproject.toml lists, Prometheus scrapes the ports the services bind,
and only loopback ports are published. Files are read line by line (no YAML parser in the venv).
"""

from __future__ import annotations

import re
import tomllib

import pytest

from bluepulse.config import resolve
from tests.deploy.support import DEPLOY, PROMETHEUS_DIR, REPO

COMPOSE = (DEPLOY / "compose.yaml").read_text()


def service_block(name: str) -> str:
    m = re.search(rf"^  {name}:\n(.*?)(?=^  \S|^\S|\Z)", COMPOSE, re.M | re.S)
    assert m, f"service {name} not in compose.yaml"
    return m.group(1)


def service_env(name: str) -> dict[str, str]:
    pairs = re.findall(r"^\s+(BLUEPULSE_[A-Z_]+): *(\S+)", service_block(name), re.M)
    return {key: value.strip("\"'") for key, value in pairs}


@pytest.mark.parametrize("service", ["streamer", "aggregator"])
def test_service_environment_is_a_valid_bluepulse_config(service: str) -> None:
    assert f'command: ["{service}"]' in service_block(service)
    config = resolve(service, {}, service_env(service))  # raises ConfigError listing every problem
    assert config.metrics_host == "0.0.0.0"  # reachable from Prometheus inside the network
    assert config.kafka == "kafka:9092"
    assert f"{service}:{config.metrics_port}" in (PROMETHEUS_DIR / "prometheus.yml").read_text()


def test_only_loopback_ports_are_published() -> None:
    published = re.findall(r'^\s+- "([^"]+:\d+)"\s*$', COMPOSE, re.M)
    assert published, "Prometheus and Grafana should be reachable from the host"
    assert all(p.startswith("127.0.0.1:") for p in published), published
    for service in ("streamer", "aggregator", "kafka"):
        assert re.search(r"^\s+ports:", service_block(service), re.M) is None


def test_image_installs_every_package() -> None:
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    copied = re.findall(r"^COPY (\w+) \./\1$", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert sorted(copied) == sorted(packages)


def test_grafana_mounts_match_the_provisioning() -> None:
    provider = (DEPLOY / "grafana" / "provisioning" / "dashboards" / "bluepulse.yml").read_text()
    path = re.search(r"^\s+path: (\S+)", provider, re.M)
    assert path
    assert f"./grafana/dashboards:{path.group(1)}:ro" in COMPOSE
    datasource = (DEPLOY / "grafana" / "provisioning" / "datasources" / "bluepulse.yml").read_text()
    assert "url: http://prometheus:9090" in datasource


def test_alertmanager_is_wired_to_prometheus_and_its_config() -> None:
    block = service_block("alertmanager")
    config = re.search(r"--config\.file=(\S+)", block)
    assert config
    assert "./alertmanager:/etc/alertmanager:ro" in block
    assert config.group(1) == "/etc/alertmanager/alertmanager.yml"
    assert (DEPLOY / "alertmanager" / "alertmanager.yml").is_file()
    assert list((DEPLOY / "alertmanager" / "templates").glob("*.tmpl"))
    assert '"127.0.0.1:9093:9093"' in block
    prometheus = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    alerting = re.search(r"^alerting:\n(.*?)(?=^\S|\Z)", prometheus, re.M | re.S)
    assert alerting, "prometheus.yml sends alerts nowhere"
    assert 'targets: ["alertmanager:9093"]' in alerting.group(1)
    assert "- alertmanager" in service_block("prometheus")  # depends_on
