"""The backend presets' pure parts: span additions and exporter options."""

from __future__ import annotations

import json

import pytest

from costrouter.errors import ConfigError
from costrouter.otel import semconv as sc
from costrouter.otel.backends import BACKENDS, NO_BACKEND, backend
from costrouter.otel.backends.export import exporter_options
from costrouter.otel.backends.langsmith import llm_span as langsmith_llm
from costrouter.otel.backends.langsmith import step_span as langsmith_step
from costrouter.otel.conventions import convention_of

CALL = {
    sc.SESSION_ID: "s-1",
    sc.USER_ID: "u-1",
    sc.LLM_MODEL_NAME: "gpt-4o-mini",
    sc.GEN_AI_PROVIDER_NAME: "openai",
    sc.GEN_AI_USAGE_INPUT_TOKENS: 100,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: 20,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 40,
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 5,
    sc.LLM_USAGE_COST_USD: 0.00042,
    sc.LLM_COST_PROMPT: 0.0003,
    sc.LLM_COST_COMPLETION: 0.00012,
}


def test_langsmith_usage_metadata_carries_costrouters_cost_and_token_details() -> None:
    added = langsmith_llm(CALL)
    assert added["langsmith.span.kind"] == "llm"
    assert added["langsmith.metadata.ls_model_name"] == "gpt-4o-mini"
    assert added["langsmith.metadata.ls_provider"] == "openai"
    assert added["langsmith.metadata.session_id"] == "s-1"
    assert added["langsmith.metadata.user_id"] == "u-1"
    usage = json.loads(str(added["langsmith.usage_metadata"]))
    assert usage == {
        "input_tokens": 100,
        "output_tokens": 20,
        "total_tokens": 120,
        "input_cost": 0.0003,
        "output_cost": 0.00012,
        "total_cost": 0.00042,
        "input_token_details": {"cache_read": 40},
        "output_token_details": {"reasoning": 5},
    }


def test_langsmith_before_the_call_ends_has_no_usage_and_steps_are_chains() -> None:
    assert "langsmith.usage_metadata" not in langsmith_llm({sc.SESSION_ID: "s-1"})
    assert langsmith_step({sc.SESSION_ID: "s-1"}) == {
        "langsmith.span.kind": "chain",
        "langsmith.metadata.session_id": "s-1",
    }


def test_exporter_options_build_the_url_and_headers_and_let_otel_variables_win() -> None:
    arthur = backend("arthur")
    environ = {"ARTHUR_BASE_URL": "https://arthur.example/", "ARTHUR_API_KEY": "k"}
    assert exporter_options(arthur, "traces", environ, grpc=False) == {
        "endpoint": "https://arthur.example/api/v1/traces",
        "headers": {"authorization": "Bearer k"},
    }
    overridden = {**environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x/v1/traces"}
    overridden["OTEL_EXPORTER_OTLP_HEADERS"] = "Authorization=Bearer%20other"
    assert exporter_options(arthur, "traces", overridden, grpc=False) == {"headers": {"authorization": "Bearer other"}}
    assert not arthur.exports("metrics")
    assert not arthur.exports("logs")


def test_a_preset_secret_header_never_goes_to_an_otel_endpoint_on_another_host() -> None:
    langsmith = backend("langsmith")
    environ = {"LANGSMITH_API_KEY": "k", "LANGSMITH_PROJECT": "p", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://u:pw@x:4318"}
    with pytest.raises(ConfigError) as raised:
        exporter_options(langsmith, "traces", environ, grpc=False)
    assert "x-api-key to https://api.smith.langchain.com/otel/v1/traces only" in str(raised.value)
    assert "pw" not in str(raised.value)
    assert exporter_options(langsmith, "traces", environ, grpc=False, headers_to_otel_endpoint=True) == {
        "headers": {"x-api-key": "k", "langsmith-project": "p"}
    }
    same_host = {**environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "https://api.smith.langchain.com:443"}
    assert exporter_options(langsmith, "traces", same_host, grpc=False)["headers"]["x-api-key"] == "k"
    # A preset whose only headers are not secrets (the project) sends them anywhere.
    project_only = {"LANGSMITH_PROJECT": "p", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}
    assert exporter_options(langsmith, "traces", project_only, grpc=False) == {"headers": {"langsmith-project": "p"}}


def test_grpc_takes_the_base_url_and_header_pairs() -> None:
    signoz = backend("signoz")
    environ = {"SIGNOZ_ENDPOINT": "https://ingest.us.signoz.cloud:443", "SIGNOZ_INGESTION_KEY": "k"}
    assert exporter_options(signoz, "logs", environ, grpc=True) == {
        "endpoint": "https://ingest.us.signoz.cloud:443",
        "headers": (("signoz-ingestion-key", "k"),),
    }


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_preset_sends_traces_and_none_needs_a_secret_to_be_built(name: str) -> None:
    preset = backend(name)
    assert preset.exports("traces")
    assert exporter_options(preset, "traces", {}, grpc=False).get("headers") in (None, {"dd-otlp-source": "llmobs"})


def test_no_backend_adds_nothing() -> None:
    assert backend(None) is NO_BACKEND
    assert NO_BACKEND.llm_span_attributes(CALL) == {}
    assert NO_BACKEND.step_span_attributes(CALL) == {}


def test_no_backend_writes_every_convention() -> None:
    assert NO_BACKEND.conventions is None
    attributes = dict(CALL)
    assert NO_BACKEND.written(attributes) is attributes


@pytest.mark.parametrize(
    ("key", "convention"),
    [
        (sc.ROUTER_GROUP, "costrouter"),
        (sc.BUDGET_OUTCOME, "costrouter"),
        (sc.LLM_USAGE_COST_USD, "costrouter"),
        (f"{sc.ROUTER_METADATA_PREFIX}team", "costrouter"),
        (sc.GEN_AI_REQUEST_MODEL, "genai"),
        (sc.SERVER_ADDRESS, "genai"),
        (sc.GEN_AI_USAGE_COST, "langfuse"),
        (sc.GEN_AI_COST_TOTAL, "litellm"),
        (sc.LLM_COST_TOTAL, "openinference"),
        (sc.OPENINFERENCE_SPAN_KIND, "openinference"),
        (sc.TAG_TAGS, "openinference"),
        (sc.METADATA, "openinference"),
        (f"{sc.LLM_INPUT_MESSAGES_PREFIX}.0.message.role", "openinference"),
        (sc.SESSION_ID, "general"),
        (sc.USER_ID, "general"),
        (sc.ERROR_TYPE, "general"),
        ("langsmith.span.kind", "general"),
    ],
)
def test_each_name_belongs_to_one_convention(key: str, convention: str) -> None:
    assert convention_of(key) == convention


@pytest.mark.parametrize(
    ("name", "conventions"),
    [
        ("phoenix", {"openinference"}),
        ("arthur", {"openinference"}),
        ("langfuse", {"genai", "langfuse"}),
        ("datadog", {"genai"}),
        ("signoz", {"genai"}),
        ("fiddler", {"genai"}),
        ("langsmith", {"genai"}),
    ],
)
def test_a_preset_writes_the_conventions_its_backend_reads_and_costrouters_own(
    name: str, conventions: set[str]
) -> None:
    preset = backend(name)
    assert preset.conventions == {"costrouter", "general", *conventions}
    everything = dict.fromkeys(
        (
            sc.ROUTER_GROUP,
            sc.GEN_AI_REQUEST_MODEL,
            sc.LLM_MODEL_NAME,
            sc.GEN_AI_USAGE_COST,
            sc.GEN_AI_COST_TOTAL,
            sc.SESSION_ID,
        ),
        1,
    )
    assert {convention_of(key) for key in preset.written(everything)} == preset.conventions


def test_a_collector_forwards_every_convention() -> None:
    assert backend("collector").conventions is None


def test_names_built_at_run_time_are_kept_or_left_out_by_their_convention() -> None:
    attributes: dict[str, object] = {
        f"{sc.ROUTER_METADATA_PREFIX}team": "x",
        f"{sc.LLM_INPUT_MESSAGES_PREFIX}.0.message.role": "user",
        sc.GEN_AI_INPUT_MESSAGES: "[]",
        f"{sc.ROUTER_COST_PREFIX}input": 1e-05,
        sc.LLM_COST_PROMPT_INPUT: 1e-05,
    }
    kept = backend("datadog").written(dict(attributes))  # type: ignore[arg-type]
    assert set(kept) == {f"{sc.ROUTER_METADATA_PREFIX}team", sc.GEN_AI_INPUT_MESSAGES, f"{sc.ROUTER_COST_PREFIX}input"}
    kept = backend("phoenix").written(dict(attributes))  # type: ignore[arg-type]
    assert set(kept) == set(attributes) - {sc.GEN_AI_INPUT_MESSAGES}
