"""OpenAI's Responses API: ``Router.responses``; ``input`` and ``instructions`` in, ``output`` out.

The estimate reads ``input`` (a string, or a list of message items whose content the
chat counter counts; other items as the JSON sent) and ``instructions`` as chat
messages, with tools as for chat; the output cap is ``max_output_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import litellm

from costrouter.config.budgets import PromptEstimate
from costrouter.pricing.request_checks import check_count
from costrouter.pricing.service_tiers import reported_tier
from costrouter.pricing.tokens import count_text_tokens, prompt_token_count
from costrouter.routing.operations.base import Operation, Reading

_TEXT_PARTS = frozenset({"input_text", "output_text"})


def _as_messages(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    value = request.get("input")
    messages: list[dict[str, Any]] = []
    if isinstance(request.get("instructions"), str):
        messages.append({"role": "system", "content": request["instructions"]})
    if isinstance(value, str):
        return [*messages, {"role": "user", "content": value}]
    if not isinstance(value, list):
        raise TypeError(f"input must be a string or a list of items, not {type(value).__name__}")
    for item in value:
        if not isinstance(item, Mapping):
            raise TypeError(f"input items must be mappings, not {type(item).__name__}")
        content = item.get("content")
        if isinstance(content, list):
            content = [
                {"type": "text", "text": part["text"]} if part.get("type") in _TEXT_PARTS else dict(part)
                for part in content
            ]
        messages.append({**item, "content": content})
    return messages


def check_responses(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> None:
    """``input`` a string or a list of mappings, ``max_output_tokens`` a count."""
    _as_messages(request)
    check_count("max_output_tokens", request.get("max_output_tokens"))


def responses_tokens(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any], s: PromptEstimate) -> int:
    """The input and instructions as chat messages, plus tools and the text format."""
    others = {key: value for key, value in request.items() if key in ("tools", "tool_choice")}
    tokens = prompt_token_count(_as_messages(request), others, s)
    text_format = request.get("text")
    return tokens + (count_text_tokens(str(text_format)) if text_format else 0)


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """A Responses ``usage`` (``input_tokens``, ``output_tokens`` + details) in chat terms."""
    if usage is None:
        return None

    def get(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)

    input_details = get(usage, "input_tokens_details")
    output_details = get(usage, "output_tokens_details")
    return {
        "prompt_tokens": int(get(usage, "input_tokens") or 0),
        "completion_tokens": int(get(usage, "output_tokens") or 0),
        "prompt_tokens_details": {"cached_tokens": int(get(input_details, "cached_tokens") or 0)},
        "completion_tokens_details": {"reasoning_tokens": int(get(output_details, "reasoning_tokens") or 0)},
    }


def output_text(response: Any) -> str | None:
    """The text of a Responses ``response``'s message items."""
    texts = [
        str(getattr(part, "text", None) or (part.get("text") if isinstance(part, Mapping) else "") or "")
        for item in getattr(response, "output", None) or []
        for part in (getattr(item, "content", None) or (item.get("content") if isinstance(item, Mapping) else []) or [])
    ]
    return "".join(texts) or None


def read_responses(response: Any) -> Reading:
    """Usage, status and text of a ``ResponsesAPIResponse``."""
    usage = chat_usage(getattr(response, "usage", None))
    status = getattr(response, "status", None)
    return Reading(
        prompt_tokens=usage["prompt_tokens"] if usage else None,
        completion_tokens=usage["completion_tokens"] if usage else None,
        usage=usage,
        finish_reasons=(str(status),) if status else (),
        output_text=output_text(response),
    )


class ResponsesTally:
    """What a Responses stream delivered: text deltas, and usage from ``response.completed``."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.usage: Any = None
        self.finish_reasons: list[str] = []
        self.response_id: str | None = None
        self.model: str | None = None
        self.service_tier: str | None = None

    def observe(self, event: Any) -> None:
        """Take one event into account."""
        kind = getattr(event, "type", "") or ""
        kind = str(getattr(kind, "value", kind))
        delta = getattr(event, "delta", None)
        if kind.endswith("output_text.delta") and isinstance(delta, str):
            self.parts.append(delta)
        response = getattr(event, "response", None)
        if response is None:
            return
        self.response_id = self.response_id or getattr(response, "id", None)
        self.model = self.model or getattr(response, "model", None)
        self.service_tier = reported_tier(response) or self.service_tier
        usage = chat_usage(getattr(response, "usage", None))
        if usage is not None:
            self.usage = litellm.Usage(**usage)
        status = getattr(response, "status", None)
        if status and status != "in_progress":
            self.finish_reasons = [str(status)]


RESPONSES = Operation(
    name="responses",
    genai_name="generate_content",
    method="responses",
    modes=frozenset({"responses", "chat"}),
    output_arg="max_output_tokens",
    check=check_responses,
    prompt_tokens=responses_tokens,
    requested_output=lambda request: check_count("max_output_tokens", request.get("max_output_tokens")),
    read=read_responses,
    stream_tally=ResponsesTally,
    metadata_arg="litellm_metadata",  # ``metadata`` is a Responses API parameter: it would reach the provider
)
"""The Responses operation: ``route_response``."""
