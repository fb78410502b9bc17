"""What a call costs when it is cancelled, interrupted or timed out after a provider got it.

Providers bill what they generated, whether or not the caller waited for it. A call
that ends by ``asyncio.CancelledError`` (``asyncio.wait_for``, ``task.cancel()``),
``KeyboardInterrupt`` or a timeout (LiteLLM's ``Timeout``) after an attempt started
may have been billed in full, and nothing tells how much. The policy's
``defaults.on_interrupted`` decides:

* ``charge_hold`` (the default, never under-counts): charge the call's hold once per
  attempt that may have reached a provider (the attempt still open when the call was
  interrupted, and every attempt that timed out), ``router.usage.source=estimated``;
* ``release``: charge only what was observed (nothing for a plain call, what a stream
  delivered for a stream).

An interruption before any attempt started (``log_pre_api_call`` never fired), or a
timeout while connecting (the request never left this machine), charges nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Final, Literal

import aiohttp
import httpx
from litellm.exceptions import Timeout as LiteLLMTimeout
from opentelemetry.trace import Span

from costrouter.budget.reserving import Reservation
from costrouter.money import units_to_usd
from costrouter.otel import semconv as sc
from costrouter.otel.attempts import Attempt
from costrouter.otel.outcome import Outcome

logger = logging.getLogger("costrouter.budget")

OnInterrupted = Literal["charge_hold", "release"]

_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, aiohttp.ClientConnectorError, ConnectionRefusedError)
_TIMEOUT_NAMES: Final = frozenset({"Timeout", "APITimeoutError", "TimeoutError", "ReadTimeout"})
_CHAIN_DEPTH: Final = 16


def is_interruption(error: BaseException) -> bool:
    """Cancelled, interrupted or timed out: the provider may have received and billed the request."""
    return not isinstance(error, Exception) or isinstance(error, (LiteLLMTimeout, TimeoutError))


def never_sent(error: BaseException) -> bool:
    """Whether a connect failure is in the error's cause chain (the request never left)."""
    seen: BaseException | None = error
    for _ in range(_CHAIN_DEPTH):
        if seen is None:
            return False
        if isinstance(seen, _NOT_SENT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reached_provider(attempts: Sequence[Attempt]) -> int:
    """Attempts that may have been billed: still open when the call ended, or timed out."""
    return sum(1 for a in attempts if a.outcome == "pending" or a.error_type in _TIMEOUT_NAMES)


def interrupted_call_charge(
    error: BaseException, attempts: Sequence[Attempt], reservation: Reservation | None, mode: OnInterrupted
) -> int | None:
    """Micro-dollars to charge a call that failed with ``error`` (``None``: the observed cost)."""
    if mode != "charge_hold" or reservation is None or reservation.outcome == "rejected":
        return None
    if not is_interruption(error) or never_sent(error):
        return None
    reached = reached_provider(attempts)
    return reservation.amount_units * reached if reached else None


def interrupted_stream_charge(
    error: BaseException | None, observed_units: int, reservation: Reservation | None, mode: OnInterrupted
) -> int | None:
    """Micro-dollars to charge a stream that ended with ``error`` (``None``: what it delivered)."""
    if mode != "charge_hold" or error is None or reservation is None or not is_interruption(error):
        return None
    return max(reservation.amount_units, observed_units)


def charge_estimated(outcome: Outcome, span: Span, units: int, mode: OnInterrupted) -> Outcome:
    """``outcome`` charged ``units`` as an estimate, with a span event and a log line saying why."""
    error = outcome.error
    reason = type(error).__name__ if error is not None else "interrupted"
    span.add_event(
        sc.EVENT_INTERRUPTED_CHARGE,
        {"charged_usd": units_to_usd(units), "reason": reason, "on_interrupted": mode},
    )
    logger.warning(
        "costrouter: call interrupted by %s after a provider may have received it; charged $%.6f (the hold, "
        "on_interrupted: %s)",
        reason,
        units_to_usd(units),
        mode,
    )
    cost = units_to_usd(units)
    return replace(
        outcome,
        cost_usd=cost,
        cost_units=units,
        prompt_cost_usd=None,
        completion_cost_usd=None,
        usage_source="estimated",
    )
