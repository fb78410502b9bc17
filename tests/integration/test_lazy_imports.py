"""Building a router loads only what its configuration uses (issue 11).

Each case runs in a fresh interpreter: ``sys.modules`` of the test process already holds
everything other tests imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

_BUILD = """
import json, sys
from costrouter import CostRouter
config = {"groups": {"g": {"deployments": [
    {"id": "d", "model": "openai/m", "api_base": "http://127.0.0.1:9/v1", "api_key": "k"}]}}}
router = CostRouter(config, **OPTIONS)
router.shutdown()
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after_build(options: str, **env: str) -> list[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("COSTROUTER_", "OTEL_"))}
    environment.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", **env})
    result = subprocess.run(
        [sys.executable, "-c", _BUILD.replace("OPTIONS", options)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    modules: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return modules


def _loaded(modules: list[str], package: str) -> list[str]:
    return [name for name in modules if name == package or name.startswith(f"{package}.")]


def test_a_router_without_otlp_export_does_not_import_the_otlp_exporter() -> None:
    for exporter in ("none", "console"):
        modules = _modules_after_build("{}", COSTROUTER_EXPORTER=exporter)
        assert _loaded(modules, "opentelemetry.exporter.otlp") == [], exporter
        assert "costrouter.routing.calls" in modules  # the router really was built


def test_a_router_with_otlp_export_imports_it() -> None:
    modules = _modules_after_build("{}", COSTROUTER_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert "opentelemetry.exporter.otlp.proto.http.trace_exporter" in modules


_MEMORY_BUDGETS = '{"budgets": {"budgets": [{"name": "per-session", "scope": "session", "limit_usd": 1}]}}'


def test_a_router_without_a_redis_store_does_not_import_redis() -> None:
    for options in ("{}", _MEMORY_BUDGETS):
        modules = _modules_after_build(options, COSTROUTER_EXPORTER="none")
        assert _loaded(modules, "redis") == [], options
        assert _loaded(modules, "costrouter.budget.redis") == [], options
    with_budgets = _modules_after_build(_MEMORY_BUDGETS, COSTROUTER_EXPORTER="none")
    assert "costrouter.budget.memory" in with_budgets  # the memory store really was built


def test_a_router_with_a_redis_store_imports_it(redis_url: str) -> None:
    options = json.dumps({"budgets": {"store": {"backend": "redis", "redis_url": redis_url}, "budgets": []}})
    modules = _modules_after_build(options, COSTROUTER_EXPORTER="none")
    assert "costrouter.budget.redis" in modules
    assert "redis" in modules


def test_the_command_line_loads_budgets_settings_and_the_sdk_only_in_the_commands_that_use_them() -> None:
    # `costrouter report` on a million spans: every second of start-up is a tenth of the goal.
    environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    script = "import json, sys, costrouter.cli; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True, timeout=120
    )
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    for package in (
        "litellm",
        "redis",
        "pydantic",
        "opentelemetry.sdk",
        "costrouter.budget",
        "costrouter.config.settings",
        "costrouter.config.budgets",
    ):
        assert _loaded(modules, package) == [], package
    assert "costrouter.prices_push.phoenix" not in modules
    assert "costrouter.report.read" in modules  # the command module really was imported
