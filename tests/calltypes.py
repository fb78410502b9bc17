"""A router configuration with a group of each call type on a provider double, and the tests' helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from costrouter import CostRouter
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, TelemetryCapture

EMBED_PRICE = 1e-6
"""USD per input token of ``embed-primary`` (the backup charges half)."""
TEXT_PRICES = (3e-6, 4e-6)
"""USD per input and output token of ``text-primary`` (the backup charges half)."""
CLAUDE_PRICES = (3e-6, 15e-6)
"""USD per input and output token of ``claude-primary`` (the backup charges half)."""
CLAUDE_CACHE_READ_PRICE = 3e-7
"""USD per prompt token ``claude-primary`` reads from its cache."""
ANSWER_PRICES = (2e-6, 5e-6)
"""USD per input and output token of ``answer-primary`` (the backup charges half)."""
RERANK_PRICE = 0.002
"""USD per search unit of ``rerank-primary`` (the backup charges half)."""
STT_PRICE = 0.0001
"""USD per second of audio of ``stt-primary`` (the backup charges half)."""
STT_TOKEN_PRICES = (2.5e-6, 6e-6, 1e-5)
"""USD per text input, audio input and output token of ``stt-tokens`` (and 1e-4 a second)."""
TTS_PRICE = 15e-6
"""USD per character of ``tts-primary`` (the backup charges half)."""
IMAGE_PRICES = {"standard/1024x1024": 0.04, "hd/1024x1024": 0.08, "standard/1792x1024": 0.08, "hd/1792x1024": 0.12}
"""USD per image of ``images-primary`` by quality and size."""
IMAGE_BACKUP_PRICE = 0.02
"""USD per image of ``images-backup``, whatever its size."""


def _deployment(
    deployment_id: str, model: str, base_url: str, prices: tuple[float, float], mode: str
) -> dict[str, Any]:
    return {
        "id": deployment_id,
        "model": model if "/" in model else f"openai/{model}",
        "api_base": base_url,
        "api_key": "test-key",
        "input_cost_per_token": prices[0],
        "output_cost_per_token": prices[1],
        "mode": mode,
    }


_UNIT_PRICE_FIELD = {
    "rerank": "input_cost_per_query",
    "audio_transcription": "input_cost_per_second",
    "audio_speech": "input_cost_per_character",
    "image_generation": "output_cost_per_image",
}


def _unit_priced(deployment_id: str, model: str, base_url: str, mode: str, price: float | None) -> dict[str, Any]:
    """A deployment priced per unit of its kind (search unit …; ``None``: no flat price), no token price."""
    api_base = base_url.removesuffix("/v1") if model.startswith("cohere/") else base_url
    return {
        "id": deployment_id,
        "model": model,
        "api_base": api_base,
        "api_key": "test-key",
        "mode": mode,
        _UNIT_PRICE_FIELD[mode]: price,
    }


def calltypes_config(base_url: str) -> dict[str, Any]:
    """Groups ``embed`` (falls back to ``embed-backup``) and ``answer`` (falls back to ``answer-backup``)."""
    half_answer = (ANSWER_PRICES[0] / 2, ANSWER_PRICES[1] / 2)
    return {
        "router": {"num_retries": 1, "retry_after": 0},
        "groups": {
            "embed": {
                "deployments": [_deployment("embed-primary", "emb-model", base_url, (EMBED_PRICE, 0.0), "embedding")],
                "fallbacks": ["embed-backup"],
            },
            "embed-backup": {
                "deployments": [
                    _deployment("embed-backup", "emb-backup-model", base_url, (EMBED_PRICE / 2, 0.0), "embedding")
                ],
            },
            "answer": {
                "deployments": [_deployment("answer-primary", "resp-model", base_url, ANSWER_PRICES, "responses")],
                "fallbacks": ["answer-backup"],
            },
            "text": {
                "deployments": [
                    _deployment("text-primary", "text-completion-openai/tc-model", base_url, TEXT_PRICES, "completion")
                ],
                "fallbacks": ["text-backup"],
            },
            "text-backup": {
                "deployments": [
                    _deployment(
                        "text-backup",
                        "text-completion-openai/tc-backup-model",
                        base_url,
                        (TEXT_PRICES[0] / 2, TEXT_PRICES[1] / 2),
                        "completion",
                    )
                ],
            },
            "claude": {
                "deployments": [
                    {
                        **_deployment("claude-primary", "anthropic/claude-x", base_url, CLAUDE_PRICES, "chat"),
                        "cache_read_input_token_cost": CLAUDE_CACHE_READ_PRICE,
                        "api_base": base_url.removesuffix("/v1"),
                    }
                ],
                "fallbacks": ["claude-backup"],
            },
            "claude-backup": {
                "deployments": [
                    {
                        **_deployment(
                            "claude-backup",
                            "anthropic/claude-backup-x",
                            base_url,
                            (CLAUDE_PRICES[0] / 2, CLAUDE_PRICES[1] / 2),
                            "chat",
                        ),
                        "api_base": base_url.removesuffix("/v1"),
                    }
                ],
            },
            "answer-backup": {
                "deployments": [_deployment("answer-backup", "resp-backup-model", base_url, half_answer, "responses")],
            },
            "rerank": {
                "deployments": [
                    _unit_priced("rerank-primary", "cohere/rerank-model", base_url, "rerank", RERANK_PRICE)
                ],
                "fallbacks": ["rerank-backup"],
            },
            "stt": {
                "deployments": [
                    _unit_priced("stt-primary", "openai/stt-model", base_url, "audio_transcription", STT_PRICE)
                ],
                "fallbacks": ["stt-backup"],
            },
            "stt-backup": {
                "deployments": [
                    _unit_priced(
                        "stt-backup", "openai/stt-backup-model", base_url, "audio_transcription", STT_PRICE / 2
                    )
                ],
            },
            "stt-tokens": {  # priced like gpt-4o-transcribe: per token, and per second when no tokens come back
                "deployments": [
                    {
                        **_unit_priced("stt-tokens", "openai/stt-token-model", base_url, "audio_transcription", 1e-4),
                        "input_cost_per_token": STT_TOKEN_PRICES[0],
                        "input_cost_per_audio_token": STT_TOKEN_PRICES[1],
                        "output_cost_per_token": STT_TOKEN_PRICES[2],
                    }
                ],
            },
            "tts": {
                "deployments": [_unit_priced("tts-primary", "openai/tts-model", base_url, "audio_speech", TTS_PRICE)],
                "fallbacks": ["tts-backup"],
            },
            "tts-backup": {
                "deployments": [
                    _unit_priced("tts-backup", "openai/tts-backup-model", base_url, "audio_speech", TTS_PRICE / 2)
                ],
            },
            "images": {
                "deployments": [
                    {
                        **_unit_priced("images-primary", "openai/img-model", base_url, "image_generation", None),
                        "image_prices": IMAGE_PRICES,
                    }
                ],
                "fallbacks": ["images-backup"],
            },
            "images-backup": {
                "deployments": [
                    _unit_priced(
                        "images-backup", "openai/img-backup-model", base_url, "image_generation", IMAGE_BACKUP_PRICE
                    )
                ],
            },
            "rerank-backup": {
                "deployments": [
                    _unit_priced("rerank-backup", "cohere/rerank-backup-model", base_url, "rerank", RERANK_PRICE / 2)
                ],
            },
        },
    }


def calltypes_router(base_url: str, capture: TelemetryCapture, budgets: dict[str, Any] | None = None) -> CostRouter:
    """A CostRouter over :func:`calltypes_config`, its telemetry in ``capture``."""
    return CostRouter(
        calltypes_config(base_url),
        budgets=budgets,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )


def session_budget(limit_usd: float, store: dict[str, Any]) -> dict[str, Any]:
    """A budget policy of one session budget of ``limit_usd`` on ``store``."""
    return {"store": store, "budgets": [{"scope": "session", "limit_usd": limit_usd, "window": "total"}]}


def open_router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    """A fixture's body: an unbudgeted router on the (reset) double, shut down after the test."""
    provider.reset()
    made = calltypes_router(provider.base_url, capture)
    yield made
    made.shutdown()


def budgeted_router(
    provider: ProviderDouble, capture: TelemetryCapture, limit_usd: float, store: dict[str, Any]
) -> CostRouter:
    """A router with one session budget of ``limit_usd`` on ``store``, on the (reset) double."""
    provider.reset()
    return calltypes_router(provider.base_url, capture, session_budget(limit_usd, store))


def store_config(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """A fresh budget store of ``backend`` (``memory`` or ``redis``, on the test's Redis server)."""
    store: dict[str, Any] = {"backend": backend, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    if backend == "redis":
        store["redis_url"] = request.getfixturevalue("redis_url")
        # The per-call path (leases are the default): these tests read the hold and the settle in
        # Redis right after the call; leases are covered by test_budget_leases.py and the fault suite.
        store["lease"] = {"enabled": False}
    return store


def call_attributes(capture: TelemetryCapture) -> dict[str, Any]:
    """The attributes of the one routed call's span ``capture`` holds."""
    (span,) = capture.call_spans()
    return dict(span.attributes or {})


def wav_audio(seconds: float, byte_rate: int = 32000) -> bytes:
    """A WAV file of ``seconds`` of silence (16 kHz, 16-bit mono by default)."""
    data = int(seconds * byte_rate)
    header = b"RIFF" + (36 + data).to_bytes(4, "little") + b"WAVE"
    fmt = (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (byte_rate // 2).to_bytes(4, "little")
    fmt += byte_rate.to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    return header + b"fmt " + (16).to_bytes(4, "little") + fmt + b"data" + data.to_bytes(4, "little") + bytes(data)


def sized_call_spans(capture: TelemetryCapture, count: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """The ``count`` call spans of a concurrency test, each with the size its session id ``s<size>`` names.

    Every call made one successful attempt, as a child of its own span.
    """
    spans = capture.call_spans()
    assert len(spans) == count
    for span in spans:
        attributes = dict(span.attributes or {})
        (attempt,) = capture.attempt_spans(span)
        assert attempt.attributes[sc.ATTEMPT_OUTCOME] == "success"  # type: ignore[index]
        yield int(str(attributes[sc.SESSION_ID])[1:]), attributes
