"""Speech: ``Router.aspeech``; ``input`` text in, binary audio out.

Priced per character of the input (``input_cost_per_character``): the estimate is exact,
``len(input)``, and so is the settle (the provider bills every character; LiteLLM's own
figure leaves whitespace out). The response is LiteLLM's ``HttpxBinaryResponseContent``,
returned unchanged. LiteLLM 1.106's Router speaks in async only, and reads the whole body
before it returns (no streamed audio through the Router).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from costrouter.config.budgets import Defaults
from costrouter.pricing.tokens import count_text_tokens
from costrouter.routing.operations.base import Operation, Reading, UsageBound


def _input(request: Mapping[str, Any]) -> str:
    text = request.get("input")
    if not isinstance(text, str):
        raise TypeError(f"input must be a string, not {type(text).__name__}")
    return text


def check_speech(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> None:
    """``input``: the text to speak."""
    _input(request)


def speech_bound(request: Mapping[str, Any], _defaults: Defaults) -> UsageBound:
    """Every character of the input (and its tokens, for a model priced per token)."""
    text = _input(request)
    return UsageBound(prompt_tokens=count_text_tokens(text), units={"characters": Decimal(len(text))})


def speech_units(request: Mapping[str, Any], _response: Any) -> dict[str, Decimal]:
    """The characters of the input."""
    return {"characters": Decimal(len(_input(request)))}


def read_speech(_response: Any) -> Reading:
    """Audio bytes carry no usage."""
    return Reading(prompt_tokens=None, completion_tokens=None, usage=None)


SPEECH = Operation(
    name="speech",
    genai_name="speech",
    method="speech",
    sync_through_loop=True,
    modes=frozenset({"audio_speech"}),
    output_arg=None,
    check=check_speech,
    prompt_tokens=lambda _messages, _request, _settings: 0,
    requested_output=lambda _request: 0,
    read=read_speech,
    usage_bound=speech_bound,
    units=speech_units,
)
"""The speech operation: ``aroute_speech``."""
