"""Legacy text completions: ``Router.atext_completion``; ``prompt`` in, ``choices[].text`` out.

A list of prompts gets one completion (``n`` of them) per prompt, each up to ``max_tokens``.
LiteLLM 1.106's sync ``Router.text_completion`` passes the group name on as the model and
fails for every deployment (nor does it retry or fall back), so the sync call runs
``Router.atext_completion`` on costrouter's loop thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from costrouter.config.budgets import PromptEstimate
from costrouter.pricing.request_checks import check_count
from costrouter.pricing.tokens import completions, count_text_tokens, requested_output_tokens
from costrouter.routing.operations.base import Operation, Reading


def _prompts(request: Mapping[str, Any]) -> list[str]:
    prompt = request.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and all(isinstance(item, str) for item in prompt):
        return list(prompt)
    raise TypeError(f"prompt must be a string or a list of strings, not {type(prompt).__name__}")


def check_text_completion(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> None:
    """``prompt`` a string or a list of strings; ``max_tokens`` and ``n`` counts; no ``stream``.

    A text-completion stream's chunks carry ``choices[].text``, which no tally reads yet: it
    would be charged its prompt alone, so it is refused rather than under-charged.
    """
    if request.get("stream"):
        raise ValueError("route_text_completion does not route streams yet; call it without stream=True")
    _prompts(request)
    for name in ("max_tokens", "n"):
        check_count(name, request.get(name))


def text_completion_tokens(
    _messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any], _: PromptEstimate
) -> int:
    """Every prompt's tokens (no chat template)."""
    return sum(count_text_tokens(prompt) for prompt in _prompts(request))


def read_text_completion(response: Any) -> Reading:
    """Usage, finish reasons and the first text of a ``TextCompletionResponse``."""
    usage = getattr(response, "usage", None)
    choices = getattr(response, "choices", None) or []
    return Reading(
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        usage=usage,
        finish_reasons=tuple(str(c.finish_reason) for c in choices if getattr(c, "finish_reason", None)),
        output_text=getattr(choices[0], "text", None) if choices else None,
    )


TEXT_COMPLETION = Operation(
    name="text_completion",
    genai_name="text_completion",
    method="text_completion",
    modes=frozenset({"completion", "chat"}),
    output_arg="max_tokens",
    check=check_text_completion,
    prompt_tokens=text_completion_tokens,
    requested_output=requested_output_tokens,
    read=read_text_completion,
    output_count=lambda request: completions(request) * len(_prompts(request)),
    sync_through_loop=True,
)
"""The text-completion operation: ``route_text_completion``."""
