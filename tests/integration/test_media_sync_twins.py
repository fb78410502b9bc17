"""The sync twins of rerank, transcription, speech and image edits (async only in LiteLLM's Router).

Each awaits the Router's async method on costrouter's loop thread: the same span, price, retry,
budget hold and settle as the async call, from any caller thread.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import pytest
from litellm.types.llms.openai import HttpxBinaryResponseContent

from costrouter import BudgetExceededError, CostRouter
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.calltypes import (
    IMAGE_PRICES,
    RERANK_PRICE,
    STT_PRICE,
    TTS_PRICE,
    budgeted_router,
    open_router,
    store_config,
    wav_audio,
)

TEXT = "Hello there"
DOCUMENTS = ["the lighthouse keeper logs the storm", "ships pass the headland at night", "gulls"]


def _rerank(router: CostRouter, session: str) -> Any:
    return router.route_rerank("rerank", query="which ship", documents=DOCUMENTS, session_id=session)


def _transcription(router: CostRouter, session: str) -> Any:
    return router.route_transcription("stt", file=("call.wav", io.BytesIO(wav_audio(3.0))), session_id=session)


def _speech(router: CostRouter, session: str) -> Any:
    return router.route_speech("tts", input=TEXT, voice="alloy", session_id=session)


def _image_edit(router: CostRouter, session: str) -> Any:
    image = io.BytesIO(b"\x89PNG\r\n\x1a\n")
    return router.route_image_edit(
        "images", image=image, prompt="add a ship", size="1024x1024", quality="hd", session_id=session
    )


# kind: (call, span name, response type, cost in USD, the provider path the call reaches)
KINDS: dict[str, tuple[Callable[[CostRouter, str], Any], str, type, float, str]] = {
    "rerank": (_rerank, "router.rerank/rerank", litellm.RerankResponse, RERANK_PRICE, "rerank"),
    "transcription": (
        _transcription,
        "router.transcription/stt",
        litellm.TranscriptionResponse,
        3 * STT_PRICE,
        "/audio/transcriptions",
    ),
    "speech": (_speech, "router.speech/tts", HttpxBinaryResponseContent, len(TEXT) * TTS_PRICE, "/audio/speech"),
    "image_edit": (
        _image_edit,
        "router.image_edit/images",
        litellm.ImageResponse,
        IMAGE_PRICES["hd/1024x1024"],
        "/images/edits",
    ),
}


RETRIED_MODELS = {"rerank": "rerank-model", "image_edit": "img-model"}


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    yield from open_router(provider, capture)


@pytest.mark.parametrize("kind", KINDS)
def test_a_sync_call_is_a_span_with_its_cost(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture, kind: str
) -> None:
    call, span_name, response_type, cost, _ = KINDS[kind]

    response = call(router, f"s-{kind}")

    assert isinstance(response, response_type)
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == span_name
    assert attributes[sc.GEN_AI_OPERATION_NAME] == kind
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(cost)
    # The tracker found the call from the loop thread: its one attempt rides on the call span.
    assert capture.attempt_spans(span) == [span]
    assert attributes[sc.ATTEMPT_OUTCOME] == "success"
    assert attributes[sc.ATTEMPT_KIND] == "first"
    assert provider.request_count() == 1


@pytest.mark.parametrize("kind", ["rerank", "image_edit"])
def test_a_sync_call_is_retried_by_the_router_after_a_429(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture, kind: str
) -> None:
    call, _, response_type, _, _ = KINDS[kind]
    provider.script(RETRIED_MODELS[kind], Fail(429, retry_after=0.01), Reply())

    response = call(router, f"s-retry-{kind}")

    assert isinstance(response, response_type)
    (span,) = capture.call_spans()
    outcomes = [attempt.attributes[sc.ATTEMPT_OUTCOME] for attempt in capture.attempt_spans(span)]  # type: ignore[index]
    assert outcomes == ["failure", "success"]
    assert provider.request_count() == 2


@pytest.mark.parametrize("backend", ["memory", "redis"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_sync_call_is_held_and_settled_to_the_micro_dollar(
    provider: ProviderDouble, capture: TelemetryCapture, kind: str, backend: str, request: pytest.FixtureRequest
) -> None:
    call, _, _, cost, _ = KINDS[kind]
    router = budgeted_router(provider, capture, 1.0, store_config(backend, request))
    try:
        call(router, "s-settle")
        (status,) = router.budgets.status("session", "s-settle")
        assert status.spent_units == usd_to_units(cost)
        assert status.held_units == 0
    finally:
        router.shutdown()


@pytest.mark.parametrize("kind", KINDS)
def test_a_budget_refuses_a_sync_call_before_the_provider(
    provider: ProviderDouble, capture: TelemetryCapture, kind: str
) -> None:
    call, _, _, cost, _ = KINDS[kind]
    router = budgeted_router(provider, capture, cost / 2, {"backend": "memory"})
    try:
        with pytest.raises(BudgetExceededError):
            call(router, "s-refused")
        assert provider.request_count() == 0
    finally:
        router.shutdown()


def test_sync_calls_from_many_threads_keep_their_own_spans(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    errors: list[BaseException] = []

    def run(kind: str, index: int) -> None:
        try:
            KINDS[kind][0](router, f"s-{kind}-{index}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(kind, index)) for kind in KINDS for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    spans = capture.call_spans()
    assert len(spans) == len(threads)
    for span in spans:
        attributes = dict(span.attributes or {})
        session = str(attributes[sc.SESSION_ID])
        kind = attributes[sc.GEN_AI_OPERATION_NAME]
        assert session.startswith(f"s-{kind}-")
        assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(KINDS[str(kind)][3])
        assert len(capture.attempt_spans(span)) == 1
