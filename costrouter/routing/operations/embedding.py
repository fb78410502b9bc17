"""Embeddings: ``Router.embedding``; input tokens only, no output to cap.

The estimate counts every input string with the cl100k tokenizer (a list of token ids
counts its length), then applies the same ratio and safety factor as a chat prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from costrouter.config.budgets import PromptEstimate
from costrouter.pricing.tokens import count_text_tokens
from costrouter.routing.operations.base import Operation, Reading


def _inputs(request: Mapping[str, Any]) -> list[Any]:
    value = request.get("input")
    if isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], int)):
        return [value]
    if isinstance(value, list):
        return value
    raise TypeError(f"input must be a string or a list of strings, not {type(value).__name__}")


def check_embedding(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> None:
    """``input``: a string, a list of strings, or token ids (one list or a list of lists)."""
    for item in _inputs(request):
        if not isinstance(item, str) and not (isinstance(item, list) and all(isinstance(t, int) for t in item)):
            raise TypeError(f"input items must be strings or lists of token ids, not {type(item).__name__}")


def embedding_tokens(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any], _: PromptEstimate) -> int:
    """The tokens of every input (a token-id list counts its length)."""
    return sum(count_text_tokens(item) if isinstance(item, str) else len(item) for item in _inputs(request))


def read_embedding(response: Any) -> Reading:
    """An ``EmbeddingResponse`` reports prompt tokens only."""
    usage = getattr(response, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", None)
    return Reading(
        prompt_tokens=prompt_tokens,
        completion_tokens=0 if prompt_tokens is not None else None,
        usage={"prompt_tokens": prompt_tokens or 0, "completion_tokens": 0},
    )


EMBEDDING = Operation(
    name="embedding",
    genai_name="embeddings",
    method="embedding",
    modes=frozenset({"embedding"}),
    output_arg=None,
    check=check_embedding,
    prompt_tokens=embedding_tokens,
    requested_output=lambda _request: 0,
    read=read_embedding,
)
"""The embedding operation: ``route_embedding``."""
