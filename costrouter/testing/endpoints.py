"""The provider double's endpoints beyond chat: embeddings, responses, completions, rerank, audio, images.

``/v1/embeddings``, ``/v1/responses``, ``/v1/completions``, Cohere's ``/v1/rerank`` (and ``/v2/rerank``),
``/v1/audio/transcriptions`` (multipart), ``/v1/audio/speech`` (binary audio),
``/v1/images/generations`` and ``/v1/images/edits`` (multipart).

Each takes the next scripted behaviour of its model like the chat endpoint does, so
429s, 500s and slow answers are scripted the same way. Input tokens are the words
of the input (as :func:`~costrouter.testing.provider.count_prompt_tokens` counts a
message), unless the :class:`Reply` says ``prompt_tokens``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def input_words(value: object) -> int:
    """The words of an embedding or Responses input (a string, a list of strings or items)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(input_words(item) for item in value)
    if isinstance(value, dict):
        content = value.get("content", value.get("text"))
        return input_words(content) if content is not None else 0
    return 0


def embeddings_payload(body: dict[str, Any], prompt_tokens: int) -> dict[str, Any]:
    """OpenAI's embeddings response: one small vector per input."""
    inputs = body.get("input")
    count = len(inputs) if isinstance(inputs, list) else 1
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(count)],
        "model": body.get("model", ""),
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def response_object(
    body: dict[str, Any], text: str, input_tokens: int, output_tokens: int, status: str, service_tier: str | None = None
) -> dict[str, Any]:
    """A Responses API ``response`` object with one output message (and the ``service_tier`` it was served at)."""
    tier = {"service_tier": service_tier} if service_tier is not None else {}
    return {
        **tier,
        "id": f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body.get("model", ""),
        "output": [
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }


async def paced(
    http_request: web.Request, pieces: list[str], cut_after: int | None, chunk_delay: float = 0.0
) -> AsyncIterator[str]:
    """``pieces`` in order, ``chunk_delay`` apart; after ``cut_after`` of them the connection is dropped.

    A cut leaves the stream without its closing events, as a crashed upstream does: the caller
    sees the iteration end early (fewer pieces than it has) and returns without them.
    """
    for index, piece in enumerate(pieces):
        if cut_after is not None and index >= cut_after:
            transport = http_request.transport
            if transport is not None:
                transport.abort()
            return
        if index and chunk_delay:
            await asyncio.sleep(chunk_delay)
        yield piece


async def responses_stream(
    http_request: web.Request,
    body: dict[str, Any],
    pieces: list[str],
    input_tokens: int,
    cut_after: int | None,
    service_tier: str | None = None,
) -> tuple[web.StreamResponse, int]:
    """Send ``pieces`` as ``response.output_text.delta`` events, then ``response.completed``.

    Returns the response and how many pieces were sent (a cut stream aborts its connection).
    """
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(http_request)

    async def send(event: dict[str, Any]) -> None:
        await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())

    started = response_object(body, "", input_tokens, 0, "in_progress")
    started.pop("usage")
    await send({"type": "response.created", "sequence_number": 0, "response": started})
    sent = 0
    async for piece in paced(http_request, pieces, cut_after):
        delta = {"type": "response.output_text.delta", "item_id": "msg_0", "output_index": 0}
        await send({**delta, "content_index": 0, "delta": piece, "sequence_number": sent + 1})
        sent += 1
    if sent < len(pieces):
        return response, sent
    final = response_object(body, "".join(pieces), input_tokens, len(pieces), "completed", service_tier)
    final["id"] = started["id"]
    await send({"type": "response.completed", "sequence_number": len(pieces) + 1, "response": final})
    await response.write_eof()
    return response, sent


def text_completion_payload(
    body: dict[str, Any], text: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """OpenAI's legacy completions response: one choice of ``text``."""
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def rerank_payload(body: dict[str, Any], search_units: int) -> dict[str, Any]:
    """Cohere's rerank response: documents by the words they share with the query, and the search units billed."""
    query = set(str(body.get("query", "")).lower().split())
    documents = body.get("documents") or []
    texts = [doc if isinstance(doc, str) else str(doc.get("text", "")) for doc in documents]
    scores = sorted(
        ((index, len(query & set(text.lower().split()))) for index, text in enumerate(texts)), key=lambda pair: -pair[1]
    )
    top_n = body.get("top_n") or len(scores)
    return {
        "id": f"rerank-{uuid.uuid4().hex[:24]}",
        "results": [
            {"index": index, "relevance_score": round(1 / (rank + 1), 6)}
            for rank, (index, _) in enumerate(scores[:top_n])
        ],
        "meta": {"api_version": {"version": "1"}, "billed_units": {"search_units": search_units}},
    }


def audio_duration(audio: bytes) -> float:
    """Seconds of audio: a WAV header's byte rate over its data, else 16 kbit/s."""
    if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE":
        byte_rate = int.from_bytes(audio[28:32], "little")
        if byte_rate:
            return (len(audio) - 44) / byte_rate
    return len(audio) / 2000


def transcription_payload(
    response_format: str, text: str, seconds: float, usage: Mapping[str, Any] | None
) -> dict[str, Any] | str:
    """OpenAI's transcription: ``json`` with its usage (seconds, or the tokens given), ``verbose_json``, ``text``."""
    if response_format == "text":
        return text
    if response_format == "verbose_json":
        return {"task": "transcribe", "language": "english", "duration": seconds, "text": text, "segments": []}
    return {"text": text, "usage": dict(usage) if usage is not None else {"type": "duration", "seconds": seconds}}


def speech_audio(text: str) -> bytes:
    """Audio bytes for ``text``: an MP3 frame header and ten bytes a character."""
    return b"ID3\x04\x00" + bytes(10 * len(text))


def images_payload(prompt: str, count: int, size: str | None, quality: str | None) -> dict[str, Any]:
    """OpenAI's images response: ``count`` images (as URLs), with the size and quality made."""
    payload: dict[str, Any] = {
        "created": int(time.time()),
        "data": [{"url": f"https://images.invalid/{uuid.uuid4().hex[:12]}.png", "revised_prompt": prompt}] * count,
    }
    if size:
        payload["size"] = size
    if quality:
        payload["quality"] = quality
    return payload
