"""What leaves the process over OTLP/HTTP is what the README's attribute tables say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from costrouter import CostRouter
from costrouter.config.settings import Settings
from costrouter.otel import semconv as sc
from costrouter.otel.exporters import configure_telemetry, read_span_records
from costrouter.testing import Fail, OtlpReceiver, ProviderDouble, Reply
from tests.routing import router_config

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "count the stars"}]

# The README's span table, as the names a backend reads from a successful call's span.
SPAN_NAMES = [
    sc.LLM_USAGE_COST_USD,
    sc.LLM_COST_TOTAL,
    sc.LLM_COST_PROMPT,
    sc.LLM_COST_COMPLETION,
    sc.GEN_AI_USAGE_COST,
    sc.GEN_AI_COST_TOTAL,
    sc.GEN_AI_COST_PROMPT,
    sc.GEN_AI_COST_COMPLETION,
    sc.GEN_AI_USAGE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    sc.LLM_TOKEN_COUNT_PROMPT,
    sc.LLM_TOKEN_COUNT_COMPLETION,
    sc.LLM_TOKEN_COUNT_TOTAL,
    sc.OPENINFERENCE_SPAN_KIND,
    sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_REQUEST_MODEL,
    sc.GEN_AI_RESPONSE_MODEL,
    sc.LLM_MODEL_NAME,
    sc.GEN_AI_PROVIDER_NAME,
    sc.GEN_AI_SYSTEM,
    sc.LLM_PROVIDER,
    sc.GEN_AI_RESPONSE_ID,
    sc.GEN_AI_RESPONSE_FINISH_REASONS,
    sc.LLM_FINISH_REASON,
    sc.GEN_AI_REQUEST_MAX_TOKENS,
    sc.LLM_LATENCY_MS,
    sc.SESSION_ID,
    sc.USER_ID,
    sc.GEN_AI_CONVERSATION_ID,
    sc.TEAM_ID,
    sc.ROUTER_TAGS,
    sc.TAG_TAGS,
    sc.METADATA,
    sc.ROUTER_MODEL_GROUP,
    sc.ROUTER_SERVED_GROUP,
    sc.ROUTER_DEPLOYMENT_ID,
    sc.ROUTER_MESSAGE_COUNT,
    sc.ROUTER_ATTEMPTS,
    sc.ROUTER_RETRIES,
    sc.ROUTER_FALLBACKS,
    sc.ROUTER_CALL_ID,
    sc.ROUTER_STREAM,
    sc.ROUTER_USAGE_SOURCE,
    sc.BUDGET_OUTCOME,
    sc.BUDGET_SCOPES,
    sc.BUDGET_NAMES,
    sc.BUDGET_LIMIT_USD,
    sc.BUDGET_SPENT_BEFORE_USD,
    sc.BUDGET_ESTIMATE_USD,
    sc.BUDGET_SETTLED_USD,
    sc.BUDGET_REMAINING_USD,
]


def test_spans_and_metrics_over_otlp_carry_the_documented_names(otlp_env: OtlpReceiver) -> None:
    setup = configure_telemetry(Settings(exporter="otlp", metric_export_interval_seconds=60), set_global=False)
    with ProviderDouble() as provider:
        provider.script("flaky-model", Fail(500))
        router = CostRouter(
            router_config(provider.base_url, num_retries=0),
            budgets={"budgets": [{"scope": "session", "limit_usd": 5, "window": "total"}]},
            tracer_provider=setup.tracer_provider,
            meter_provider=setup.meter_provider,
        )
        router.route_completion(
            "flaky",
            MESSAGES,
            max_tokens=20,
            session_id="sess-otlp",
            user_id="user-otlp",
            team_id="team-otlp",
            tags=["e2e"],
            metadata={"ticket": 7},
        )
        setup.shutdown()

    spans = otlp_env.wait_for_spans(3)
    (call,) = [span for span in spans if span.name == "router.completion/flaky"]
    missing = [name for name in SPAN_NAMES if name not in call.attributes]
    assert missing == []
    assert call.attributes[sc.SESSION_ID] == "sess-otlp"
    assert call.attributes[sc.ROUTER_FALLBACKS] == 1
    assert call.resource["service.name"] == "costrouter"
    attempts = [span for span in spans if span.parent_span_id == call.span_id]
    assert sorted(span.attributes[sc.ATTEMPT_KIND] for span in attempts) == ["fallback", "first"]
    failed = next(span for span in attempts if span.attributes[sc.ATTEMPT_KIND] == "first")
    assert failed.status_code == "ERROR"
    assert failed.attributes[sc.ERROR_TYPE] == "InternalServerError"

    points = otlp_env.wait_for_metrics(*sc.METRIC_INSTRUMENTS)
    for name, (_, unit) in sc.METRIC_INSTRUMENTS.items():
        named = [point for point in points if point.metric == name]
        assert named, name
        assert {point.unit for point in named} == {unit}
        for point in named:
            assert "sess-otlp" not in point.attributes.values()
            assert "user-otlp" not in point.attributes.values()
    kinds = {p.attributes[sc.ATTEMPT_KIND] for p in points if p.metric == sc.METRIC_ATTEMPTS}
    assert kinds == {"first", "fallback"}


def test_settings_alone_set_up_export_and_exit_flushes(tmp_path: Path) -> None:
    """``COSTROUTER_EXPORTER=file`` and no explicit providers: spans reach the file at exit."""
    span_file = tmp_path / "spans.jsonl"
    with ProviderDouble() as provider:
        provider.set_default("fast-model", Reply(completion_tokens=3))
        config = tmp_path / "router.yaml"
        config.write_text(json.dumps(router_config(provider.base_url)))
        script = (
            "import costrouter;"
            "costrouter.route_completion("
            "'fast', [{'role': 'user', 'content': 'hi'}], max_tokens=5, session_id='s-exit')"
        )
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COSTROUTER_"))},
            "PYTHONPATH": str(ROOT),
            "COSTROUTER_CONFIG": str(config),
            "COSTROUTER_EXPORTER": "file",
            "COSTROUTER_EXPORT_FILE": str(span_file),
        }
        completed = subprocess.run(
            [sys.executable, "-c", script], env=environment, cwd=tmp_path, capture_output=True, timeout=120, check=False
        )
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    records = list(read_span_records(span_file))  # OTLP JSON lines, read back as span records
    (call,) = [record for record in records if record["name"] == "router.completion/fast"]
    assert call["attributes"][sc.SESSION_ID] == "s-exit"
    assert call["attributes"][sc.LLM_USAGE_COST_USD] > 0


def test_exporter_none_uses_the_global_providers() -> None:
    router = CostRouter({"groups": {"g": {"deployments": [{"model": "openai/x"}]}}}, settings=Settings(exporter="none"))
    assert router.telemetry_setup is None
