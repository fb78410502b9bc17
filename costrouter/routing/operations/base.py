"""The description of one kind of routed call."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from costrouter.config.budgets import Defaults, PromptEstimate
from costrouter.config.image_key import ImageVariant
from costrouter.pricing.tokens import completions


@dataclass(slots=True)
class Reading:
    """What a response (or a finished stream) reports, in chat terms for the price model.

    ``usage`` is a chat-shaped usage block (``prompt_tokens``, ``completion_tokens`` and their
    details) that :func:`costrouter.cost.token_usage` reads, whatever the API called them.
    """

    prompt_tokens: int | None
    completion_tokens: int | None
    usage: Any
    finish_reasons: tuple[str, ...] = ()
    output_text: str | None = None
    hidden_params: Mapping[str, Any] | None = None
    """LiteLLM's hidden params when the response is a plain dict that carries them as a key."""
    response_model: str | None = None
    response_id: str | None = None


@dataclass(frozen=True)
class UsageBound:
    """The most a call priced by units can consume: tokens and units (search units, seconds …)."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    units: Mapping[str, Decimal] = field(default_factory=dict)
    variant: ImageVariant | None = None
    """The images' quality and size when known (else the dearest variant bounds them)."""


@dataclass(frozen=True)
class Operation:
    """How one kind of call is checked, estimated, routed and read.

    ``name`` names the span (``router.<name>/{group}``); ``genai_name`` is its
    ``gen_ai.operation.name``; ``method`` the Router method (``a<method>`` when async);
    ``modes`` the price-map modes of the deployments it may reach. ``output_arg`` is the
    request's output cap (``None``: the call produces no tokens, as an embedding);
    an absent cap is set to the policy's default so the hold stays an upper bound.
    """

    name: str
    genai_name: str
    method: str
    modes: frozenset[str]
    output_arg: str | None
    check: Callable[[Sequence[Mapping[str, Any]], Mapping[str, Any]], None]
    prompt_tokens: Callable[[Sequence[Mapping[str, Any]], Mapping[str, Any], PromptEstimate], int]
    requested_output: Callable[[Mapping[str, Any]], int | None]
    read: Callable[[Any], Reading]
    takes_messages: bool = False
    output_count: Callable[[Mapping[str, Any]], int] = completions
    """How many outputs the call may produce, each up to the output cap (``n`` for chat)."""
    metadata_arg: str = "metadata"
    """The kwarg that carries LiteLLM's metadata (and costrouter's call id) without sending it."""
    stream_tally: Callable[[], Any] | None = None
    """A stream's tally (``observe(chunk)``, ``parts``, ``usage`` …); ``None``: chat chunks."""
    usage_bound: Callable[[Mapping[str, Any], Defaults], UsageBound] | None = None
    """A call priced by units: the most it can consume, in place of the token estimate."""
    units: Callable[[Mapping[str, Any], Any], Mapping[str, Decimal]] | None = None
    """The units a finished call consumed, from its request and LiteLLM's response."""
    variant: Callable[[Mapping[str, Any], Any], ImageVariant | None] | None = None
    """The quality and size of the images a finished call produced (image calls)."""
    sync_through_loop: bool = False
    """The sync call awaits the Router's async method on a loop thread (its sync one is unusable)."""

    @property
    def async_method(self) -> str:
        """The Router's async method."""
        return f"a{self.method}"
