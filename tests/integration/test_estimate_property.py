"""Property: with max_tokens set, the hold made before a call covers what the call costs.

Also for every content type LiteLLM accepts, when the provider counts 1.5x tiktoken.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costrouter import CostRouter
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.routing import router_config
from tests.unit.test_tokens import png_url, wav

words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=12)
contents = st.lists(words, min_size=1, max_size=60).map(" ".join)
roles = st.sampled_from(["user", "system", "assistant"])
messages_strategy = st.lists(st.fixed_dictionaries({"role": roles, "content": contents}), min_size=1, max_size=5)


@pytest.fixture(scope="module")
def routed(provider: ProviderDouble) -> Iterator[tuple[CostRouter, TelemetryCapture]]:
    capture = TelemetryCapture()
    router = CostRouter(
        router_config(provider.base_url, num_retries=0),
        budgets={"budgets": [{"scope": "session", "limit_usd": 1_000_000, "window": "total"}]},
        tracer_provider=capture.tracer_provider,
    )
    yield router, capture
    router.shutdown()
    capture.shutdown()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=messages_strategy,
    max_tokens=st.integers(min_value=1, max_value=500),
    fraction=st.floats(min_value=0, max_value=1),
    group=st.sampled_from(["fast", "capable", "flaky"]),
    flaky_fails=st.booleans(),
)
def test_estimate_covers_the_actual_cost(
    routed: tuple[CostRouter, TelemetryCapture],
    provider: ProviderDouble,
    messages: list[dict[str, str]],
    max_tokens: int,
    fraction: float,
    group: str,
    flaky_fails: bool,
) -> None:
    router, capture = routed
    capture.clear()
    provider.reset()
    completion_tokens = round(max_tokens * fraction)
    answer = Reply(completion_tokens=completion_tokens)
    for model in ("fast-model", "capable-model", "flaky-model"):
        provider.set_default(model, answer)
    if flaky_fails:  # the flaky group falls back to fast, which must be covered by the estimate too
        provider.set_default("flaky-model", Fail(500))

    router.route_completion(group, messages, max_tokens=max_tokens, session_id="property")

    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    estimate = usd_to_units(float(attributes[sc.BUDGET_ESTIMATE_USD]))  # type: ignore[arg-type]
    settled = usd_to_units(float(attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type]
    assert settled <= estimate


# ---- every content type, against a provider that counts 1.5x tiktoken -----------------------

_text = st.lists(words, min_size=0, max_size=30).map(" ".join)
_image = st.builds(
    lambda url, detail: {"type": "image_url", "image_url": {"url": url, "detail": detail}},
    st.one_of(
        st.builds(png_url, st.integers(1, 5000), st.integers(1, 5000)),
        st.just("https://example.invalid/photo.jpg"),
    ),
    st.sampled_from(["low", "high", "auto"]),
)


def _audio_part(data: str, audio_format: str) -> dict[str, Any]:
    return {"type": "input_audio", "input_audio": {"data": data, "format": audio_format}}


def _file_part(text: str) -> dict[str, Any]:
    data = "data:text/plain;base64," + base64.b64encode(text.encode()).decode()
    return {"type": "file", "file": {"filename": "notes.txt", "file_data": data}}


_audio = st.one_of(
    st.builds(lambda seconds: _audio_part(wav(seconds), "wav"), st.floats(0.1, 3)),
    st.builds(lambda size: _audio_part(base64.b64encode(bytes(size)).decode(), "mp3"), st.integers(0, 20_000)),
)
_text_part = st.builds(lambda text: {"type": "text", "text": text}, _text)
_parts = st.lists(st.one_of(_text_part, _image, _audio, st.builds(_file_part, _text)), min_size=1, max_size=4)
_call = st.builds(
    lambda name, arguments: {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}},
    st.sampled_from(["lookup", "search_the_web"]),
    _text.map(lambda text: json.dumps({"q": text})),
)
_message = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": st.one_of(_text, _parts)}),
    st.fixed_dictionaries({"role": st.just("user"), "content": _text, "name": st.sampled_from(["alice", "b-o-b"])}),
    st.fixed_dictionaries(
        {"role": st.just("assistant"), "content": st.none(), "tool_calls": st.lists(_call, min_size=1, max_size=2)}
    ),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": st.just("call_1"), "content": _text}),
)
_extras = st.fixed_dictionaries(
    {},
    optional={
        "functions": st.just([{"name": "lookup", "description": "find a thing", "parameters": {"type": "object"}}]),
        "response_format": st.just({"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}),
        "n": st.integers(1, 3),
    },
)


@pytest.fixture(scope="module")
def heavy_provider() -> Iterator[ProviderDouble]:
    with ProviderDouble(prompt_token_factor=1.5) as double:
        yield double


@pytest.fixture(scope="module")
def heavy_routed(heavy_provider: ProviderDouble) -> Iterator[tuple[CostRouter, TelemetryCapture]]:
    capture = TelemetryCapture()
    router = CostRouter(
        router_config(heavy_provider.base_url, num_retries=0),
        budgets={"budgets": [{"scope": "session", "limit_usd": 1_000_000, "window": "total"}]},
        tracer_provider=capture.tracer_provider,
    )
    yield router, capture
    router.shutdown()
    capture.shutdown()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=st.lists(_message, min_size=1, max_size=5),
    extras=_extras,
    max_tokens=st.integers(min_value=1, max_value=300),
    cap_name=st.sampled_from(["max_tokens", "max_completion_tokens"]),
    group=st.sampled_from(["fast", "capable"]),
)
def test_every_content_type_is_covered_when_the_provider_counts_more(
    heavy_routed: tuple[CostRouter, TelemetryCapture],
    heavy_provider: ProviderDouble,
    messages: list[dict[str, Any]],
    extras: dict[str, Any],
    max_tokens: int,
    cap_name: str,
    group: str,
) -> None:
    router, capture = heavy_routed
    capture.clear()
    for model in ("fast-model", "capable-model"):
        heavy_provider.set_default(model, Reply(completion_tokens=max_tokens))

    router.route_completion(group, messages, session_id="property", **{cap_name: max_tokens}, **extras)

    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    estimate = usd_to_units(float(attributes[sc.BUDGET_ESTIMATE_USD]))  # type: ignore[arg-type]
    settled = usd_to_units(float(attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type]
    assert settled <= estimate
