"""Anthropic-native messages: ``Router.aanthropic_messages``; Anthropic's request and response shapes.

The estimate counts ``system`` and ``messages`` with the chat counter (which knows Anthropic's
image, document, thinking and tool blocks) plus tools; the output cap is ``max_tokens``.
LiteLLM 1.106 builds the sync ``Router.anthropic_messages`` from its async wrapper (it returns a
coroutine), so the sync call runs the async one on costrouter's loop thread. A stream's usage
is read from its events (:mod:`costrouter.operations.messages_stream`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from costrouter.config.budgets import PromptEstimate
from costrouter.pricing.request_checks import check_count, check_messages
from costrouter.pricing.tokens import prompt_token_count, requested_output_tokens
from costrouter.routing.operations.base import Operation, Reading
from costrouter.routing.operations.messages_stream import MessagesTally


def _as_chat(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = [dict(message) for message in request.get("messages") or []]
    system = request.get("system")
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    return messages


def check_anthropic(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> None:
    """``messages`` as for chat, ``max_tokens`` a count."""
    check_messages(_as_chat(request))
    check_count("max_tokens", request.get("max_tokens"))


def anthropic_tokens(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any], s: PromptEstimate) -> int:
    """``system`` and ``messages`` as chat messages, plus tools."""
    others = {key: value for key, value in request.items() if key in ("tools", "tool_choice")}
    return prompt_token_count(_as_chat(request), others, s)


def chat_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's usage in LiteLLM's chat terms: ``prompt_tokens`` holds the cache tokens."""
    read = int(usage.get("cache_read_input_tokens") or 0)
    created = int(usage.get("cache_creation_input_tokens") or 0)
    return {
        "prompt_tokens": int(usage.get("input_tokens") or 0) + read + created,
        "completion_tokens": int(usage.get("output_tokens") or 0),
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": created,
    }


def read_anthropic(response: Any) -> Reading:
    """LiteLLM returns Anthropic's message as a dict, its hidden params under ``_hidden_params``."""
    body: Mapping[str, Any] = response if isinstance(response, Mapping) else {}
    usage = body.get("usage")
    chat = chat_usage(usage) if isinstance(usage, Mapping) else None
    texts = [str(block.get("text", "")) for block in body.get("content") or [] if block.get("type") == "text"]
    hidden = body.get("_hidden_params")
    return Reading(
        prompt_tokens=chat["prompt_tokens"] if chat else None,
        completion_tokens=chat["completion_tokens"] if chat else None,
        usage=chat,
        finish_reasons=(str(body["stop_reason"]),) if body.get("stop_reason") else (),
        output_text="".join(texts) or None,
        hidden_params=hidden if isinstance(hidden, Mapping) else None,
        response_model=body.get("model"),
        response_id=body.get("id"),
    )


MESSAGES = Operation(
    name="messages",
    genai_name="chat",
    method="anthropic_messages",
    modes=frozenset({"chat", "messages"}),
    output_arg="max_tokens",
    check=check_anthropic,
    prompt_tokens=anthropic_tokens,
    requested_output=requested_output_tokens,
    read=read_anthropic,
    metadata_arg="litellm_metadata",  # ``metadata`` is an Anthropic API parameter: it would reach the provider
    stream_tally=MessagesTally,
    sync_through_loop=True,
)
"""The Anthropic-messages operation: ``route_messages``."""
