"""The docker-compose stack, checked without a Docker engine.

Every file the compose file mounts parses and exists, ports do not clash, images are
pinned, the collector's pipelines use only what it defines, the services point at each
other by the right names and ports, Grafana's provisioning finds the dashboard, and the
dashboard queries only metrics and attributes costrouter emits. The allowed Prometheus
names are derived from ``costrouter/semconv.py`` with the collector's translation rules
(OpenTelemetry -> Prometheus, with suffixes), not copied by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from costrouter.otel import semconv as sc

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE)


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    return compose["services"][name]


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (named volumes left out)."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (ROOT / source).resolve()
    return mounts


def _mounted_file(compose: dict[str, Any], service: str, container_path: str) -> Path:
    """The host file behind ``container_path`` in ``service``, via a file or directory mount."""
    for target, host in _mounts(_service(compose, service)).items():
        if container_path == target:
            return host
        if container_path.startswith(target.rstrip("/") + "/"):
            return host / container_path[len(target.rstrip("/")) + 1 :]
    raise AssertionError(f"{service} does not mount {container_path}")


def _config(compose: dict[str, Any], service: str, flag: str) -> Any:
    command = _service(compose, service)["command"]
    (path,) = [arg.split("=", 1)[1] for arg in command if arg.startswith(flag)]
    return _load(_mounted_file(compose, service, path))


# ---- compose -------------------------------------------------------------------------------
def test_every_mounted_host_path_exists_and_parses(compose: dict[str, Any]) -> None:
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared_volumes, f"{name}: named volume {source} is not declared"
                continue
            host = (ROOT / source).resolve()
            assert host.exists(), f"{name} mounts {source}, which does not exist"
            for file in [host] if host.is_file() else sorted(p for p in host.rglob("*") if p.is_file()):
                assert _load(file) is not None, f"{file} is empty"


def test_host_ports_do_not_clash(compose: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_port = str(port).split(":")[-2]
            assert host_port not in seen, f"{name} and {seen.get(host_port)} both publish {host_port}"
            seen[host_port] = name
    assert {"4317", "4318", "3000", "6379"} <= set(seen)


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"


def test_dependencies_name_existing_services(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for dependency in service.get("depends_on", []):
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"


# ---- the collector -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def collector(compose: dict[str, Any]) -> dict[str, Any]:
    return _config(compose, "otel-collector", "--config")


def test_collector_pipelines_use_only_defined_components(collector: dict[str, Any]) -> None:
    service = collector["service"]
    for extension in service.get("extensions", []):
        assert extension in collector["extensions"]
    assert set(service["pipelines"]) == {"traces", "metrics"}
    for pipeline_name, pipeline in service["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in collector[kind], f"pipeline {pipeline_name} names undefined {kind} {component}"


def test_collector_listens_where_compose_publishes(compose: dict[str, Any], collector: dict[str, Any]) -> None:
    protocols = collector["receivers"]["otlp"]["protocols"]
    listening = {urlparse(f"//{protocols[p]['endpoint']}").port for p in ("grpc", "http")}
    published = {int(str(p).split(":")[-1]) for p in _service(compose, "otel-collector")["ports"]}
    assert listening == {4317, 4318} == published


def _host_port(endpoint: str) -> tuple[str, int]:
    parsed = urlparse(endpoint if "//" in endpoint else f"//{endpoint}")
    assert parsed.hostname is not None
    assert parsed.port is not None
    return parsed.hostname, parsed.port


def test_services_point_at_each_other(compose: dict[str, Any], collector: dict[str, Any]) -> None:
    tempo = _config(compose, "tempo", "-config.file")
    prometheus = _config(compose, "prometheus", "--config.file")

    tempo_host, tempo_port = _host_port(collector["exporters"]["otlp/tempo"]["endpoint"])
    assert tempo_host == "tempo"
    assert tempo_port == _host_port(tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])[1]

    _, exporter_port = _host_port(collector["exporters"]["prometheus"]["endpoint"])
    targets = [t for job in prometheus["scrape_configs"] for group in job["static_configs"] for t in group["targets"]]
    assert f"otel-collector:{exporter_port}" in targets

    (remote_write,) = tempo["metrics_generator"]["storage"]["remote_write"]
    assert _host_port(remote_write["url"]) == ("prometheus", 9090)
    assert "--web.enable-remote-write-receiver" in _service(compose, "prometheus")["command"]
    assert "local-blocks" in tempo["overrides"]["defaults"]["metrics_generator"]["processors"]


# ---- Grafana -------------------------------------------------------------------------------
def _grafana_provisioning(compose: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    directory = _mounted_file(compose, "grafana", f"/etc/grafana/provisioning/{kind}")
    return [_load(path) for path in sorted(directory.glob("*.y*ml"))]


def _dashboards(compose: dict[str, Any]) -> list[dict[str, Any]]:
    dashboards = []
    for provisioning in _grafana_provisioning(compose, "dashboards"):
        for provider in provisioning["providers"]:
            directory = _mounted_file(compose, "grafana", provider["options"]["path"])
            dashboards += [_load(path) for path in sorted(directory.glob("*.json"))]
    return dashboards


def test_grafana_provisions_the_datasources_and_the_dashboard(compose: dict[str, Any]) -> None:
    datasources = {ds["uid"]: ds for p in _grafana_provisioning(compose, "datasources") for ds in p["datasources"]}
    assert {ds["type"] for ds in datasources.values()} == {"prometheus", "tempo"}
    for datasource in datasources.values():
        host, _ = _host_port(datasource["url"])
        assert host in compose["services"], f"datasource {datasource['name']} points at unknown {host}"

    (dashboard,) = _dashboards(compose)
    assert dashboard["uid"] == "costrouter"
    used = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert used == set(datasources)
    home = _service(compose, "grafana")["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert _mounted_file(compose, "grafana", home).is_file()


# ---- what the dashboard may name -----------------------------------------------------------
_UNITS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "1": ""}
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def _clean(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9:]", "_", text)).strip("_")


def prometheus_metric_name(name: str, unit: str, kind: str) -> str:
    """The collector's OTel -> Prometheus metric name (translation with suffixes).

    Name tokens split on anything but ``[a-zA-Z0-9:]``; the unit's main part (not an
    ``{annotation}``) maps s -> seconds etc. or stays as is, a ``/per`` part becomes
    ``per_<unit>``; a monotonic counter ends in ``total``; tokens join with ``_``.
    """
    tokens = [t for t in re.split(r"[^a-zA-Z0-9:]+", name) if t]
    main, _, per = unit.partition("/")
    main_suffix = "" if not main.strip() or "{" in main else _clean(_UNITS.get(main.strip(), main.strip()))
    per_suffix = "" if not per.strip() or "{" in per else "per_" + _clean(_PER_UNITS.get(per.strip(), per.strip()))
    for suffix in (main_suffix, per_suffix):
        if suffix and suffix not in tokens:
            tokens.append(suffix)
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    return "_".join(tokens)


def prometheus_label_name(attribute: str) -> str:
    """An attribute key as a Prometheus label: invalid characters become ``_``."""
    label = re.sub(r"[^a-zA-Z0-9_]", "_", attribute)
    return f"key_{label}" if label[0].isdigit() else label


def test_translation_rules_on_known_examples() -> None:
    assert prometheus_metric_name("http.server.request.duration", "s", "histogram") == (
        "http_server_request_duration_seconds"
    )
    assert prometheus_metric_name("requests.count", "1", "counter") == "requests_count_total"
    assert prometheus_metric_name("net.io", "By/s", "gauge") == "net_io_bytes_per_second"
    assert prometheus_metric_name("gen_ai.client.token.usage", "{token}", "histogram") == "gen_ai_client_token_usage"
    assert prometheus_metric_name("costrouter.cost", "USD", "counter") == "costrouter_cost_USD_total"
    assert prometheus_label_name("router.model_group") == "router_model_group"


def _semconv_attributes() -> set[str]:
    """Every attribute name semconv.py defines (metric names, span-name prefixes and units excluded)."""
    skip = ("METRIC_", "SPAN_NAME_PREFIX", "ATTEMPT_SPAN_NAME_PREFIX", "EVENT_")
    return {
        value
        for constant, value in vars(sc).items()
        if constant.isupper() and isinstance(value, str) and not constant.startswith(skip) and "." in value
    }


def _allowed_series() -> set[str]:
    series: set[str] = set()
    for name, (kind, unit) in sc.METRIC_INSTRUMENTS.items():
        base = prometheus_metric_name(name, unit, kind)
        series |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"} if kind == "histogram" else {base}
    return series


_PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "rate", "increase", "irate", "histogram_quantile", "scalar", "topk",
    "bottomk", "label_values", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
    "unless", "bool", "offset", "clamp_min", "clamp_max",
}  # fmt: skip


def _promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) an expression refers to."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals say nothing about names
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors such as [$__rate_interval]
    labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", expr))
    for group in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    if match := re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_]\w*)\s*\)\s*", expr):
        return {match[1]}, labels | {match[2]}
    identifiers = set(re.findall(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)", expr))
    unknown_functions = {f for f in re.findall(r"([a-zA-Z_]\w*)\s*\(", expr) if f not in _PROMQL_WORDS}
    assert not unknown_functions, f"unexpected PromQL functions {unknown_functions} in {expr}"
    return identifiers - _PROMQL_WORDS, labels


def _queries(dashboard: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(PromQL expressions, TraceQL queries) of every panel and template variable."""
    promql, traceql = [], []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            if target["datasource"]["type"] == "prometheus":
                promql.append(target["expr"])
            else:
                traceql.append(target["query"])
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]
        promql.append(query["query"] if isinstance(query, dict) else query)
    return promql, traceql


def test_dashboard_queries_name_only_what_costrouter_emits(compose: dict[str, Any]) -> None:
    (dashboard,) = _dashboards(compose)
    promql, traceql = _queries(dashboard)
    allowed_series = _allowed_series()
    attributes = _semconv_attributes()
    allowed_labels = {prometheus_label_name(a) for a in attributes} | {"le", "job", "instance"}

    used_series: set[str] = set()
    for expr in promql:
        metrics, labels = _promql_names(expr)
        assert metrics, f"no metric in {expr}"
        assert metrics <= allowed_series, f"{expr} names {metrics - allowed_series}; costrouter emits {allowed_series}"
        assert labels <= allowed_labels, f"{expr} names labels costrouter does not emit: {labels - allowed_labels}"
        used_series |= metrics

    for query in traceql:
        names = set(re.findall(r"\bspan\.([a-zA-Z0-9_.]*[a-zA-Z0-9_])", query))
        assert names, f"no span attribute in {query}"
        assert names <= attributes, f"{query} names attributes costrouter does not emit: {names - attributes}"

    # Every metric the issue asks the dashboard for is on it.
    for name, (kind, unit) in sc.METRIC_INSTRUMENTS.items():
        base = prometheus_metric_name(name, unit, kind)
        assert any(series.startswith(base) for series in used_series), f"the dashboard does not show {name}"
    used_attributes = {n for q in traceql for n in re.findall(r"\bspan\.([a-zA-Z0-9_.]*[a-zA-Z0-9_])", q)}
    assert {sc.SESSION_ID, sc.LLM_USAGE_COST_USD} <= used_attributes
