"""A real Prometheus scrapes costrouter's metrics; every PromQL query of the bundled dashboard has data.

costrouter's metrics reach Prometheus through ``opentelemetry-exporter-prometheus`` (the SDK's
pull exporter): it names series exactly as the Collector's ``prometheus`` exporter the stack uses
(``costrouter_cost_USD_total``, ``gen_ai_client_operation_duration_seconds_bucket``, labels with
dots as underscores), and needs no Collector binary on the test machine. Prometheus is Debian's
``prometheus`` package (``.ci/run`` installs it), started here on a free port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import start_http_server

from costrouter import CostRouter
from costrouter.errors import BudgetExceededError
from costrouter.testing import Fail, ProviderDouble
from costrouter.testing.redis_server import free_port
from tests.routing import router_config

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "configs" / "stack" / "grafana" / "dashboards" / "costrouter.json"
MESSAGES = [{"role": "user", "content": "what is the capital of France"}]
SCRAPE_SECONDS = 1
# Grafana's variables as a user who opens the dashboard sees them (all groups, a 5-minute view).
GRAFANA_VARIABLES = {"$model_group": ".*", "$__rate_interval": "1m", "$__range": "5m"}


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the bundled dashboard (Tempo's TraceQL panels are not PromQL)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(DASHBOARD.read_text()))
    return found


class Prometheus:
    """``prometheus`` on a free loopback port, scraping one target every second."""

    def __init__(self, target_port: int) -> None:
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="costrouter-prometheus-"))
        config = {
            "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"},
            "scrape_configs": [
                {"job_name": "costrouter", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
            ],
        }
        (self._dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={self._dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self._dir / "log").open("wb"),
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self._dir / 'log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=20)


@pytest.fixture(scope="module")
def scraped_metrics() -> Iterator[Prometheus]:
    """Routed calls (retries, a fallback, a budget refusal) whose metrics Prometheus has scraped twice."""
    reader = PrometheusMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    metrics_port = free_port()
    server, thread = start_http_server(metrics_port, addr="127.0.0.1")
    prometheus = Prometheus(metrics_port)
    try:
        prometheus.wait_ready()
        with ProviderDouble() as provider:
            session_budget = {"scope": "session", "limit_usd": 0.01, "window": "total", "on_exceeded": "reject"}
            budgets = {"budgets": [session_budget]}
            router = CostRouter(
                router_config(provider.base_url),
                budgets=budgets,
                tracer_provider=TracerProvider(),
                meter_provider=meter_provider,
            )
            provider.set_default("flaky-model", Fail(500))
            # Two rounds a few scrapes apart, so rate() and increase() see counters move.
            for round_index in range(2):
                for group in ("fast", "capable", "flaky"):
                    router.route_completion(group, MESSAGES, max_tokens=20, session_id=f"s-{round_index}-{group}")
                with pytest.raises(BudgetExceededError):
                    router.route_completion("capable", MESSAGES, max_tokens=4000, session_id="s-over")
                time.sleep(SCRAPE_SECONDS * 3)
        yield prometheus
    finally:
        prometheus.stop()
        server.shutdown()
        thread.join(timeout=5)
        meter_provider.shutdown()


@pytest.mark.parametrize("expr", dashboard_queries())
def test_every_dashboard_query_returns_data(scraped_metrics: Prometheus, expr: str) -> None:
    query = expr
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    result = scraped_metrics.query(query)
    assert result, f"no data for {expr}"
    assert all(sample["value"][1] not in {"NaN", "+Inf", "-Inf"} for sample in result), result
