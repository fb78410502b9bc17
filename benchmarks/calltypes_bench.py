"""The added cost per call of each kind of routed call (embedding, Responses, rerank, audio, images), next to chat.

Each kind runs against the provider double on loopback, in alternating rounds of 50 calls:
the bare LiteLLM Router (``router.litellm_router.<method>``) and the same call through
``CostRouter.route_*`` (with a memory budget). The median per-call wall time of each side,
over the rounds, and their difference are printed as a Markdown table. On a shared 2-core
machine the difference of two multi-millisecond calls is noisy: read it as an order of size
(``layer_bench.py`` measures costrouter's own layer alone, in µs, for chat). The kinds LiteLLM's
Router routes in async only (rerank, transcription, speech) run their rounds on one event loop.

    uv run --locked python benchmarks/calltypes_bench.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import statistics
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from costrouter import CostRouter
from costrouter.testing import ProviderDouble, TelemetryCapture

_CALLS_PER_ROUND = 50


def _config(base_url: str) -> dict[str, Any]:
    def deployment(deployment_id: str, model: str) -> dict[str, Any]:
        return {
            "id": deployment_id,
            "model": f"openai/{model}",
            "api_base": base_url,
            "api_key": "bench",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
        }

    def unit(deployment_id: str, model: str) -> dict[str, Any]:
        return {"id": deployment_id, "model": model, "api_base": base_url, "api_key": "bench"}

    return {
        "router": {"num_retries": 0},
        "groups": {
            "chat": {"deployments": [deployment("chat-1", "chat-model")]},
            "embed": {"deployments": [deployment("embed-1", "embed-model")]},
            "answer": {"deployments": [deployment("answer-1", "answer-model")]},
            "rerank": {"deployments": [{**unit("rerank-1", "cohere/rerank-model"), "input_cost_per_query": 0.002}]},
            "stt": {"deployments": [{**unit("stt-1", "openai/stt-model"), "input_cost_per_second": 1e-4}]},
            "tts": {"deployments": [{**unit("tts-1", "openai/tts-model"), "input_cost_per_character": 1.5e-5}]},
            "images": {"deployments": [{**unit("images-1", "openai/img-model"), "output_cost_per_image": 0.04}]},
        },
    }


def _kinds(router: CostRouter) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    bare = router.litellm_router
    messages = [{"role": "user", "content": "say hello to the benchmark"}]
    chunks = ["a chunk of a document to embed"] * 4
    return {
        "chat": (
            lambda: bare.completion(model="chat", messages=messages, max_tokens=16),
            lambda: router.route_completion("chat", messages, max_tokens=16, session_id="bench"),
        ),
        "embedding": (
            lambda: bare.embedding(model="embed", input=chunks),
            lambda: router.route_embedding("embed", input=chunks, session_id="bench"),
        ),
        "responses": (
            lambda: bare.responses(model="answer", input="say hello", max_output_tokens=16),
            lambda: router.route_response("answer", input="say hello", max_output_tokens=16, session_id="bench"),
        ),
    }


Async = Callable[[], Awaitable[Any]]
_WAV = b"RIFF" + struct.pack("<I", 36 + 32000) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
_WAV += b"data" + struct.pack("<I", 32000) + bytes(32000)  # one second, 16 kHz 16-bit mono


def _async_kinds(router: CostRouter) -> dict[str, tuple[Async, Async]]:
    bare = router.litellm_router
    documents = ["a document about refunds", "one about shipping", "one about gift cards"]
    return {
        "rerank": (
            lambda: bare.arerank(model="rerank", query="refunds", documents=documents),
            lambda: router.aroute_rerank("rerank", query="refunds", documents=documents, session_id="bench"),
        ),
        "transcription": (
            lambda: bare.atranscription(model="stt", file=("a.wav", _WAV)),
            lambda: router.aroute_transcription("stt", file=("a.wav", _WAV), session_id="bench"),
        ),
        "speech": (
            lambda: bare.aspeech(model="tts", input="hello there", voice="alloy"),
            lambda: router.aroute_speech("tts", input="hello there", voice="alloy", session_id="bench"),
        ),
        "image": (
            lambda: bare.aimage_generation(model="images", prompt="a lighthouse", size="1024x1024"),
            lambda: router.aroute_image("images", prompt="a lighthouse", size="1024x1024", session_id="bench"),
        ),
    }


async def _around(call: Async) -> float:
    started = time.perf_counter()
    for _ in range(_CALLS_PER_ROUND):
        await call()
    return (time.perf_counter() - started) / _CALLS_PER_ROUND


async def _measure_async(kinds: dict[str, tuple[Async, Async]], rounds: int, capture: TelemetryCapture) -> None:
    for kind, (bare, routed) in kinds.items():
        await bare(), await routed()  # warm both paths
        times: dict[str, list[float]] = {"bare": [], "routed": []}
        for _ in range(rounds):
            times["bare"].append(await _around(bare))
            times["routed"].append(await _around(routed))
            capture.clear()
        _row(kind, times)


def _row(kind: str, times: dict[str, list[float]]) -> None:
    bare_ms = statistics.median(times["bare"]) * 1000
    routed_ms = statistics.median(times["routed"]) * 1000
    print(f"| {kind} | {bare_ms:.2f} | {routed_ms:.2f} | {routed_ms - bare_ms:+.2f} |")


BUDGETS: dict[str, Any] = {"store": {"backend": "memory"}, "budgets": [{"scope": "session", "limit_usd": 1e6}]}
"""One session budget far above what the benchmark spends."""


def _round(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    for _ in range(_CALLS_PER_ROUND):
        call()
    return (time.perf_counter() - started) / _CALLS_PER_ROUND


def main(rounds: int) -> None:
    """Print the table."""
    with ProviderDouble() as provider:
        capture = TelemetryCapture()
        router = CostRouter(
            _config(provider.base_url),
            budgets=BUDGETS,
            tracer_provider=capture.tracer_provider,
            meter_provider=capture.meter_provider,
        )
        print("| call | bare LiteLLM ms/call | through costrouter ms/call | added ms/call |")
        print("|---|---:|---:|---:|")
        for kind, (bare, routed) in _kinds(router).items():
            bare(), routed()  # warm both paths (clients, tokenizer)
            times: dict[str, list[float]] = {"bare": [], "routed": []}
            for _ in range(rounds):
                times["bare"].append(_round(bare))
                times["routed"].append(_round(routed))
                capture.clear()
            _row(kind, times)
        asyncio.run(_measure_async(_async_kinds(router), rounds, capture))
        router.shutdown()
        capture.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
