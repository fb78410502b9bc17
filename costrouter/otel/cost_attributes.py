"""Span attributes and metric points of a call's token details and cost components.

Plain functions over :class:`~costrouter.cost.CostBreakdown` and
:class:`~costrouter.cost.SettledCost`; :mod:`costrouter.telemetry` writes what they return.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.util.types import AttributeValue

from costrouter.money import ATTOS_PER_USD, attos_to_usd
from costrouter.otel import semconv as sc
from costrouter.pricing.cost import COMPONENTS, CostBreakdown, SettledCost

OPENINFERENCE_COST: Final = {  # what breakdown_attributes sums into each of these
    sc.LLM_COST_PROMPT_INPUT: ("input",),
    sc.LLM_COST_PROMPT_CACHE_READ: ("cache_read",),
    sc.LLM_COST_PROMPT_CACHE_WRITE: ("cache_creation", "cache_creation_1h"),
    sc.LLM_COST_PROMPT_AUDIO: ("input_audio",),
    sc.LLM_COST_COMPLETION_OUTPUT: ("output",),
    sc.LLM_COST_COMPLETION_REASONING: ("reasoning",),
    sc.LLM_COST_COMPLETION_AUDIO: ("output_audio",),
}
_TOKEN_COMPONENTS: Final = tuple(name for name in COMPONENTS if name not in sc.USAGE_UNIT_ATTRIBUTES)
"""The components every call writes (units are written only when the call is billed by them)."""
_TOKEN_COMPONENT_ATTRIBUTES: Final = tuple(f"{sc.ROUTER_COST_PREFIX}{name}" for name in _TOKEN_COMPONENTS)


def breakdown_attributes(breakdown: CostBreakdown) -> dict[str, AttributeValue]:
    """Token details (GenAI and OpenInference names) and every cost component."""
    usage = breakdown.usage
    attributes: dict[str, AttributeValue] = {
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: usage.cache_read_tokens,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: usage.cache_creation_tokens,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: usage.reasoning_tokens,
        sc.LLM_TOKEN_COUNT_PROMPT_CACHE_READ: usage.cache_read_tokens,
        sc.LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE: usage.cache_creation_tokens,
        sc.LLM_TOKEN_COUNT_PROMPT_AUDIO: usage.prompt_audio_tokens,
        sc.LLM_TOKEN_COUNT_COMPLETION_REASONING: usage.reasoning_tokens,
        sc.LLM_TOKEN_COUNT_COMPLETION_AUDIO: usage.completion_audio_tokens,
    }
    for unit, count in usage.units.items():
        attributes[sc.USAGE_UNIT_ATTRIBUTES[unit]] = int(count) if count == int(count) else float(count)
    attos = breakdown.components_attos
    # attos_to_usd, inlined: these 18 attributes are written on every call.
    attributes.update(
        zip(_TOKEN_COMPONENT_ATTRIBUTES, [attos[name] / ATTOS_PER_USD for name in _TOKEN_COMPONENTS], strict=True)
    )
    if usage.service_tier is not None:
        attributes[sc.ROUTER_SERVICE_TIER] = usage.service_tier
    for name in usage.units:  # a unit the call is billed by (none for a token call)
        attributes[f"{sc.ROUTER_COST_PREFIX}{name}"] = attos_to_usd(attos[name])
    # OpenInference's cost details, summed from the components as OPENINFERENCE_COST names them
    attributes[sc.LLM_COST_PROMPT_INPUT] = attos["input"] / ATTOS_PER_USD
    attributes[sc.LLM_COST_PROMPT_CACHE_READ] = attos["cache_read"] / ATTOS_PER_USD
    attributes[sc.LLM_COST_PROMPT_CACHE_WRITE] = (attos["cache_creation"] + attos["cache_creation_1h"]) / ATTOS_PER_USD
    attributes[sc.LLM_COST_PROMPT_AUDIO] = attos["input_audio"] / ATTOS_PER_USD
    attributes[sc.LLM_COST_COMPLETION_OUTPUT] = attos["output"] / ATTOS_PER_USD
    attributes[sc.LLM_COST_COMPLETION_REASONING] = attos["reasoning"] / ATTOS_PER_USD
    attributes[sc.LLM_COST_COMPLETION_AUDIO] = attos["output_audio"] / ATTOS_PER_USD
    return attributes


def settled_attributes(settled: SettledCost) -> dict[str, AttributeValue]:
    """Which cost settled the budget, both figures, and whether they disagree."""
    attributes: dict[str, AttributeValue] = {
        sc.ROUTER_COST_SOURCE: settled.source,
        sc.ROUTER_COST_MISMATCH: settled.mismatch,
    }
    if settled.computed_usd is not None:
        attributes[sc.ROUTER_COST_COMPUTED_USD] = settled.computed_usd
    if settled.provider_usd is not None:
        attributes[sc.ROUTER_COST_PROVIDER_USD] = settled.provider_usd
    return attributes


def detail_token_counts(breakdown: CostBreakdown) -> dict[str, int]:
    """Token-usage histogram points beyond ``input``/``output``, by ``gen_ai.token.type`` (non-zero only)."""
    usage = breakdown.usage
    counts = {
        sc.TOKEN_TYPE_CACHE_READ: usage.cache_read_tokens,
        sc.TOKEN_TYPE_CACHE_CREATION: usage.cache_creation_tokens,
        sc.TOKEN_TYPE_REASONING: usage.reasoning_tokens,
    }
    return {token_type: count for token_type, count in counts.items() if count}
