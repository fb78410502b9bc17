"""Speech through the router: priced per input character, binary audio returned unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from litellm.types.llms.openai import HttpxBinaryResponseContent

from costrouter import BudgetExceededError, CostRouter
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.calltypes import TTS_PRICE, budgeted_router, call_attributes, open_router, store_config

TEXT = "Hello there"


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    yield from open_router(provider, capture)


async def test_speech_is_a_span_with_its_characters_and_cost(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    response = await router.aroute_speech("tts", input=TEXT, voice="alloy", session_id="s-tts")

    assert isinstance(response, HttpxBinaryResponseContent)
    assert response.content.startswith(b"ID3")
    assert len(response.content) == 5 + 10 * len(TEXT)
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.speech/tts"
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "speech"
    assert attributes[sc.ROUTER_USAGE_CHARACTERS] == len(TEXT)
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "tts-primary"
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(len(TEXT) * TTS_PRICE)
    assert provider.requests[0].body["voice"] == "alloy"


async def test_speech_is_retried_after_a_429(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("tts-model", Fail(429, retry_after=0.01), Reply())

    await router.aroute_speech("tts", input=TEXT, voice="alloy")

    attributes = call_attributes(capture)
    assert provider.request_count("tts-model") == 2
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.ROUTER_RETRIES] == 1


async def test_speech_falls_back_to_another_group(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("tts-model", Fail(500))

    await router.aroute_speech("tts", input=TEXT, voice="alloy")

    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_SERVED_GROUP] == "tts-backup"
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "tts-backup"
    assert attributes[sc.LLM_USAGE_COST_USD] == 82.5e-6  # 11 x 7.5 micro-dollars, exactly (not rounded)


async def test_a_budget_refuses_long_speech_before_the_provider(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    router = budgeted_router(provider, capture, 0.01, {"backend": "memory"})

    with pytest.raises(BudgetExceededError):
        await router.aroute_speech("tts", input="a" * 1000, voice="alloy", session_id="s-long")  # 0.015 USD

    assert provider.request_count() == 0
    router.shutdown()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_speech_settles_to_the_unit(
    provider: ProviderDouble, capture: TelemetryCapture, backend: str, request: pytest.FixtureRequest
) -> None:
    router = budgeted_router(provider, capture, 1.0, store_config(backend, request))

    await router.aroute_speech("tts", input=TEXT, voice="alloy", session_id="s-settle")

    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s-settle")
    assert status.spent_units == 165_000  # 11 characters (the space counts) x 15 micro-dollars, in nano-dollars
    assert status.held_units == 0
    assert call_attributes(capture)[sc.BUDGET_ESTIMATE_USD] == pytest.approx(0.000165)  # exact before the call
    router.shutdown()


async def test_concurrent_speech_keeps_its_own_spans(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("tts-model", Reply(delay=0.05))
    sizes = range(1, 7)

    await asyncio.gather(
        *(router.aroute_speech("tts", input="x" * size, voice="alloy", session_id=f"s{size}") for size in sizes)
    )

    spans = capture.call_spans()
    assert len(spans) == len(sizes)
    for span in spans:
        attributes = dict(span.attributes or {})
        size = int(str(attributes[sc.SESSION_ID])[1:])
        assert attributes[sc.ROUTER_USAGE_CHARACTERS] == size
        assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(size * TTS_PRICE)


async def test_speech_on_a_rerank_group_is_a_clear_error(router: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match=r"not a speech call \(needs mode audio_speech\)"):
        await router.aroute_speech("rerank", input=TEXT, voice="alloy")

    with pytest.raises(TypeError, match="input must be a string"):
        await router.aroute_speech("tts", input=["not", "text"], voice="alloy")
    assert provider.request_count() == 0
