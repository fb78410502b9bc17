"""What an Anthropic ``/v1/messages`` stream delivered, read from its server-sent events.

LiteLLM passes Anthropic's stream on as raw SSE bytes, cut wherever the network cut them
(one chunk may hold several events, or part of one). ``message_start`` reports the input
(and cache) tokens, ``message_delta`` the output tokens so far; a stream that ended before
its ``message_delta`` is billed the reported input and the output it delivered, counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from costrouter.pricing.tokens import count_text_tokens

_EVENT_END: Final = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_GENERATED: Final = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}
"""The delta kinds that carry generated tokens, and the field that holds them."""


@dataclass(frozen=True)
class MessagesUsage:
    """A stream's usage in LiteLLM's chat terms (``prompt_tokens`` holds the cache tokens)."""

    prompt_tokens: int
    completion_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation: Mapping[str, Any] | None = None
    """Anthropic's split of the cache writes by lifetime, when it sent one."""


def sse_events(buffer: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """The complete events in ``buffer`` (their JSON data) and the incomplete rest."""
    *blocks, rest = _EVENT_END.split(buffer)
    events: list[dict[str, Any]] = []
    for block in blocks:
        lines = block.decode("utf-8", errors="replace").splitlines()
        data = "\n".join(line[5:].removeprefix(" ") for line in lines if line.startswith("data:"))
        try:
            event = json.loads(data) if data else None
        except json.JSONDecodeError:
            continue  # a keep-alive or a provider's own marker: no usage in it
        if isinstance(event, dict):
            events.append(event)
    return events, rest


class MessagesTally:
    """What an Anthropic stream delivered: text, usage, stop reason, id (see :mod:`costrouter.streaming`)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reasons: list[str] = []
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage_complete = False
        """Whether ``message_delta`` reported the output (else it is counted from the deltas)."""
        self._buffer = b""
        self._generated: list[str] = []
        self._input: dict[str, Any] | None = None
        self._output = 0

    def observe(self, chunk: Any) -> None:
        """Take one chunk into account: SSE bytes (or text), or an already parsed event."""
        if isinstance(chunk, Mapping):
            self._event(chunk)
            return
        if isinstance(chunk, str):
            chunk = chunk.encode()
        if not isinstance(chunk, (bytes, bytearray)):
            return
        events, self._buffer = sse_events(self._buffer + bytes(chunk))
        for event in events:
            self._event(event)

    def _event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), Mapping):
            message = event["message"]
            self.response_id = self.response_id or message.get("id")
            self.model = self.model or message.get("model")
            self._take_usage(message.get("usage"))
        elif kind == "content_block_delta" and isinstance(event.get("delta"), Mapping):
            delta = event["delta"]
            field = _GENERATED.get(str(delta.get("type")))
            text = delta.get(field) if field else None
            if isinstance(text, str):
                self._generated.append(text)
                if field == "text":
                    self.parts.append(text)
        elif kind == "message_delta":
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            if stop_reason:
                self.finish_reasons = [str(stop_reason)]
            if isinstance(event.get("usage"), Mapping) and event["usage"].get("output_tokens") is not None:
                self._take_usage(event["usage"])
                self.usage_complete = True

    def _take_usage(self, usage: Any) -> None:
        if not isinstance(usage, Mapping):
            return
        self._output = int(usage.get("output_tokens") or self._output)
        fields = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation")
        taken = {name: usage[name] for name in fields if usage.get(name) is not None}
        if taken:  # a message_delta may repeat the input usage (cumulative); never a smaller one
            self._input = {**(self._input or {}), **taken}

    @property
    def usage(self) -> MessagesUsage | None:
        """The usage so far; ``None`` while no input is known.

        LiteLLM's bridge from a chat deployment sends ``input_tokens: 0`` in ``message_start``
        and the real count in ``message_delta``: a zero input is not known until then.
        """
        if self._input is None:
            return None
        read = int(self._input.get("cache_read_input_tokens") or 0)
        created = int(self._input.get("cache_creation_input_tokens") or 0)
        if not self.usage_complete and int(self._input.get("input_tokens") or 0) + read + created == 0:
            return None
        output = self._output
        if not self.usage_complete:
            output = max(output, count_text_tokens("".join(self._generated)))
        split = self._input.get("cache_creation")
        return MessagesUsage(
            prompt_tokens=int(self._input.get("input_tokens") or 0) + read + created,
            completion_tokens=output,
            cache_read_input_tokens=read,
            cache_creation_input_tokens=created,
            cache_creation=split if isinstance(split, Mapping) else None,
        )
