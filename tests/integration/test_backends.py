"""Each backend preset, read the way that backend's ingestion reads it.

For every preset a routed call with a retry and a fallback goes through the real OTLP
receiver; the assertions apply each backend's reading rules, written once below with the
source they come from, to the decoded protobuf: the path and headers, the resource, one LLM
call per routed call, tokens and cost under the backend's names equal to ``llm.usage.cost_usd``,
the session on every span, the real model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from costrouter import CostRouter
from costrouter.config.groups import parse_router_config
from costrouter.config.settings import Settings
from costrouter.otel import semconv as sc
from costrouter.otel.backends import backend as preset_of
from costrouter.otel.conventions import CONVENTIONS, convention_of
from costrouter.otel.exporters import configure_telemetry
from costrouter.prices_push.plan import model_prices
from costrouter.prices_push.signoz import rules_for
from costrouter.testing import Fail, OtlpReceiver, ProviderDouble, ReceivedSpan, Refuse
from tests.integration.conftest import _OTEL_VARIABLES
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "count the stars"}]
SESSION, USER = "sess-backend", "user-backend"


# ---- each backend's reading rules ------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """What one backend makes of one span."""

    is_llm: bool
    model: Any = None
    input_tokens: Any = None
    output_tokens: Any = None
    cost: Any = None
    session: Any = None


def read_arthur(span: ReceivedSpan) -> Reading:
    """arthur-engine genai-engine: tokens and cost only when ``openinference.span.kind == "LLM"``
    (``services/trace/trace_ingestion_service``), cost from ``llm.cost.total``, model from
    ``llm.model_name`` (``utils/trace.py`` ``extract_llm_data``), sessions from ``session.id``."""
    a = span.attributes
    return Reading(
        a.get(sc.OPENINFERENCE_SPAN_KIND) == "LLM",
        a.get(sc.LLM_MODEL_NAME),
        a.get(sc.LLM_TOKEN_COUNT_PROMPT),
        a.get(sc.LLM_TOKEN_COUNT_COMPLETION),
        a.get(sc.LLM_COST_TOTAL),
        a.get(sc.SESSION_ID),
    )


def read_langsmith(span: ReceivedSpan) -> Reading:
    """docs.langchain.com/langsmith/trace-with-opentelemetry: run type from ``langsmith.span.kind``,
    else ``openinference.span.kind``, else ``gen_ai.operation.name`` chat/completion -> llm;
    ``langsmith.metadata.*`` is metadata (``ls_model_name``); /cost-tracking: cost from
    ``usage_metadata.total_cost``; /threads: the thread from metadata ``session_id``."""
    a = span.attributes
    kind = a.get("langsmith.span.kind") or str(a.get(sc.OPENINFERENCE_SPAN_KIND, "")).lower() or None
    if kind is None and a.get(sc.GEN_AI_OPERATION_NAME) in ("chat", "completion"):
        kind = "llm"
    usage = json.loads(a["langsmith.usage_metadata"]) if "langsmith.usage_metadata" in a else {}
    return Reading(
        kind == "llm",
        a.get("langsmith.metadata.ls_model_name"),
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        usage.get("total_cost"),
        a.get("langsmith.metadata.session_id"),
    )


def read_fiddler(span: ReceivedSpan) -> Reading:
    """docs.fiddler.ai/integrations/agentic-ai/otel-trace-export and /attributes: span type from
    ``fiddler.span.type``; ``gen_ai.usage.*`` tokens and ``gen_ai.request.model``; custom
    attributes only as ``fiddler.span.user.<key>``; conversations from ``gen_ai.conversation.id``."""
    a = span.attributes
    return Reading(
        a.get("fiddler.span.type") == "llm",
        a.get(sc.GEN_AI_REQUEST_MODEL),
        a.get(sc.GEN_AI_USAGE_INPUT_TOKENS),
        a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS),
        a.get("fiddler.span.user.cost_usd"),
        a.get(sc.GEN_AI_CONVERSATION_ID),
    )


def signoz_reader(rules: list[dict[str, Any]]) -> Callable[[ReceivedSpan], Reading]:
    """signoz.io/docs/ai-observability-telemetry-requirements: a span with ``gen_ai.request.model``
    is an LLM call; SigNoz prices it from the rule whose ``modelPattern`` holds that model
    (pkg/types/llmpricingruletypes: per-million input/output prices times ``gen_ai.usage.*``)."""

    def read(span: ReceivedSpan) -> Reading:
        a = span.attributes
        model = a.get(sc.GEN_AI_REQUEST_MODEL)
        cost = None
        rule = next((r for r in rules if model in r["modelPattern"]), None)
        if rule is not None and sc.GEN_AI_USAGE_INPUT_TOKENS in a:
            pricing = rule["pricing"]
            cost = (
                a[sc.GEN_AI_USAGE_INPUT_TOKENS] * pricing["input"]
                + a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] * pricing["output"]
            ) / 1e6
        return Reading(
            model is not None,
            model,
            a.get(sc.GEN_AI_USAGE_INPUT_TOKENS),
            a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS),
            cost,
            a.get(sc.SESSION_ID),
        )

    return read


def read_phoenix(span: ReceivedSpan) -> Reading:
    """Phoenix 20.26 (DESIGN.md): ``openinference.span.kind``, or any span with ``gen_ai.request.model``
    and no kind, is an LLM span; model ``llm.model_name``; sessions ``session.id``; it reprices."""
    a = span.attributes
    kind = a.get(sc.OPENINFERENCE_SPAN_KIND) or ("LLM" if sc.GEN_AI_REQUEST_MODEL in a else None)
    return Reading(
        kind == "LLM",
        a.get(sc.LLM_MODEL_NAME),
        a.get(sc.LLM_TOKEN_COUNT_PROMPT),
        a.get(sc.LLM_TOKEN_COUNT_COMPLETION),
        a.get(sc.LLM_USAGE_COST_USD),
        a.get(sc.SESSION_ID),
    )


def read_langfuse(span: ReceivedSpan) -> Reading:
    """Langfuse (DESIGN.md): any span with ``gen_ai.request.model`` is a GENERATION; cost from
    ``gen_ai.usage.cost``; the session from ``session.id``."""
    a = span.attributes
    return Reading(
        sc.GEN_AI_REQUEST_MODEL in a,
        a.get(sc.GEN_AI_REQUEST_MODEL),
        a.get(sc.GEN_AI_USAGE_INPUT_TOKENS),
        a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS),
        a.get(sc.GEN_AI_USAGE_COST),
        a.get(sc.SESSION_ID),
    )


def read_genai(span: ReceivedSpan) -> Reading:
    """A backend on the GenAI conventions alone (Datadog maps no cost; a collector passes all)."""
    a = span.attributes
    return Reading(
        a.get(sc.GEN_AI_OPERATION_NAME) == "chat",
        a.get(sc.GEN_AI_REQUEST_MODEL),
        a.get(sc.GEN_AI_USAGE_INPUT_TOKENS),
        a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS),
        a.get(sc.LLM_USAGE_COST_USD),
        a.get(sc.GEN_AI_CONVERSATION_ID),
    )


# ---- the presets under test -----------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One preset: its environment, where its spans must go, what must arrive."""

    backend: str
    environment: dict[str, str]
    traces_path: str
    headers: dict[str, str]
    resource: dict[str, str]
    reader: Callable[[ReceivedSpan], Reading]
    signals: frozenset[str] = frozenset({"traces"})
    extra: dict[str, Any] = field(default_factory=dict)


def _cases(base: str, rules: list[dict[str, Any]]) -> dict[str, Case]:
    return {
        "arthur": Case(
            "arthur",
            {"ARTHUR_BASE_URL": base, "ARTHUR_API_KEY": "arthur-key", "ARTHUR_TASK_ID": "task-7"},
            "/api/v1/traces",
            {"authorization": "Bearer arthur-key"},
            {"arthur.task": "task-7"},
            read_arthur,
        ),
        "langsmith": Case(
            "langsmith",
            {"LANGSMITH_ENDPOINT": base, "LANGSMITH_API_KEY": "ls-key", "LANGSMITH_PROJECT": "router-prod"},
            "/otel/v1/traces",
            {"x-api-key": "ls-key", "langsmith-project": "router-prod"},
            {},
            read_langsmith,
        ),
        "fiddler": Case(
            "fiddler",
            {"FIDDLER_URL": base, "FIDDLER_API_KEY": "fd-key", "FIDDLER_APPLICATION_ID": "app-3"},
            "/v1/traces",
            {"authorization": "Bearer fd-key", "fiddler-application-id": "app-3"},
            {"application.id": "app-3"},
            read_fiddler,
        ),
        "signoz": Case(
            "signoz",
            {"SIGNOZ_ENDPOINT": base, "SIGNOZ_INGESTION_KEY": "sz-key"},
            "/v1/traces",
            {"signoz-ingestion-key": "sz-key"},
            {},
            signoz_reader(rules),
            frozenset({"traces", "metrics", "logs"}),
        ),
        "phoenix": Case(
            "phoenix",
            {"PHOENIX_COLLECTOR_ENDPOINT": base, "PHOENIX_API_KEY": "px-key", "PHOENIX_PROJECT_NAME": "routing"},
            "/v1/traces",
            {"authorization": "Bearer px-key"},
            {"openinference.project.name": "routing"},
            read_phoenix,
        ),
        "langfuse": Case(
            "langfuse",
            {"LANGFUSE_HOST": base, "LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk"},
            "/api/public/otel/v1/traces",
            {"authorization": "Basic cGs6c2s="},
            {},
            read_langfuse,
        ),
        "datadog": Case(
            "datadog",
            {"DD_OTLP_ENDPOINT": base, "DD_API_KEY": "dd-key", "DD_LLMOBS_ML_APP": "router-app"},
            "/v1/traces",
            {"dd-api-key": "dd-key", "dd-otlp-source": "llmobs"},
            {"service.name": "router-app"},
            read_genai,
        ),
        "collector": Case(
            "collector",
            {"OTEL_EXPORTER_OTLP_ENDPOINT": base},
            "/v1/traces",
            {},
            {"service.name": "costrouter"},
            read_genai,
            frozenset({"traces", "metrics", "logs"}),
        ),
    }


BACKENDS = ["arthur", "langsmith", "fiddler", "signoz", "phoenix", "langfuse", "datadog", "collector"]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_/COSTROUTER_ variable from the developer's shell."""
    for name in _OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_reads_one_llm_call_with_costrouters_cost_and_the_session(
    backend: str, otlp_receiver: OtlpReceiver, clean_env: pytest.MonkeyPatch
) -> None:
    with ProviderDouble() as provider:
        config = router_config(provider.base_url)
        prices, _ = model_prices(parse_router_config(config, "<test>"))
        case = _cases(otlp_receiver.endpoint, rules_for(prices))[backend]
        for name, value in case.environment.items():
            clean_env.setenv(name, value)
        settings = Settings(exporter="otlp", backend=backend, metric_export_interval_seconds=60)  # type: ignore[arg-type]
        setup = configure_telemetry(settings, set_global=False)
        provider.set_default("flaky-model", Fail(500))
        router = CostRouter(
            config, tracer_provider=setup.tracer_provider, meter_provider=setup.meter_provider, settings=settings
        )
        router.route_completion("flaky", MESSAGES, max_tokens=20, session_id=SESSION, user_id=USER)
        setup.shutdown()

    spans = otlp_receiver.wait_for_spans(4)
    (call,) = [span for span in spans if span.name == "router.completion/flaky"]
    assert call.attributes[sc.ROUTER_RETRIES] == 1
    assert call.attributes[sc.ROUTER_FALLBACKS] == 1
    cost = call.attributes[sc.LLM_USAGE_COST_USD]
    assert cost > 0

    # where and how the spans went
    trace_requests = [r for r in otlp_receiver.requests if r.signal == "traces"]
    assert trace_requests
    assert {r.path for r in trace_requests} == {case.traces_path}
    for header, value in case.headers.items():
        assert all(r.headers.get(header) == value for r in trace_requests), header
    assert {r.signal for r in otlp_receiver.requests} <= case.signals
    for key, value in case.resource.items():
        assert call.resource.get(key) == value, key

    # what the backend reads
    readings = [case.reader(span) for span in spans if span.trace_id == call.trace_id]
    llm = [reading for reading in readings if reading.is_llm]
    assert len(llm) == 1, "one LLM call per routed call"
    (reading,) = llm
    assert reading.model == "fast-model"  # the serving deployment's model, not the alias "flaky"
    tokens = call.attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS, call.attributes.get(sc.LLM_TOKEN_COUNT_PROMPT))
    assert isinstance(tokens, int)
    assert tokens > 0
    assert reading.input_tokens == tokens
    assert reading.output_tokens == call.attributes.get(
        sc.GEN_AI_USAGE_OUTPUT_TOKENS, call.attributes.get(sc.LLM_TOKEN_COUNT_COMPLETION)
    )
    if backend == "signoz":  # SigNoz reprices from the pushed per-million rule, in its own doubles
        assert reading.cost == pytest.approx(cost, rel=1e-12)
    elif backend != "datadog":  # Datadog LLM Observability maps no cost attribute: it reprices
        assert reading.cost == cost  # the very figure of llm.usage.cost_usd, under the backend's name
    assert all(r.session == SESSION for r in readings), "the session on every span"

    # exactly the conventions the backend reads, on every span of the call (costrouter's own always)
    written = {convention_of(key) for span in spans if span.trace_id == call.trace_id for key in span.attributes}
    assert written == set(preset_of(backend).conventions or CONVENTIONS)


def test_a_log_record_of_a_routed_call_arrives_with_its_trace_id(
    otlp_receiver: OtlpReceiver, clean_env: pytest.MonkeyPatch
) -> None:
    """SigNoz correlates logs and traces by trace id (signoz.io/docs/traces-management/guides/
    correlate-traces-and-logs): costrouter's budget alert goes out as an OTLP log of the call."""
    clean_env.setenv("SIGNOZ_ENDPOINT", otlp_receiver.endpoint)
    clean_env.setenv("SIGNOZ_INGESTION_KEY", "sz-key")
    settings = Settings(exporter="otlp", backend="signoz", metric_export_interval_seconds=60)
    setup = configure_telemetry(settings, set_global=False)
    with ProviderDouble() as provider:
        router = CostRouter(
            router_config(provider.base_url),
            budgets={"budgets": [{"scope": "session", "limit_usd": 1, "window": "total", "alert_at": [1e-6]}]},
            tracer_provider=setup.tracer_provider,
            meter_provider=setup.meter_provider,
            settings=settings,
        )
        router.route_completion("fast", MESSAGES, max_tokens=20, session_id="sess-log")
        setup.shutdown()

    (call,) = otlp_receiver.wait_for_spans(1)  # one span: its one attempt rides on it
    assert call.name == "router.completion/fast"
    records = otlp_receiver.wait_for_logs(1)
    (alert,) = [record for record in records if "reached" in str(record.body)]
    assert alert.trace_id == call.trace_id
    assert alert.span_id == call.span_id
    assert alert.severity_text == "WARN"
    log_requests = [r for r in otlp_receiver.requests if r.signal == "logs"]
    assert {r.path for r in log_requests} == {"/v1/logs"}
    assert all(r.headers.get("signoz-ingestion-key") == "sz-key" for r in log_requests)


def test_otel_variables_win_over_a_preset(otlp_receiver: OtlpReceiver, clean_env: pytest.MonkeyPatch) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS override the preset's."""
    clean_env.setenv("ARTHUR_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    clean_env.setenv("ARTHUR_API_KEY", "preset-key")
    clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp_receiver.traces_endpoint)
    clean_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20env-key")
    clean_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "arthur.task=from-env")
    clean_env.setenv("ARTHUR_TASK_ID", "from-preset")
    settings = Settings(exporter="otlp", backend="arthur")
    setup = configure_telemetry(Settings(exporter="otlp"), set_global=False, backend="arthur")
    with ProviderDouble() as provider:
        router = CostRouter(
            router_config(provider.base_url),
            tracer_provider=setup.tracer_provider,
            meter_provider=setup.meter_provider,
            settings=settings,
        )
        router.route_completion("fast", MESSAGES, max_tokens=5)
        setup.shutdown()
    (span, *_) = otlp_receiver.wait_for_spans(1)
    assert span.resource["arthur.task"] == "from-env"
    assert otlp_receiver.requests[0].headers["authorization"] == "Bearer env-key"


@pytest.mark.parametrize(
    ("backend", "signals"),
    [("arthur", {"traces"}), ("langsmith", {"traces"}), ("fiddler", {"traces"}), ("signoz", {"traces", "metrics"})],
)
def test_no_metrics_where_the_backend_has_no_route(
    backend: str, signals: set[str], otlp_receiver: OtlpReceiver, clean_env: pytest.MonkeyPatch
) -> None:
    """Arthur, LangSmith and Fiddler ingest traces only: metrics would fail there and be counted."""
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_receiver.endpoint)
    settings = Settings(exporter="otlp", backend=backend)  # type: ignore[arg-type]
    setup = configure_telemetry(settings, set_global=False)
    with ProviderDouble() as provider:
        router = CostRouter(
            router_config(provider.base_url),
            tracer_provider=setup.tracer_provider,
            meter_provider=setup.meter_provider,
            settings=settings,
        )
        router.route_completion("fast", MESSAGES, max_tokens=5)
        setup.shutdown()
    assert {r.signal for r in otlp_receiver.requests} == signals
    assert setup.stats.failed_metric_exports == 0


def test_configure_telemetry_takes_the_backend_as_an_argument(
    otlp_receiver: OtlpReceiver, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("ARTHUR_BASE_URL", otlp_receiver.endpoint)
    setup = configure_telemetry(Settings(exporter="otlp"), set_global=False, backend="arthur")
    setup.tracer_provider.get_tracer("t").start_span("s").end()
    setup.shutdown()
    otlp_receiver.wait_for_spans(1)
    assert {r.path for r in otlp_receiver.requests} == {"/api/v1/traces"}


def test_a_refused_log_export_is_counted_and_never_raised(
    otlp_receiver: OtlpReceiver, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_receiver.endpoint)
    otlp_receiver.set_default("logs", Refuse(400))
    settings = Settings(exporter="otlp", backend="collector", metric_export_interval_seconds=60)
    setup = configure_telemetry(settings, set_global=False)
    with ProviderDouble() as provider:
        router = CostRouter(
            router_config(provider.base_url),
            budgets={"budgets": [{"scope": "session", "limit_usd": 1, "window": "total", "alert_at": [1e-6]}]},
            tracer_provider=setup.tracer_provider,
            meter_provider=setup.meter_provider,
            settings=settings,
        )
        router.route_completion("fast", MESSAGES, max_tokens=20, session_id="sess-refused")
        setup.shutdown()
    assert any(r.signal == "logs" and r.status == 400 for r in otlp_receiver.requests)
    assert setup.stats.dropped_log_records >= 1
    assert otlp_receiver.log_records == []
