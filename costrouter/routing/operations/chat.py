"""Chat completions: ``Router.completion``, messages in, choices out."""

from __future__ import annotations

from typing import Any

from costrouter.pricing.request_checks import check_request
from costrouter.pricing.tokens import prompt_token_count, requested_output_tokens
from costrouter.routing.operations.base import Operation, Reading


def read_chat(response: Any) -> Reading:
    """Usage, finish reasons and text of a ``ModelResponse``."""
    usage = getattr(response, "usage", None)
    choices = getattr(response, "choices", None) or []
    output_text = None
    if choices and getattr(choices[0], "message", None) is not None:
        output_text = choices[0].message.content
    return Reading(
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        usage=usage,
        finish_reasons=tuple(str(c.finish_reason) for c in choices if getattr(c, "finish_reason", None)),
        output_text=output_text,
    )


CHAT = Operation(
    name="completion",
    genai_name="chat",
    method="completion",
    modes=frozenset({"chat", "completion", "responses"}),
    output_arg="max_tokens",
    check=check_request,
    prompt_tokens=prompt_token_count,
    requested_output=requested_output_tokens,
    read=read_chat,
    takes_messages=True,
)
"""The chat operation: ``route_completion``."""
