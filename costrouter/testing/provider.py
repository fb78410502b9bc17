"""A scriptable OpenAI chat-completions server on loopback, for tests and demos.

It speaks enough of the protocol for LiteLLM's ``openai/`` provider: ``POST
/v1/chat/completions`` with JSON or server-sent-event streams, usage blocks, and
the failures real providers produce (429 with ``retry-after``, 500, slow answers,
streams cut in the middle). Each model name has a queue of scripted behaviours and
a default one; every request is counted and kept.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Behaviour", "Fail", "ProviderDouble", "ReceivedRequest", "Reply"]


@dataclass(frozen=True)
class Reply:
    """Answer 200 with ``completion_tokens`` tokens of text.

    ``delay`` seconds pass before the answer (a slow or cold model). For streams,
    ``include_usage=False`` omits the usage chunk even when the client asked for
    it, ``cut_after`` closes the connection after that many content chunks, and
    ``chunk_delay`` seconds pass before each content chunk after the first (a long stream).
    """

    completion_tokens: int = 8
    delay: float = 0.0
    finish_reason: str = "stop"
    include_usage: bool = True
    cut_after: int | None = None
    text: str | None = None
    chunk_delay: float = 0.0


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error status (429, 500, 503 …) after ``delay`` seconds."""

    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    message: str = "scripted failure"


Behaviour = Reply | Fail


@dataclass(frozen=True)
class ReceivedRequest:
    """One request the double received, in arrival order."""

    model: str
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float


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


class ProviderDouble:
    """An OpenAI-compatible HTTP server on 127.0.0.1, run on its own thread.

    >>> with ProviderDouble() as provider:
    ...     provider.script("gpt-x", Fail(429), Reply(completion_tokens=5))
    ...     api_base = provider.base_url   # "http://127.0.0.1:PORT/v1"
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._scripts: dict[str, _Script] = defaultdict(_Script)
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
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

    def reset(self) -> None:
        """Forget every script and every received request."""
        with self._lock:
            self._scripts.clear()
            self._requests.clear()

    # ---- inspection ------------------------------------------------------------------
    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received so far."""
        with self._lock:
            return list(self._requests)

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

    async def _handle(self, http_request: web.Request) -> web.StreamResponse:
        body = await http_request.json()
        model = str(body.get("model", ""))
        received = ReceivedRequest(model, body, dict(http_request.headers), time.time())
        behaviour = self._next_behaviour(model, received)
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        if body.get("stream"):
            return await _stream_response(http_request, body, behaviour)
        return web.json_response(_completion_payload(body, behaviour))


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


def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt_tokens = count_prompt_tokens(body.get("messages") or [])
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _completion_payload(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    pieces = _completion_tokens_text(reply)
    return {
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
        "usage": _usage(body, len(pieces)),
    }


async def _stream_response(http_request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(http_request)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    model = body.get("model", "")

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    async def send(payload: dict[str, Any] | str) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        await response.write(f"data: {data}\n\n".encode())

    pieces = _completion_tokens_text(reply)
    await send(chunk({"role": "assistant", "content": ""}))
    for index, piece in enumerate(pieces):
        if reply.cut_after is not None and index >= reply.cut_after:
            # Drop the connection without the terminating chunk, as a crashed upstream does.
            transport = http_request.transport
            if transport is not None:
                transport.abort()
            return response
        if index and reply.chunk_delay:
            await asyncio.sleep(reply.chunk_delay)
        await send(chunk({"content": piece}))
    await send(chunk({}, reply.finish_reason))
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if wants_usage and reply.include_usage:
        usage_chunk = chunk({})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = _usage(body, len(pieces))
        await send(usage_chunk)
    await send("[DONE]")
    await response.write_eof()
    return response
