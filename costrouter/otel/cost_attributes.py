"""Span attributes and metric points of a call's token details and cost components.

Plain functions over :class:`~costrouter.cost.CostBreakdown` and
:class:`~costrouter.cost.SettledCost`; :mod:`costrouter.telemetry` writes what they return.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.util.types import AttributeValue

from costrouter.money import ATTOS_PER_USD, attos_to_usd
from costrouter.otel import semconv as sc
from costrouter.pricing.cost import CostBreakdown, SettledCost

OPENINFERENCE_COST: Final = {  # what breakdown_attributes sums into each of these
    sc.LLM_COST_PROMPT_INPUT: ("input",),
    sc.LLM_COST_PROMPT_CACHE_READ: ("cache_read",),
    sc.LLM_COST_PROMPT_CACHE_WRITE: ("cache_creation", "cache_creation_1h"),
    sc.LLM_COST_PROMPT_AUDIO: ("input_audio",),
    sc.LLM_COST_COMPLETION_OUTPUT: ("output",),
    sc.LLM_COST_COMPLETION_REASONING: ("reasoning",),
    sc.LLM_COST_COMPLETION_AUDIO: ("output_audio",),
}


def breakdown_attributes(breakdown: CostBreakdown) -> dict[str, AttributeValue]:
    """Token details (GenAI and OpenInference names) and every cost component."""
    usage = breakdown.usage
    attos = breakdown.components_attos
    usd = ATTOS_PER_USD  # attos_to_usd, inlined: these attributes are written on every call
    # The token components' keys are ROUTER_COST_PREFIX + the component, written out (a test holds them to it).
    cache_read, cache_creation, reasoning = usage.cache_read_tokens, usage.cache_creation_tokens, usage.reasoning_tokens
    input_attos, cache_read_attos, output_attos = attos["input"], attos["cache_read"], attos["output"]
    reasoning_attos, input_audio_attos, output_audio_attos = (
        attos["reasoning"],
        attos["input_audio"],
        attos["output_audio"],
    )
    cache_write_attos = attos["cache_creation"] + attos["cache_creation_1h"]
    attributes: dict[str, AttributeValue] = {
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: cache_creation,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: reasoning,
        sc.LLM_TOKEN_COUNT_PROMPT_CACHE_READ: cache_read,
        sc.LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE: cache_creation,
        sc.LLM_TOKEN_COUNT_PROMPT_AUDIO: usage.prompt_audio_tokens,
        sc.LLM_TOKEN_COUNT_COMPLETION_REASONING: reasoning,
        sc.LLM_TOKEN_COUNT_COMPLETION_AUDIO: usage.completion_audio_tokens,
        "router.cost.input": input_attos / usd,
        "router.cost.cache_read": cache_read_attos / usd,
        "router.cost.cache_creation": attos["cache_creation"] / usd,
        "router.cost.cache_creation_1h": attos["cache_creation_1h"] / usd,
        "router.cost.input_audio": input_audio_attos / usd,
        "router.cost.input_image": attos["input_image"] / usd,
        "router.cost.request": attos["request"] / usd,
        "router.cost.output": output_attos / usd,
        "router.cost.reasoning": reasoning_attos / usd,
        "router.cost.output_audio": output_audio_attos / usd,
        "router.cost.output_image": attos["output_image"] / usd,
        # OpenInference's cost details, summed from the components as OPENINFERENCE_COST names them
        sc.LLM_COST_PROMPT_INPUT: input_attos / usd,
        sc.LLM_COST_PROMPT_CACHE_READ: cache_read_attos / usd,
        sc.LLM_COST_PROMPT_CACHE_WRITE: cache_write_attos / usd,
        sc.LLM_COST_PROMPT_AUDIO: input_audio_attos / usd,
        sc.LLM_COST_COMPLETION_OUTPUT: output_attos / usd,
        sc.LLM_COST_COMPLETION_REASONING: reasoning_attos / usd,
        sc.LLM_COST_COMPLETION_AUDIO: output_audio_attos / usd,
    }
    if usage.service_tier is not None:
        attributes[sc.ROUTER_SERVICE_TIER] = usage.service_tier
    for unit, count in usage.units.items():  # a unit the call is billed by (none for a token call)
        attributes[sc.USAGE_UNIT_ATTRIBUTES[unit]] = int(count) if count == int(count) else float(count)
        attributes[f"{sc.ROUTER_COST_PREFIX}{unit}"] = attos_to_usd(attos[unit])
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
    if not (usage.cache_read_tokens or usage.cache_creation_tokens or usage.reasoning_tokens):
        return {}  # the usual call: no dict to build and filter
    counts = {
        sc.TOKEN_TYPE_CACHE_READ: usage.cache_read_tokens,
        sc.TOKEN_TYPE_CACHE_CREATION: usage.cache_creation_tokens,
        sc.TOKEN_TYPE_REASONING: usage.reasoning_tokens,
    }
    return {token_type: count for token_type, count in counts.items() if count}
