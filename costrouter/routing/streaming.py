"""Streams that finish their routed call when they end, are closed early, or fail.

The wrappers only iterate; what a stream delivered is tallied by plain code shared
by the sync and async wrappers, and the call is finished by the router's flow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Literal

from costrouter.config.budgets import PromptEstimate
from costrouter.money import units_to_usd, usd_to_units
from costrouter.ops import Flow, through_cancellation
from costrouter.otel import semconv as sc
from costrouter.otel.outcome import Outcome
from costrouter.pricing.cost import UPSTREAM_USAGE_COST
from costrouter.pricing.fields import hidden_params
from costrouter.pricing.service_tiers import reported_tier
from costrouter.pricing.tokens import count_text_tokens
from costrouter.routing.answers import Observed
from costrouter.routing.calls import CallPlanner
from costrouter.routing.interruptions import charge_estimated, interrupted_stream_charge, is_interruption
from costrouter.routing.routed_call import RoutedCall

StreamEnd = Literal["completed", "closed_early", "failed"]


class StreamTally:
    """What a stream delivered so far: text, usage, finish reasons, ids."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.usage: Any = None
        self.finish_reasons: list[str] = []
        self.response_id: str | None = None
        self.model: str | None = None
        self.service_tier: str | None = None
        self.usage_hidden: dict[str, Any] = {}
        """What the usage chunk's hidden params say of the provider's own cost (LiteLLM 1.109 on)."""

    def observe(self, chunk: Any) -> None:
        """Take one chunk into account."""
        self.response_id = self.response_id or getattr(chunk, "id", None)
        self.model = self.model or getattr(chunk, "model", None)
        self.service_tier = reported_tier(chunk) or self.service_tier
        usage = getattr(chunk, "usage", None)
        if usage is not None and getattr(usage, "completion_tokens", None) is not None:
            self.usage = usage
            hidden = hidden_params(chunk)
            if isinstance(hidden, Mapping) and UPSTREAM_USAGE_COST in hidden:
                self.usage_hidden = {UPSTREAM_USAGE_COST: hidden[UPSTREAM_USAGE_COST]}
        for choice in getattr(chunk, "choices", None) or []:
            delta = getattr(choice, "delta", None)
            content = getattr(delta, "content", None) if delta is not None else None
            if content:
                self.parts.append(content)
            if getattr(choice, "finish_reason", None):
                self.finish_reasons.append(str(choice.finish_reason))


def stream_finish_flow(
    planner: CallPlanner, call: RoutedCall, stream: Any, tally: StreamTally, end: StreamEnd, error: BaseException | None
) -> Flow[None]:
    """Price what the stream delivered and finish the call.

    Usage comes from the provider's final chunk when it sent one; otherwise the
    prompt and the received text are counted (a tally whose ``usage_complete`` is false
    has the reported prompt and the counted output). A stream whose deployment is unknown
    is charged its whole hold, and so is a stream cancelled or interrupted while it
    ran, unless the policy's ``defaults.on_interrupted`` is ``release``.
    """
    hidden = hidden_params(stream) or {}
    deployment_id = hidden.get("model_id")
    text = "".join(tally.parts)
    call.extra_attributes[sc.ROUTER_STREAM_OUTCOME] = end
    if tally.usage is not None:
        prompt_tokens, completion_tokens = tally.usage.prompt_tokens, tally.usage.completion_tokens
        litellm_cost = None  # usage.cost is LiteLLM's own figure or OpenRouter's bill: cost.py tells which
        # A tally may know the input before the output is reported (Anthropic's message_start).
        source = "reported" if getattr(tally, "usage_complete", True) else "counted"
    else:
        prompt_tokens = call.prompt_tokens or call.operation.prompt_tokens(
            call.messages, call.request, PromptEstimate()
        )
        completion_tokens = count_text_tokens(text)
        litellm_cost = None
        source = "counted"
    observed = Observed(
        deployment_id=deployment_id,
        response_model=tally.model,
        response_id=tally.response_id,
        finish_reasons=tuple(tally.finish_reasons),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        litellm_cost=float(litellm_cost) if isinstance(litellm_cost, (int, float)) else None,
        usage_source=source,
        output_text=text,
        usage=tally.usage,
        hidden_params={**hidden, **getattr(tally, "usage_hidden", {})},
        service_tier=getattr(tally, "service_tier", None),
    )
    outcome = planner.answers.outcome_for(call, observed, error)
    if deployment_id not in planner.deployments and call.reservation is not None and error is not None:
        outcome = _with_cost(outcome, call.reservation.amount_units)
    mode = planner.policy.defaults.on_interrupted if planner.policy is not None else "release"
    observed_units = outcome.cost_units if outcome.cost_units is not None else usd_to_units(outcome.cost_usd)
    charge = interrupted_stream_charge(error, observed_units, call.reservation, mode)
    if charge is not None:
        outcome = charge_estimated(outcome, call.span, charge, mode)
    yield from planner.finish_flow(call, outcome)


def _with_cost(outcome: Outcome, units: int) -> Outcome:
    return replace(
        outcome,
        cost_usd=units_to_usd(units),
        cost_units=units,
        prompt_cost_usd=None,
        completion_cost_usd=None,
        breakdown=None,
        settled=None,
    )


class RoutedStream:
    """A sync LiteLLM stream whose routed call ends with the stream.

    Iterate it as LiteLLM's own stream (other attributes pass through); ``close()``
    or leaving a ``with`` block ends the call early and charges what was consumed.
    """

    def __init__(
        self,
        planner: CallPlanner,
        call: RoutedCall,
        stream: Any,
        finish: Callable[[Flow[None]], None],
    ) -> None:
        self._planner = planner
        self._call = call
        self._stream = stream
        self._finish = finish
        self._iterator: Iterator[Any] = iter(stream)
        self._tally = (call.operation.stream_tally or StreamTally)()
        self._done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __iter__(self) -> RoutedStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._iterator)
        except StopIteration:
            self._end("completed", None)
            raise
        except BaseException as exc:
            self._end("failed", exc)
            raise
        self._tally.observe(chunk)
        return chunk

    def _end(self, end: StreamEnd, error: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        self._finish(stream_finish_flow(self._planner, self._call, self._stream, self._tally, end, error))

    def close(self) -> None:
        """Stop reading; the call is charged for what was consumed."""
        if self._done:
            return
        closer = getattr(self._iterator, "close", None)
        if callable(closer):
            closer()
        self._end("closed_early", None)

    def __enter__(self) -> RoutedStream:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and is_interruption(exc) and not self._done:
            # Interrupted between two chunks: charged as an interrupted stream, not a closed one.
            closer = getattr(self._iterator, "close", None)
            if callable(closer):
                closer()
            self._end("failed", exc)
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            self.close()


class AsyncRoutedStream:
    """An async LiteLLM stream whose routed call ends with the stream (see :class:`RoutedStream`)."""

    def __init__(
        self,
        planner: CallPlanner,
        call: RoutedCall,
        stream: Any,
        finish: Callable[[Flow[None]], Awaitable[None]],
        finish_blocking: Callable[[Flow[None]], None],
    ) -> None:
        self._planner = planner
        self._call = call
        self._stream = stream
        self._finish = finish
        self._finish_blocking = finish_blocking
        self._iterator: AsyncIterator[Any] = stream.__aiter__()
        self._tally = (call.operation.stream_tally or StreamTally)()
        self._done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __aiter__(self) -> AsyncRoutedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._iterator.__anext__()
        except StopAsyncIteration:
            await self._end("completed", None)
            raise
        except BaseException as exc:
            await self._end("failed", exc)
            raise
        self._tally.observe(chunk)
        return chunk

    def _flow(self, end: StreamEnd, error: BaseException | None) -> Flow[None]:
        self._done = True
        return stream_finish_flow(self._planner, self._call, self._stream, self._tally, end, error)

    async def _end(self, end: StreamEnd, error: BaseException | None) -> None:
        if not self._done:
            # A cancelled stream must still settle: a second cancellation cannot cut the settle short.
            await through_cancellation(self._finish(self._flow(end, error)))

    async def aclose(self) -> None:
        """Stop reading; the call is charged for what was consumed."""
        if self._done:
            return
        closer = getattr(self._iterator, "aclose", None)
        if callable(closer):
            await closer()
        await self._end("closed_early", None)

    async def __aenter__(self) -> AsyncRoutedStream:
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and is_interruption(exc) and not self._done:
            # Cancelled between two chunks: charged as an interrupted stream, not a closed one.
            closer = getattr(self._iterator, "aclose", None)
            if callable(closer):
                await through_cancellation(closer())
            await self._end("failed", exc)
        await self.aclose()

    def __del__(self) -> None:
        # Garbage-collected unfinished: no loop to await on, so settle synchronously.
        if not getattr(self, "_done", True):
            self._finish_blocking(self._flow("closed_early", None))
