"""A scriptable OpenAI chat-completions server on loopback, for tests and demos.

It speaks enough of the protocol for LiteLLM's ``openai/`` provider: ``POST
/v1/chat/completions`` with JSON or server-sent-event streams, usage blocks, and
the failures real providers produce (429 with ``retry-after``, 500, slow answers,
streams cut in the middle). Each model name has a queue of scripted behaviours and
a default one; every request is counted and kept.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from costrouter.testing.endpoints import (
    audio_duration,
    embeddings_payload,
    images_payload,
    input_words,
    paced,
    rerank_payload,
    response_object,
    responses_stream,
    speech_audio,
    text_completion_payload,
    transcription_payload,
)

__all__ = [
    "Answer",
    "Behaviour",
    "Fail",
    "ProviderDouble",
    "ReceivedRequest",
    "Reply",
    "anthropic_usage",
    "gemini_usage",
    "openai_usage",
    "tiktoken_prompt_tokens",
]


@dataclass(frozen=True)
class Reply:
    """Answer 200 with ``completion_tokens`` tokens of text.

    ``delay`` seconds pass before the answer (a slow or cold model). For streams,
    ``include_usage=False`` omits the usage chunk even when the client asked for
    it, ``cut_after`` closes the connection after that many content chunks, and
    ``chunk_delay`` seconds pass before each content chunk after the first (a long stream).
    ``prompt_tokens`` reports that many prompt tokens instead of counting the messages
    (a 250k-token prompt without sending one); ``usage_details`` is merged into the usage
    block (a provider's real shape: see :func:`openai_usage`, :func:`anthropic_usage`,
    :func:`gemini_usage`, or OpenRouter's ``{"cost": ...}``); ``headers`` are added to
    the response (a LiteLLM proxy's ``x-litellm-response-cost``). Reasoning tokens in
    ``usage_details`` are counted inside ``completion_tokens``, as providers count them.
    ``service_tier`` is the tier the answer reports it was served at (chat and Responses, as
    OpenAI writes it); by default the request's ``service_tier`` is echoed (``auto`` as
    ``default``), and a request that names none gets no ``service_tier``.
    """

    completion_tokens: int = 8
    delay: float = 0.0
    finish_reason: str = "stop"
    include_usage: bool = True
    cut_after: int | None = None
    text: str | None = None
    prompt_tokens: int | None = None
    usage_details: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    chunk_delay: float = 0.0
    service_tier: str | None = None


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error status (429, 500, 503 …) after ``delay`` seconds."""

    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    message: str = "scripted failure"


Behaviour = Reply | Fail


def openai_usage(*, cached_tokens: int = 0, reasoning_tokens: int = 0, audio_tokens: int = 0) -> dict[str, Any]:
    """OpenAI's usage details: cached prompt tokens, reasoning tokens (inside completion tokens)."""
    return {
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": audio_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens, "audio_tokens": 0},
    }


def anthropic_usage(
    *, cache_creation_tokens: int = 0, cache_read_tokens: int = 0, cache_creation_1h_tokens: int | None = None
) -> dict[str, Any]:
    """Anthropic's cache fields as LiteLLM reports them (prompt tokens include both).

    With ``cache_creation_1h_tokens``, the writes are split by cache lifetime as Anthropic
    reports them (``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``).
    """
    usage: dict[str, Any] = {
        "cache_creation_input_tokens": cache_creation_tokens,
        "cache_read_input_tokens": cache_read_tokens,
        "prompt_tokens_details": {"cached_tokens": cache_read_tokens},
    }
    if cache_creation_1h_tokens is not None:
        split = {
            "ephemeral_5m_input_tokens": cache_creation_tokens - cache_creation_1h_tokens,
            "ephemeral_1h_input_tokens": cache_creation_1h_tokens,
        }
        usage["cache_creation"] = split
        usage["prompt_tokens_details"]["cache_creation_token_details"] = split
    return usage


def gemini_usage(*, thinking_tokens: int = 0, cached_tokens: int = 0) -> dict[str, Any]:
    """Gemini's thinking tokens (billed as output) and implicit-cache hits, as LiteLLM maps them."""
    return {
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": thinking_tokens},
    }


@dataclass(frozen=True)
class ReceivedRequest:
    """One request the double received, in arrival order."""

    model: str
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float


@dataclass(frozen=True)
class Answer:
    """What the double billed for one chat completion: the tokens it counted and generated.

    A stream cut mid-way or abandoned by its client bills the prompt and the chunks it
    sent (``complete`` false), as real providers bill what they generated.
    """

    model: str
    prompt_tokens: int
    completion_tokens: int
    complete: bool = True


@dataclass
class _Script:
    default: Behaviour = field(default_factory=Reply)
    queue: deque[Behaviour] = field(default_factory=deque)


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The double's own token count: whitespace-separated words plus 3 per message."""
    total = 0
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, list):
            content = " ".join(str(part.get("text", "")) for part in content)
        total += len(str(content).split()) + 3
    return total


def _media_tokens(part: dict[str, Any]) -> int:
    """What an OpenAI-like provider bills for a non-text part (see tiktoken_prompt_tokens)."""
    import litellm.litellm_core_utils.token_counter as counter  # noqa: PLC0415  (LiteLLM only when asked)

    kind = part.get("type")
    if kind == "image_url":
        image = part["image_url"]
        url, detail = (image, "auto") if isinstance(image, str) else (image["url"], image.get("detail") or "auto")
        if detail == "low":
            return 85
        if not url.startswith("data:"):
            return 85 + 170 * 8  # an image the double cannot see: the most OpenAI's tile rule bills
        return int(counter.calculate_img_tokens(url, mode="high"))
    if kind == "input_audio":
        audio = base64.b64decode(part["input_audio"]["data"])
        byte_rate = 2000  # 16 kbit/s, unless a WAV header says otherwise
        if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE":
            byte_rate = int.from_bytes(audio[28:32], "little") or byte_rate
        return math.ceil(len(audio) / byte_rate * 10)  # 10 tokens a second
    if kind == "file":
        data = str(part["file"].get("file_data") or "")
        raw = base64.b64decode(data.split(",", 1)[-1]) if data else b""
        return len(raw.decode("utf-8", "ignore").split()) + 1445
    return 0


def tiktoken_prompt_tokens(body: dict[str, Any]) -> int:
    """A request's prompt tokens as LiteLLM's tiktoken counter sees them, media as OpenAI bills it.

    Text parts, names, tool calls, ``tools`` and ``tool_choice`` by ``litellm.token_counter``;
    images by OpenAI's tile rule (the largest bill when the image is a URL), audio at 10 tokens
    a second (of a WAV's duration, else at 16 kbit/s), files as their words plus one page image;
    ``response_format`` as its JSON.
    """
    import litellm  # noqa: PLC0415

    messages = []
    media = 0
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            media += sum(_media_tokens(part) for part in content if isinstance(part, dict))
            texts = [part for part in content if isinstance(part, str) or part.get("type") == "text"]
            messages.append({**message, "content": texts})
        else:
            messages.append(message)
    tools = body.get("tools") or [{"type": "function", "function": f} for f in body.get("functions") or []]
    tokens = litellm.token_counter(messages=messages, tools=tools or None, tool_choice=body.get("tool_choice"))
    if body.get("response_format") is not None:
        tokens += litellm.token_counter(text=json.dumps(body["response_format"]))
    return int(tokens) + media


class ProviderDouble:
    """An OpenAI-compatible HTTP server on 127.0.0.1, run on its own thread.

    >>> with ProviderDouble() as provider:
    ...     provider.script("gpt-x", Fail(429), Reply(completion_tokens=5))
    ...     api_base = provider.base_url   # "http://127.0.0.1:PORT/v1"
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, prompt_token_factor: float | None = None) -> None:
        """Serve on ``host:port`` (0: a free port).

        ``prompt_token_factor`` makes every model report ``ceil(factor x``
        :func:`tiktoken_prompt_tokens` ``)`` prompt tokens, as a provider whose tokenizer
        counts more (or less) than tiktoken; ``None`` keeps the double's word count
        (:func:`count_prompt_tokens`). :meth:`set_prompt_token_factor` sets it per model.
        """
        self._factors: dict[str | None, float | None] = {None: prompt_token_factor}
        self._host = host
        self._port = port
        self._scripts: dict[str, _Script] = defaultdict(_Script)
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._answers: list[Answer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # ---- scripting -------------------------------------------------------------------
    def script(self, model: str, *behaviours: Behaviour) -> None:
        """Queue behaviours for ``model``: each request takes the next one."""
        with self._lock:
            self._scripts[model].queue.extend(behaviours)

    def set_default(self, model: str, behaviour: Behaviour) -> None:
        """What ``model`` does once its queue is empty (by default ``Reply()``)."""
        with self._lock:
            self._scripts[model].default = behaviour

    def set_prompt_token_factor(self, model: str, factor: float | None) -> None:
        """Count ``model``'s prompt tokens at ``factor`` x tiktoken (``None``: the word count)."""
        with self._lock:
            self._factors[model] = factor

    def prompt_tokens(self, model: str, body: dict[str, Any]) -> int:
        """The prompt tokens the double bills ``model`` for a request ``body``."""
        with self._lock:
            factor = self._factors.get(model, self._factors[None])
        if factor is None:
            return count_prompt_tokens(body.get("messages") or [])
        return math.ceil(factor * tiktoken_prompt_tokens(body))

    def reset(self) -> None:
        """Forget every script and every received request."""
        with self._lock:
            self._scripts.clear()
            self._requests.clear()
            self._answers.clear()

    # ---- inspection ------------------------------------------------------------------
    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received so far."""
        with self._lock:
            return list(self._requests)

    @property
    def answers(self) -> list[Answer]:
        """Every chat completion the double billed so far (streams cut or abandoned included)."""
        with self._lock:
            return list(self._answers)

    def _bill(self, answer: Answer) -> None:
        with self._lock:
            self._answers.append(answer)

    def request_count(self, model: str | None = None) -> int:
        """How many requests arrived (for ``model``, or in all)."""
        with self._lock:
            return sum(1 for r in self._requests if model is None or r.model == model)

    @property
    def base_url(self) -> str:
        """The ``api_base`` to give LiteLLM: ``http://host:port/v1``."""
        return f"http://{self._host}:{self._port}/v1"

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> ProviderDouble:
        """Start serving; returns once the port is bound."""
        self._thread = threading.Thread(target=self._serve, name="provider-double", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._start_error is not None:
            raise RuntimeError("provider double failed to start") from self._start_error
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> ProviderDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # surfaced to start()
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        loop.close()

    async def _startup(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/chat/completions", self._handle)
        app.router.add_post("/openai/deployments/{deployment:.+}/chat/completions", self._handle)  # Azure OpenAI
        app.router.add_post("/v1/messages", self._handle_messages)
        app.router.add_post("/v1/embeddings", self._handle_embeddings)
        app.router.add_post("/v1/responses", self._handle_responses)
        app.router.add_post("/v1/completions", self._handle_text_completions)
        app.router.add_post("/v1/rerank", self._handle_rerank)
        app.router.add_post("/v2/rerank", self._handle_rerank)
        # A cohere/ deployment given the double's base_url (…/v1) appends /v1/rerank or /v2/rerank to it.
        app.router.add_post("/v1/v1/rerank", self._handle_rerank)
        app.router.add_post("/v1/v2/rerank", self._handle_rerank)
        app.router.add_post("/v1/audio/transcriptions", self._handle_transcriptions)
        app.router.add_post("/v1/audio/speech", self._handle_speech)
        app.router.add_post("/v1/images/generations", self._handle_images)
        app.router.add_post("/v1/images/edits", self._handle_images)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=1024)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if not sockets:
            raise RuntimeError(f"provider double could not bind {self._host}:{self._port}")
        self._port = sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- the protocol ----------------------------------------------------------------
    def _next_behaviour(self, model: str, request: ReceivedRequest) -> Behaviour:
        with self._lock:
            self._requests.append(request)
            script = self._scripts[model]
            return script.queue.popleft() if script.queue else script.default

    async def _handle_messages(self, http_request: web.Request) -> web.StreamResponse:
        """Anthropic's Messages API (for an ``anthropic/`` deployment whose ``api_base`` is the double)."""
        body = await http_request.json()
        model = str(body.get("model", ""))
        behaviour = self._next_behaviour(model, ReceivedRequest(model, body, dict(http_request.headers), time.time()))
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        if body.get("stream"):
            return await _anthropic_stream(http_request, body, behaviour, self._bill)
        message = _anthropic_message(body, behaviour)
        usage = message["usage"]
        self._bill(Answer(model, _anthropic_prompt_tokens(usage), usage["output_tokens"]))
        return web.json_response(message, headers=dict(behaviour.headers or {}))

    async def _scripted(self, http_request: web.Request) -> tuple[dict[str, Any], str, Behaviour]:
        body = await http_request.json()
        model = str(body.get("model", ""))
        behaviour = self._next_behaviour(model, ReceivedRequest(model, body, dict(http_request.headers), time.time()))
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        return body, model, behaviour

    async def _handle_embeddings(self, http_request: web.Request) -> web.StreamResponse:
        """OpenAI's embeddings API: bills the words of the input."""
        body, model, behaviour = await self._scripted(http_request)
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        tokens = behaviour.prompt_tokens if behaviour.prompt_tokens is not None else input_words(body.get("input"))
        self._bill(Answer(model, tokens, 0))
        return web.json_response(embeddings_payload(body, tokens), headers=dict(behaviour.headers or {}))

    async def _handle_responses(self, http_request: web.Request) -> web.StreamResponse:
        """OpenAI's Responses API, as JSON or as server-sent events ending in ``response.completed``."""
        body, model, behaviour = await self._scripted(http_request)
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        tokens = input_words(body.get("input")) + input_words(body.get("instructions"))
        if behaviour.prompt_tokens is not None:
            tokens = behaviour.prompt_tokens
        pieces = _completion_tokens_text(behaviour)
        tier = _served_tier(body, behaviour)
        if not body.get("stream"):
            self._bill(Answer(model, tokens, len(pieces)))
            payload = response_object(body, "".join(pieces), tokens, len(pieces), "completed", tier)
            return web.json_response(payload)
        response, sent = await responses_stream(http_request, body, pieces, tokens, behaviour.cut_after, tier)
        self._bill(Answer(model, tokens, sent, complete=sent == len(pieces)))
        return response

    async def _handle_text_completions(self, http_request: web.Request) -> web.StreamResponse:
        """OpenAI's legacy completions API (a ``text-completion-openai/`` deployment), JSON only."""
        body, model, behaviour = await self._scripted(http_request)
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        tokens = behaviour.prompt_tokens if behaviour.prompt_tokens is not None else input_words(body.get("prompt"))
        pieces = _completion_tokens_text(behaviour)
        self._bill(Answer(model, tokens, len(pieces)))
        return web.json_response(text_completion_payload(body, "".join(pieces), tokens, len(pieces)))

    async def _handle_rerank(self, http_request: web.Request) -> web.StreamResponse:
        """Cohere's rerank API (a ``cohere/`` deployment whose ``api_base`` is the double's root).

        Bills one search unit per 100 documents (``Reply.prompt_tokens`` overrides the count).
        """
        body, model, behaviour = await self._scripted(http_request)
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        units = behaviour.prompt_tokens
        if units is None:
            units = math.ceil(len(body.get("documents") or []) / 100)
        self._bill(Answer(model, units, 0))
        return web.json_response(rerank_payload(body, units), headers=dict(behaviour.headers or {}))

    async def _handle_transcriptions(self, http_request: web.Request) -> web.StreamResponse:
        """OpenAI's transcriptions API: a multipart upload; bills the audio's seconds.

        ``Reply.usage_details`` replaces the ``json`` usage (``{"type": "tokens", ...}`` for a
        model billed per token); the transcript is ``Reply``'s text or tokens.
        """
        form = await http_request.post()
        upload = form.get("file")
        audio = upload.file.read() if isinstance(upload, web.FileField) else b""
        body: dict[str, Any] = {key: value for key, value in form.items() if isinstance(value, str)}
        body["file_bytes"] = len(audio)
        model = str(body.get("model", ""))
        behaviour = self._next_behaviour(model, ReceivedRequest(model, body, dict(http_request.headers), time.time()))
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        text = "".join(_completion_tokens_text(behaviour))
        seconds = audio_duration(audio)
        self._bill(Answer(model, math.ceil(seconds), 0))
        payload = transcription_payload(
            str(body.get("response_format") or "json"), text, seconds, behaviour.usage_details
        )
        if isinstance(payload, str):
            return web.Response(text=payload, content_type="text/plain")
        return web.json_response(payload, headers=dict(behaviour.headers or {}))

    async def _handle_images(self, http_request: web.Request) -> web.StreamResponse:
        """OpenAI's image generation (JSON) and edits (multipart): ``n`` images; bills them.

        ``Reply.usage_details`` adds a token ``usage`` block (a model billed per token).
        """
        if http_request.content_type.startswith("multipart/"):
            form = await http_request.post()
            body: dict[str, Any] = {key: value for key, value in form.items() if isinstance(value, str)}
            body["image_files"] = sum(1 for value in form.values() if isinstance(value, web.FileField))
        else:
            body = await http_request.json()
        model = str(body.get("model", ""))
        behaviour = self._next_behaviour(model, ReceivedRequest(model, body, dict(http_request.headers), time.time()))
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        count = int(body.get("n") or 1)
        self._bill(Answer(model, 0, count))
        # Like gpt-image-1, the response says the size and quality it made (1024x1024 standard by default).
        size, quality = body.get("size") or "1024x1024", body.get("quality") or "standard"
        payload = images_payload(str(body.get("prompt", "")), count, size, quality)
        if behaviour.usage_details is not None:
            payload["usage"] = dict(behaviour.usage_details)
        return web.json_response(payload, headers=dict(behaviour.headers or {}))

    async def _handle_speech(self, http_request: web.Request) -> web.StreamResponse:
        """OpenAI's speech API: binary audio for the input text; bills its characters."""
        body, model, behaviour = await self._scripted(http_request)
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        text = str(body.get("input", ""))
        self._bill(Answer(model, len(text), 0))
        return web.Response(body=speech_audio(text), content_type="audio/mpeg")

    async def _handle(self, http_request: web.Request) -> web.StreamResponse:
        body = await http_request.json()
        model = str(body.get("model", ""))
        received = ReceivedRequest(model, body, dict(http_request.headers), time.time())
        behaviour = self._next_behaviour(model, received)
        if isinstance(behaviour, Reply) and behaviour.prompt_tokens is None:
            behaviour = replace(behaviour, prompt_tokens=self.prompt_tokens(model, body))
        payload = None
        if isinstance(behaviour, Reply) and not body.get("stream"):
            # The provider generates (and bills) the answer whether or not the client waits for it.
            payload = _completion_payload(body, behaviour)
            usage = payload["usage"]
            self._bill(Answer(model, usage["prompt_tokens"], usage["completion_tokens"]))
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        if payload is None:
            return await _stream_response(http_request, body, behaviour, self._bill)
        return web.json_response(payload, headers=dict(behaviour.headers or {}))


def _error_response(failure: Fail) -> web.Response:
    headers = {}
    if failure.retry_after is not None:
        headers["retry-after"] = str(failure.retry_after)
    error_type = "rate_limit_error" if failure.status == 429 else "server_error"
    payload = {"error": {"message": failure.message, "type": error_type, "code": failure.status}}
    return web.json_response(payload, status=failure.status, headers=headers)


def _completion_tokens_text(reply: Reply) -> list[str]:
    if reply.text is not None:
        words = reply.text.split()
        return [w if i == 0 else f" {w}" for i, w in enumerate(words)]
    return [f"tok{i}" if i == 0 else f" tok{i}" for i in range(reply.completion_tokens)]


def _usage(body: dict[str, Any], reply: Reply, text_tokens: int) -> dict[str, Any]:
    prompt_tokens = reply.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = count_prompt_tokens(body.get("messages") or [])
    details = dict(reply.usage_details or {})
    reasoning = int((details.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    completion_tokens = text_tokens + reasoning
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        **details,
    }


def _served_tier(body: Mapping[str, Any], reply: Reply) -> str | None:
    """The ``service_tier`` an answer reports: the scripted one, else the request's (``auto`` served as ``default``)."""
    if reply.service_tier is not None:
        return reply.service_tier
    requested = body.get("service_tier")
    if not isinstance(requested, str):
        return None
    return "default" if requested == "auto" else requested


def _completion_payload(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    pieces = _completion_tokens_text(reply)
    payload = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces)},
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": _usage(body, reply, len(pieces)),
    }
    tier = _served_tier(body, reply)
    if tier is not None:
        payload["service_tier"] = tier
    return payload


async def _stream_response(
    http_request: web.Request, body: dict[str, Any], reply: Reply, bill: Callable[[Answer], None]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream", **(reply.headers or {})})
    await response.prepare(http_request)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    model = body.get("model", "")
    tier = _served_tier(body, reply)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if tier is not None:  # OpenAI writes it on every chunk
            payload["service_tier"] = tier
        return payload

    async def send(payload: dict[str, Any] | str) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        await response.write(f"data: {data}\n\n".encode())

    pieces = _completion_tokens_text(reply)
    sent = 0
    try:
        await send(chunk({"role": "assistant", "content": ""}))
        async for piece in paced(http_request, pieces, reply.cut_after, reply.chunk_delay):
            await send(chunk({"content": piece}))
            sent += 1
        if sent < len(pieces):
            return response  # cut: no terminating chunk
        await send(chunk({}, reply.finish_reason))
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if wants_usage and reply.include_usage:
            usage_chunk = chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _usage(body, reply, len(pieces))
            await send(usage_chunk)
        await send("[DONE]")
        await response.write_eof()
        return response
    finally:
        # Billed for what was generated, also when the client went away mid-stream.
        usage = _usage(body, reply, sent)
        bill(Answer(str(model), usage["prompt_tokens"], usage["completion_tokens"], complete=sent == len(pieces)))


# ---- Anthropic's Messages API ----------------------------------------------------------------
def _anthropic_usage(body: dict[str, Any], reply: Reply, output_tokens: int) -> dict[str, Any]:
    """Anthropic counts cache writes and reads apart from ``input_tokens``."""
    details = dict(reply.usage_details or {})
    creation = int(details.get("cache_creation_input_tokens") or 0)
    read = int(details.get("cache_read_input_tokens") or 0)
    prompt_tokens = reply.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = count_prompt_tokens(body.get("messages") or []) + creation + read
    usage: dict[str, Any] = {
        "input_tokens": prompt_tokens - creation - read,
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read,
        "output_tokens": output_tokens,
    }
    if "cache_creation" in details:
        usage["cache_creation"] = details["cache_creation"]
    return usage


def _anthropic_message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    pieces = _completion_tokens_text(reply)
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": [{"type": "text", "text": "".join(pieces)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(body, reply, len(pieces)),
    }


def _anthropic_prompt_tokens(usage: dict[str, Any]) -> int:
    return int(usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"])


async def _anthropic_stream(
    http_request: web.Request, body: dict[str, Any], reply: Reply, bill: Callable[[Answer], None]
) -> web.StreamResponse:
    """Anthropic's events: ``message_start`` (input usage), text deltas, ``message_delta`` (output usage).

    ``cut_after`` drops the connection after that many deltas; ``chunk_delay`` spaces them.
    Billed for the deltas sent, also when the client went away mid-stream.
    """
    response = web.StreamResponse(headers={"content-type": "text/event-stream", **(reply.headers or {})})
    await response.prepare(http_request)
    pieces = _completion_tokens_text(reply)

    async def send(event: str, payload: dict[str, Any]) -> None:
        await response.write(f"event: {event}\ndata: {json.dumps({'type': event, **payload})}\n\n".encode())

    message = _anthropic_message(body, reply)
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    sent = 0
    try:
        await send("message_start", {"message": start})
        await send("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        async for piece in paced(http_request, pieces, reply.cut_after, reply.chunk_delay):
            await send("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
            sent += 1
        if sent < len(pieces):
            return response  # cut: no closing events
    finally:
        model = str(body.get("model", ""))
        bill(Answer(model, _anthropic_prompt_tokens(usage), sent, complete=sent == len(pieces)))
    await send("content_block_stop", {"index": 0})
    delta_usage = {"output_tokens": usage["output_tokens"]}
    await send("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": delta_usage})
    await send("message_stop", {})
    await response.write_eof()
    return response
