"""Plausibility bounds on what a provider reports: no usage figure or amount is trusted blindly.

A provider, a proxy or a self-hosted server may answer anything: ``completion_tokens: 1e20``,
a negative count, ``NaN``, a string, a cost of a billion dollars. Before a figure reaches a
counter, a learned ratio or a span it is checked here:

* every token figure of the usage block (``prompt_tokens``, ``completion_tokens`` and each
  ``*tokens*`` detail) is a non-negative integer no larger than the deployment's context
  window x :data:`CONTEXT_MARGIN` (the completion side: its largest output x the margin x the
  choices asked for); a model whose window LiteLLM does not know counts
  :data:`MAX_CONTEXT_TOKENS`;
* every unit count (search units, audio seconds, characters, images, pixels) is finite,
  non-negative and at most :data:`MAX_UNITS`;
* an amount (the computed cost, the provider's own figure) is finite, non-negative and at most
  :data:`~costrouter.money.MAX_CALL_USD`.

A call whose answer fails a check is charged its hold (see :func:`implausible_charge_units`),
and its span says which figures failed (``router.usage.implausible``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import litellm

from costrouter.money import MAX_CALL_UNITS, MAX_CALL_USD

CONTEXT_MARGIN: Final = 2
"""How far past a deployment's context window (or largest output) a reported count may go."""
MAX_CONTEXT_TOKENS: Final = 10_000_000
"""The context window assumed for a model LiteLLM does not know: the largest any model offers (10M)."""
MAX_UNITS: Final = Decimal(1_000_000_000)
"""The most of one unit (seconds, characters, pixels …) one call may report."""
_MAX_DEPTH: Final = 4


@dataclass(frozen=True)
class UsageLimits:
    """The largest plausible prompt and completion token counts of one deployment's answer."""

    prompt_tokens: int
    completion_tokens: int

    def for_choices(self, choices: int) -> UsageLimits:
        """The limits of a call that asks for ``choices`` completions (each may use the whole output)."""
        return UsageLimits(self.prompt_tokens, self.completion_tokens * max(1, choices))


def _model_window(model: str) -> tuple[int | None, int | None]:
    try:
        info = litellm.get_model_info(model)
    except Exception:  # LiteLLM raises a bare Exception for unmapped models
        return None, None
    window = info.get("max_input_tokens") or info.get("max_tokens")
    output = info.get("max_output_tokens") or info.get("max_tokens")
    return (int(window) if window else None), (int(output) if output else None)


def deployment_limits(model: str, max_output_tokens: int | None) -> UsageLimits:
    """The limits of a deployment of LiteLLM ``model`` whose largest output is ``max_output_tokens``."""
    window, map_output = _model_window(model)
    context = window or MAX_CONTEXT_TOKENS
    output = max_output_tokens or map_output or context
    return UsageLimits(context * CONTEXT_MARGIN, max(output, 1) * CONTEXT_MARGIN)


def choices_asked(request: Mapping[str, Any]) -> int:
    """The completions a request asked for (``n``), 1 when it says nothing valid (never raises)."""
    n = request.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


DEFAULT_LIMITS: Final = UsageLimits(MAX_CONTEXT_TOKENS * CONTEXT_MARGIN, MAX_CONTEXT_TOKENS * CONTEXT_MARGIN)
"""The limits of an answer whose deployment is unknown."""


def plausible_count(value: object, limit: int) -> bool:
    """Whether ``value`` is a token count: a non-negative integer (an integral float too) up to ``limit``."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return False
    return 0 <= value <= limit


def bounded_count(value: object, limit: int) -> int | None:
    """``value`` as a count held within ``[0, limit]`` (``None`` when it is no number at all)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return int(min(max(value, 0), limit))


def _bad_token_fields(block: Any, limit: int, depth: int = 0) -> list[str]:
    """The ``*tokens*`` fields of a usage block and its detail blocks that are no count up to ``limit``.

    A block is a mapping or an object with ``__dict__`` (LiteLLM's ``Usage``); the common field,
    an ``int`` in range, is checked first (this runs on every call).
    """
    if depth > _MAX_DEPTH or block is None:
        return []
    items: Iterable[tuple[Any, Any]]
    if isinstance(block, dict):
        items = block.items()
    elif hasattr(block, "__dict__"):
        items = vars(block).items()
    elif isinstance(block, Mapping):
        items = block.items()
    else:
        return []
    bad: list[str] = []
    for name, value in items:
        if value.__class__ is int:
            if (value < 0 or value > limit) and "token" in name:
                bad.append(str(name))
        elif value is None or (isinstance(name, str) and name.startswith("_")):
            continue
        elif isinstance(value, (dict, Mapping)) or hasattr(value, "__dict__"):
            bad += _bad_token_fields(value, limit, depth + 1)
        elif "token" in str(name) and not plausible_count(value, limit):
            bad.append(str(name))
    return bad


def implausible_figures(
    usage: Any,
    prompt_tokens: object,
    completion_tokens: object,
    units: Mapping[str, Decimal],
    limits: UsageLimits,
) -> tuple[str, ...]:
    """The names of the figures of an answer that fail their bound (empty: all plausible)."""
    failed: list[str] = []
    if not plausible_count(prompt_tokens, limits.prompt_tokens):
        failed.append("prompt_tokens")
    if not plausible_count(completion_tokens, limits.completion_tokens):
        failed.append("completion_tokens")
    largest = limits.prompt_tokens + limits.completion_tokens  # a detail or the total: never past both
    failed += [name for name in _bad_token_fields(usage, largest) if name not in failed]
    for name, count in units.items():
        if not (count.is_finite() and Decimal(0) <= count <= MAX_UNITS):
            failed.append(name)
    return tuple(failed)


def plausible_amount_usd(usd: float | None) -> bool:
    """Whether an amount in dollars is finite, non-negative and at most the per-call cap."""
    return usd is None or (math.isfinite(usd) and 0 <= usd <= MAX_CALL_USD)


def implausible_charge_units(hold_units: int | None, bounded_units: int) -> int:
    """What a call whose answer failed a check is charged: its hold, within the per-call cap.

    The hold is the router's own upper bound of the call, already held in every budget, so the
    charge passes no limit the reserve did not allow. A call without a hold (a router without
    budgets) is charged ``bounded_units``: its figures held at their bounds and priced.
    """
    charge = hold_units if hold_units is not None else bounded_units
    return min(max(charge, 0), MAX_CALL_UNITS)
