"""Audio transcription through the router: the duration rule before the call, the reported duration after."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import litellm
import pytest

from costrouter import BudgetExceededError, CostRouter
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.calltypes import (
    STT_PRICE,
    budgeted_router,
    call_attributes,
    calltypes_router,
    open_router,
    session_budget,
    sized_call_spans,
    store_config,
    wav_audio,
)

MP3_BYTES = b"ID3\x04\x00" + bytes(11_995)  # 12,000 bytes, no duration in its header


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    yield from open_router(provider, capture)


async def test_a_transcription_is_a_span_with_its_seconds_and_cost(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    audio = io.BytesIO(wav_audio(3.0))

    response = await router.aroute_transcription("stt", file=("call.wav", audio), session_id="s-stt")

    assert isinstance(response, litellm.TranscriptionResponse)
    assert response.text == "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7"
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.transcription/stt"
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "transcription"
    assert attributes[sc.ROUTER_USAGE_AUDIO_SECONDS] == 3
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(3 * STT_PRICE)
    assert attributes[f"{sc.ROUTER_COST_PREFIX}audio_seconds"] == pytest.approx(3 * STT_PRICE)
    assert provider.requests[0].body["file_bytes"] == len(wav_audio(3.0))
    assert audio.tell() == len(wav_audio(3.0))  # read by the call, not by costrouter's header check
    (attempt,) = capture.attempt_spans(span)
    assert attempt.attributes[sc.ATTEMPT_OUTCOME] == "success"  # type: ignore[index]


async def test_a_transcription_is_retried_after_a_429(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("stt-model", Fail(429, retry_after=0.01), Reply())

    await router.aroute_transcription("stt", file=wav_audio(2.0))

    attributes = call_attributes(capture)
    assert provider.request_count("stt-model") == 2
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(2 * STT_PRICE)


async def test_a_transcription_falls_back_to_another_group(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("stt-model", Fail(500))

    await router.aroute_transcription("stt", file=wav_audio(2.0))

    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_SERVED_GROUP] == "stt-backup"
    assert attributes[sc.ROUTER_FALLBACKS] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(2 * STT_PRICE / 2)
    assert provider.request_count("stt-backup-model") == 1


async def test_a_budget_refuses_a_long_recording_before_the_provider(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    router = budgeted_router(provider, capture, 0.0002, {"backend": "memory"})  # 200 micro-dollars

    with pytest.raises(BudgetExceededError):
        await router.aroute_transcription("stt", file=wav_audio(3.0), session_id="s-long")  # 300 micro-dollars

    assert provider.request_count() == 0
    assert call_attributes(capture)[sc.BUDGET_OUTCOME] == "rejected"
    router.shutdown()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_transcription_settles_to_the_unit(
    provider: ProviderDouble, capture: TelemetryCapture, backend: str, request: pytest.FixtureRequest
) -> None:
    router = budgeted_router(provider, capture, 1.0, store_config(backend, request))

    await router.aroute_transcription("stt", file=wav_audio(3.0), session_id="s-settle")

    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s-settle")
    assert status.spent_units == 300_000  # 3 s x 0.0001 USD, in nano-dollars: hand-computed
    assert status.held_units == 0
    router.shutdown()


async def test_a_file_without_a_duration_header_is_held_for_its_size_at_8_kbits(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    """12,000 bytes at 1,000 bytes a second: held for 12 s; the provider reports 6 s (16 kbit/s)."""
    router = budgeted_router(provider, capture, 1.0, {"backend": "memory"})

    await router.aroute_transcription("stt", file=("call.mp3", MP3_BYTES), session_id="s-mp3")

    attributes = call_attributes(capture)
    assert attributes[sc.BUDGET_ESTIMATE_USD] == pytest.approx(12 * STT_PRICE)
    assert attributes[sc.ROUTER_USAGE_AUDIO_SECONDS] == 6
    assert attributes[sc.BUDGET_SETTLED_USD] == pytest.approx(6 * STT_PRICE)
    router.shutdown()


async def test_the_size_bound_is_capped_by_the_policy(provider: ProviderDouble, capture: TelemetryCapture) -> None:
    provider.reset()
    policy: dict[str, Any] = {**session_budget(1.0, {"backend": "memory"}), "defaults": {"max_audio_seconds": 5}}
    router = calltypes_router(provider.base_url, capture, policy)

    await router.aroute_transcription("stt", file=("call.mp3", MP3_BYTES), session_id="s-cap")

    attributes = call_attributes(capture)
    assert attributes[sc.BUDGET_ESTIMATE_USD] == pytest.approx(5 * STT_PRICE)
    assert attributes[sc.BUDGET_SETTLED_USD] == pytest.approx(6 * STT_PRICE)  # the money spent is charged
    router.shutdown()


async def test_concurrent_transcriptions_keep_their_own_spans(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("stt-model", Reply(delay=0.05))
    sizes = range(1, 7)

    await asyncio.gather(
        *(router.aroute_transcription("stt", file=wav_audio(size), session_id=f"s{size}") for size in sizes)
    )

    for size, attributes in sized_call_spans(capture, len(sizes)):
        assert attributes[sc.ROUTER_USAGE_AUDIO_SECONDS] == size
        assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(size * STT_PRICE)


async def test_a_transcription_on_a_speech_group_is_a_clear_error(router: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match=r"'tts' serves tts-primary \(audio_speech\): not a transcription call"):
        await router.aroute_transcription("tts", file=wav_audio(1.0))

    assert provider.request_count() == 0


async def test_a_transcription_of_no_file_is_refused(router: CostRouter) -> None:
    with pytest.raises(TypeError, match="file must be bytes, a path, a binary file"):
        await router.aroute_transcription("stt", file="call.wav")


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_transcription_that_reports_tokens_is_billed_by_its_tokens(
    provider: ProviderDouble, capture: TelemetryCapture, backend: str, request: pytest.FixtureRequest
) -> None:
    """gpt-4o-transcribe's usage: audio input tokens and text output tokens, not seconds."""
    router = budgeted_router(provider, capture, 1.0, store_config(backend, request))
    usage = {
        "type": "tokens",
        "input_tokens": 40,
        "output_tokens": 8,
        "total_tokens": 48,
        "input_token_details": {"audio_tokens": 40, "text_tokens": 0},
    }
    provider.set_default("stt-token-model", Reply(usage_details=usage))

    await router.aroute_transcription("stt-tokens", file=wav_audio(3.0), response_format="json", session_id="s-tok")

    attributes = call_attributes(capture)
    # Held: 3 s x 1e-4 + 60 audio tokens x 6e-6 + 30 output tokens x 1e-5 = 960 micro-dollars.
    assert attributes[sc.BUDGET_ESTIMATE_USD] == pytest.approx(960e-6)
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 40
    assert sc.ROUTER_USAGE_AUDIO_SECONDS not in attributes
    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s-tok")
    assert status.spent_units == 320_000  # 40 audio tokens x 6e-6 + 8 output tokens x 1e-5, in nano-dollars
    router.shutdown()
