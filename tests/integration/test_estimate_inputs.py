"""What reaches the estimate is checked before any provider call, and every content type is held for."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from costrouter import CostRouter
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from tests.routing import router_config
from tests.unit.test_tokens import png_url, wav

HELLO = [{"role": "user", "content": "hello there"}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "paris weather"}'}}
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a thing up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    },
}


@pytest.fixture
def budgeted(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    provider.reset()
    router = CostRouter(
        router_config(provider.base_url, num_retries=0),
        budgets={
            "store": {"key_prefix": f"t{uuid.uuid4().hex[:10]}"},
            "budgets": [{"scope": "session", "limit_usd": 1000, "window": "total"}],
        },
        tracer_provider=capture.tracer_provider,
    )
    yield router
    router.shutdown()
    for model in ("fast-model", "capable-model"):
        provider.set_prompt_token_factor(model, None)


BAD_REQUESTS = [
    pytest.param(HELLO, {"max_tokens": 0}, ValueError, "max_tokens", id="max_tokens-0"),
    pytest.param(HELLO, {"max_tokens": -1}, ValueError, "max_tokens", id="max_tokens-negative"),
    pytest.param(HELLO, {"max_tokens": True}, TypeError, "max_tokens", id="max_tokens-true"),
    pytest.param(HELLO, {"max_tokens": "50"}, TypeError, "max_tokens", id="max_tokens-text"),
    pytest.param(HELLO, {"max_completion_tokens": 0}, ValueError, "max_completion_tokens", id="max_completion-0"),
    pytest.param(HELLO, {"n": 0}, ValueError, "n must", id="n-0"),
    pytest.param([{"role": "user", "content": {"text": "hi"}}], {}, TypeError, "messages[0].content", id="dict"),
    pytest.param("hello", {}, TypeError, "messages must be a list", id="messages-text"),
    pytest.param([], {}, ValueError, "messages must not be empty", id="no-messages"),
    pytest.param([{"content": "hi"}], {}, ValueError, "messages[0].role", id="no-role"),
    pytest.param(
        [{"role": "user", "content": [{"type": "video_url", "video_url": "x"}]}],
        {},
        ValueError,
        "messages[0].content[0].type",
        id="unknown-part",
    ),
    pytest.param(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x", "detail": "ultra"}}]}],
        {},
        ValueError,
        "messages[0].content[0].image_url.detail",
        id="image-detail",
    ),
    pytest.param(HELLO, {"tools": TOOL}, TypeError, "tools must be a list", id="tools-not-list"),
    pytest.param([{"role": "user", "content": ["hi"]}], {}, TypeError, "messages[0].content[0]", id="bare-part"),
]


@pytest.mark.parametrize(("messages", "kwargs", "error", "names"), BAD_REQUESTS)
def test_bad_input_is_refused_before_the_provider_and_the_span_ends(
    budgeted: CostRouter,
    provider: ProviderDouble,
    capture: TelemetryCapture,
    messages: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    names: str,
) -> None:
    with pytest.raises(error, match=names.replace("[", r"\[").replace("]", r"\]")):
        budgeted.route_completion("fast", messages, session_id="bad", **kwargs)

    assert provider.request_count() == 0
    (span,) = capture.call_spans()
    assert span.end_time is not None
    assert span.status.status_code == StatusCode.ERROR


def test_an_unbudgeted_router_refuses_a_zero_max_tokens_too(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        router.route_completion("fast", HELLO, max_tokens=0)
    assert provider.request_count() == 0
    (span,) = capture.call_spans()
    assert span.end_time is not None


AUDIO = {"type": "input_audio", "input_audio": {"data": wav(1.0), "format": "wav"}}
FILE = {
    "type": "file",
    "file": {
        "filename": "notes.txt",
        "file_data": "data:text/plain;base64," + base64.b64encode(b"meeting notes: ship on friday").decode(),
    },
}


def _image(url: str, detail: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, "detail": detail}}]}]


CONTENT_CASES = [
    pytest.param([{"role": "user", "content": [{"type": "text", "text": "describe"}]}], {}, id="text-part"),
    pytest.param(_image("https://x/a.png", "high"), {}, id="image-url-high"),
    *(pytest.param(_image(png_url(1600, 900), d), {}, id=f"image-data-{d}") for d in ("low", "high", "auto")),
    pytest.param([{"role": "user", "content": [{"type": "text", "text": "what is this?"}, AUDIO]}], {}, id="audio"),
    pytest.param([{"role": "user", "content": [FILE]}], {}, id="file"),
    pytest.param(
        [
            {"role": "user", "content": "weather in paris?", "name": "alice"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"},
        ],
        {},
        id="tool-turns",
    ),
    # `tools=` itself needs the `mcp` package in this LiteLLM (1.106); tests/unit/test_tokens.py counts it.
    pytest.param(HELLO, {"functions": [TOOL["function"]]}, id="functions"),
    pytest.param(
        HELLO,
        {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}},
        id="response-format",
    ),
    pytest.param(HELLO, {"n": 3}, id="n-3"),
    pytest.param(HELLO, {"max_completion_tokens": 60, "max_tokens": None}, id="max-completion-tokens"),
]


@pytest.mark.parametrize(("messages", "kwargs"), CONTENT_CASES)
def test_every_content_type_is_held_for_at_one_and_a_half_times_tiktoken(
    budgeted: CostRouter,
    provider: ProviderDouble,
    capture: TelemetryCapture,
    messages: list[dict[str, Any]],
    kwargs: dict[str, Any],
) -> None:
    provider.set_prompt_token_factor("fast-model", 1.5)
    provider.set_default("fast-model", Reply(completion_tokens=60))
    request = {"max_tokens": 60, **kwargs}

    budgeted.route_completion("fast", messages, session_id="content", **request)

    assert provider.request_count() == 1
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert attributes[sc.BUDGET_OUTCOME] == "allowed"
    estimate = usd_to_units(float(attributes[sc.BUDGET_ESTIMATE_USD]))  # type: ignore[arg-type]
    settled = usd_to_units(float(attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type]
    assert 0 < settled <= estimate


def test_a_litellm_message_object_is_estimated_like_its_dict(
    budgeted: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    answer = budgeted.route_completion("fast", HELLO, max_tokens=5, session_id="objects")
    conversation = [*HELLO, answer.choices[0].message, {"role": "user", "content": "and then?"}]

    budgeted.route_completion("fast", conversation, max_tokens=5, session_id="objects")

    assert provider.request_count() == 2
    attributes = dict(capture.call_spans()[-1].attributes or {})
    assert attributes[sc.BUDGET_OUTCOME] == "allowed"
