"""The cost of one call, from its usage and its deployment's price: one function for every path.

Responses, streams, cut streams and every split attribute take their numbers from
:func:`compute_cost`. It bills each token kind the way LiteLLM's calculator does
(``generic_cost_per_token``, proved equal by a property test) with integers: every price is an
integer of atto-dollars (:func:`costrouter.money.usd_to_attos`), so each component and the total
are exact integers and the components add up to the total. The counters take the total rounded
half to even to a unit (:func:`costrouter.money.attos_to_units`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, Literal

from costrouter.config import price_fields as pf
from costrouter.config.budgets import CostSettings
from costrouter.config.image_key import ImageVariant
from costrouter.money import ATTOS_PER_USD, attos_to_units, attos_to_usd
from costrouter.pricing.fields import field_of, fields_of
from costrouter.pricing.prices import UNITS, Price

INPUT_COMPONENTS: Final = (
    "input",
    "cache_read",
    "cache_creation",
    "cache_creation_1h",
    "input_audio",
    "input_image",
    "request",
    "search_units",
    "audio_seconds",
    "characters",
)
"""Cost components billed on the prompt side (the per-request fee and the input units count here)."""
OUTPUT_COMPONENTS: Final = ("output", "reasoning", "output_audio", "output_image", "images", "pixels")
"""Cost components billed on the completion side (images and pixels generated count here)."""
COMPONENTS: Final = (*INPUT_COMPONENTS, *OUTPUT_COMPONENTS)

_RATE_OF: Final = {
    "input": pf.INPUT,
    "cache_read": pf.CACHE_READ,
    "cache_creation": pf.CACHE_CREATION,
    "cache_creation_1h": pf.CACHE_CREATION_1H,
    "input_audio": pf.INPUT_AUDIO,
    "input_image": pf.INPUT_IMAGE,
    "request": pf.REQUEST,
    "output": pf.OUTPUT,
    "reasoning": pf.REASONING,
    "output_audio": pf.OUTPUT_AUDIO,
    "output_image": pf.OUTPUT_IMAGE,
    **{name: name for name in UNITS},  # unit prices are keyed by unit (Price.units)
}

CostSource = Literal["computed", "provider"]


@dataclass(slots=True)
class TokenUsage:
    """The token counts of one call as the provider reported them (details are parts of the totals).

    A value: derive a changed one with ``dataclasses.replace``. Not frozen, because it is built on every
    call and a frozen dataclass sets each field through ``object.__setattr__``.
    """

    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_creation_5m_tokens: int | None = None
    cache_creation_1h_tokens: int | None = None
    prompt_text_tokens: int = 0
    prompt_audio_tokens: int = 0
    prompt_image_tokens: int = 0
    reasoning_tokens: int = 0
    completion_text_tokens: int = 0
    completion_audio_tokens: int = 0
    completion_image_tokens: int = 0
    units: Mapping[str, Decimal] = field(default_factory=dict)
    """Units other than tokens (:data:`costrouter.pricing.UNITS`): search units, audio seconds …"""
    image_variant: ImageVariant | None = None
    """The quality and size of the images, for a deployment priced per image by variant."""
    service_tier: str | None = None
    """The service tier the call is billed at (:func:`costrouter.pricing.service_tiers.call_tier`)."""


_field = field_of
_NO_UNITS: Final[Mapping[str, int]] = dict.fromkeys(UNITS, 0)
_NO_FIELDS: Final[Mapping[str, Any]] = {}


def _number(value: Any) -> int:
    """A usage figure as an int: 0 for a missing, zero, non-numeric or boolean one."""
    if value.__class__ is int:  # the usual case, checked first
        return value
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not value:
        return 0
    return int(value)


def _fields_or_none(obj: Any) -> Mapping[str, Any]:
    fields = fields_of(obj)
    return _NO_FIELDS if fields is None else fields


def token_usage(usage: Any) -> TokenUsage:
    """Read a usage block: LiteLLM's ``Usage``, or a provider's own mapping.

    Understands OpenAI's ``prompt_tokens_details.cached_tokens`` and
    ``completion_tokens_details.reasoning_tokens``, Anthropic's ``cache_read_input_tokens`` /
    ``cache_creation_input_tokens`` (``prompt_tokens`` holding them, as LiteLLM reports it),
    audio and image details, and Gemini's thinking tokens (as LiteLLM maps them to reasoning).
    Each block's fields are read through one mapping (:func:`fields_of`), never by raising.
    """
    top = _fields_or_none(usage)
    prompt = _fields_or_none(top.get("prompt_tokens_details"))
    completion = _fields_or_none(top.get("completion_tokens_details"))
    ttl_block = prompt.get("cache_creation_token_details") or top.get("cache_creation")
    ttl = fields_of(ttl_block) if ttl_block is not None else None
    return TokenUsage(
        prompt_tokens=_number(top.get("prompt_tokens")),
        completion_tokens=_number(top.get("completion_tokens")),
        cache_read_tokens=_number(prompt.get("cached_tokens")) or _number(top.get("cache_read_input_tokens")),
        cache_creation_tokens=_number(prompt.get("cache_write_tokens"))
        or _number(prompt.get("cache_creation_tokens"))
        or _number(top.get("cache_creation_input_tokens")),
        cache_creation_5m_tokens=_number(ttl.get("ephemeral_5m_input_tokens")) if ttl is not None else None,
        cache_creation_1h_tokens=_number(ttl.get("ephemeral_1h_input_tokens")) if ttl is not None else None,
        prompt_text_tokens=_number(prompt.get("text_tokens")),
        prompt_audio_tokens=_number(prompt.get("audio_tokens")),
        prompt_image_tokens=_number(prompt.get("image_tokens")),
        reasoning_tokens=_number(completion.get("reasoning_tokens")),
        completion_text_tokens=_number(completion.get("text_tokens")),
        completion_audio_tokens=_number(completion.get("audio_tokens")),
        completion_image_tokens=_number(completion.get("image_tokens")),
    )


def call_usage(
    usage: Any,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    units: Mapping[str, Decimal] | None = None,
    variant: ImageVariant | None = None,
) -> TokenUsage | None:
    """The usage to bill, ``None`` when nothing is known.

    The provider's block when it matches the call's token counts, else the counts alone (a
    stream whose tokens costrouter counted); ``units`` (search units, audio seconds …) ride along.
    """
    if prompt_tokens is None:
        return TokenUsage(0, completion_tokens or 0, units=dict(units), image_variant=variant) if units else None
    read = token_usage(usage) if usage is not None else None
    if read is None or read.prompt_tokens != prompt_tokens:
        read = TokenUsage(prompt_tokens, completion_tokens or 0)
    return replace(read, units=dict(units), image_variant=variant) if units else read


def billed_tokens(usage: TokenUsage) -> dict[str, int | Decimal]:
    """Tokens (or units) billed under each component (LiteLLM's reading of overlapping details)."""
    hit, creation = usage.cache_read_tokens, usage.cache_creation_tokens
    audio, image, text = usage.prompt_audio_tokens, usage.prompt_image_tokens, usage.prompt_text_tokens
    if (hit or creation) and text + hit + audio + creation + image > usage.prompt_tokens:
        uncached = max(usage.prompt_tokens - hit - creation, 0)
        audio = min(audio, uncached)
        image = min(image, uncached - audio)
        text = uncached - audio - image
    elif text == 0:
        text = max(usage.prompt_tokens - hit - audio - creation - image, 0)
    reasoning, out_audio = usage.reasoning_tokens, usage.completion_audio_tokens
    out_image = usage.completion_image_tokens
    out_text = usage.completion_text_tokens
    # Some providers count reasoning inside the text tokens they report: take it out once.
    out_text -= min(reasoning, out_text, max(out_text + reasoning + out_audio + out_image - usage.completion_tokens, 0))
    if out_text == 0:
        if reasoning or out_audio or out_image:
            out_text = max(0, usage.completion_tokens - reasoning - out_audio - out_image)
        else:
            out_text, reasoning, out_audio, out_image = usage.completion_tokens, 0, 0, 0
    creation_1h = 0
    if usage.cache_creation_5m_tokens is not None or usage.cache_creation_1h_tokens is not None:
        # With Anthropic's split by cache lifetime, the split is what is billed, and writes it does not
        # cover at the base write rate, as LiteLLM bills them from 1.109 (before, it dropped them).
        creation_5m, creation_1h = usage.cache_creation_5m_tokens or 0, usage.cache_creation_1h_tokens or 0
        creation = creation_5m + max(creation - creation_5m - creation_1h, 0)
    return {
        "input": text,
        "cache_read": hit,
        "cache_creation": creation,
        "cache_creation_1h": creation_1h,
        "input_audio": audio,
        "input_image": image,
        "request": 1,
        "output": out_text,
        "reasoning": reasoning,
        "output_audio": out_audio,
        "output_image": out_image,
        **({name: usage.units.get(name, 0) for name in UNITS} if usage.units else _NO_UNITS),
    }


@dataclass(slots=True)
class CostBreakdown:
    """A call's cost: the exact total in atto-dollars and its components, which add up to it."""

    usage: TokenUsage
    tokens: Mapping[str, int | Decimal]
    components_attos: Mapping[str, int]
    total_attos: int

    @property
    def prompt_attos(self) -> int:
        """The prompt side: input, cache read and writes, audio and image input, the request fee."""
        return sum(map(self.components_attos.__getitem__, INPUT_COMPONENTS))

    @property
    def completion_attos(self) -> int:
        """The completion side: output, reasoning, audio and image output."""
        return sum(map(self.components_attos.__getitem__, OUTPUT_COMPONENTS))

    @property
    def total_usd(self) -> float:
        """The total in USD: the float nearest the exact amount."""
        return self.total_attos / ATTOS_PER_USD

    @property
    def total_units(self) -> int:
        """The total in units (nano-dollars), rounded half to even: what the call charges a counter."""
        return attos_to_units(self.total_attos)

    @property
    def exact_usd(self) -> Decimal:
        """The total in USD as an exact decimal."""
        return Decimal(self.total_attos).scaleb(-18)

    def component_usd(self, name: str) -> float:
        """One component in USD (the float nearest its exact amount)."""
        return attos_to_usd(self.components_attos[name])


def _billed(count: int | Decimal, rate: int) -> int:
    """``count`` units at ``rate`` atto-dollars each: exact for whole counts, else to the nearest atto-dollar."""
    if isinstance(count, int):
        return count * rate
    return int((count * rate).to_integral_value(rounding=ROUND_HALF_EVEN))


def compute_cost(price: Price, usage: TokenUsage) -> CostBreakdown:
    """Bill ``usage`` at ``price``, in atto-dollars: integer components that add up to the total.

    Exact for tokens (an integer count at an integer price); a fractional count of units
    (seconds of audio …) rounds its component to the nearest atto-dollar.
    """
    rates = price.atto_tier(usage.prompt_tokens, usage.service_tier)
    unit_rates = price.unit_rates_for(usage.image_variant)
    tokens = billed_tokens(usage)
    components = dict.fromkeys(tokens, 0)
    for name, count in tokens.items():
        if count:  # a few components a call; the rest stay 0
            rate = unit_rates[name] if name in unit_rates else rates[_RATE_OF[name]]
            components[name] = count * rate if count.__class__ is int else _billed(count, rate)
    return CostBreakdown(usage, tokens, components, sum(components.values()))


@dataclass(slots=True)
class SettledCost:
    """What a call is charged and why: the computed cost, the provider's, which one settles."""

    usd: float
    source: CostSource
    computed_usd: float | None
    provider_usd: float | None
    mismatch: bool
    units: int | None = None
    """The charge in units, when known exactly (a computed cost: its total rounded half to even)."""


def settle_cost(
    computed_usd: float | None,
    provider_usd: float | None,
    *,
    prefer: CostSource,
    tolerance_usd: float,
    tolerance_ratio: float,
    computed_units: int | None = None,
) -> SettledCost:
    """Choose the cost that settles the budget and flag a disagreement beyond the tolerance.

    The provider's figure settles only when ``prefer`` is ``provider`` and the response carried
    one; without a computed cost (an unpriced model) the provider's figure is all there is.
    ``computed_units`` is the computed cost in units, when it is known exactly.
    """
    mismatch = (
        computed_usd is not None
        and provider_usd is not None
        and abs(provider_usd - computed_usd) > max(tolerance_usd, tolerance_ratio * abs(computed_usd))
    )
    if provider_usd is not None and (prefer == "provider" or computed_usd is None):
        return SettledCost(provider_usd, "provider", computed_usd, provider_usd, mismatch)
    return SettledCost(computed_usd or 0.0, "computed", computed_usd, provider_usd, mismatch, computed_units)


def price_call(
    price: Price | None,
    usage: TokenUsage | None,
    litellm_cost: float | None,
    provider_usd: float | None,
    settings: CostSettings,
) -> tuple[CostBreakdown | None, SettledCost]:
    """What one call costs: the breakdown at the deployment's price, and the cost that settles.

    Without a price (an unpriced deployment) or a usage, LiteLLM's own figure is the computed cost.
    """
    breakdown = compute_cost(price, usage) if price is not None and usage is not None else None
    computed = breakdown.total_usd if breakdown is not None else litellm_cost
    settled = settle_cost(
        computed,
        provider_usd,
        prefer=settings.source,
        tolerance_usd=settings.tolerance_usd,
        tolerance_ratio=settings.tolerance_ratio,
        computed_units=breakdown.total_units if breakdown is not None else None,
    )
    return breakdown, settled


PROVIDER_COST_HEADER: Final = "x-litellm-response-cost"
"""A LiteLLM proxy's header with the cost it billed."""
USAGE_COST_PROVIDERS: Final = frozenset({"openrouter"})
UPSTREAM_USAGE_COST: Final = "upstream_usage_cost"
"""Where LiteLLM keeps the provider's ``usage.cost`` once it wrote its own bill there: from 1.109 a
Router stream's last chunk (and a Responses terminal event) carries LiteLLM's figure in ``usage.cost``
and the provider's under this hidden param; before 1.109, ``usage.cost`` stayed the provider's."""
"""Providers whose ``usage.cost`` is their billed amount. (LiteLLM writes its own computed cost
into ``usage.cost`` of other providers' streams, which is no provider's figure.)"""


def provider_reported_cost(usage: Any, hidden_params: Mapping[str, Any], provider: str | None) -> float | None:
    """The billed amount the response carried, if any.

    OpenRouter's ``usage.cost``, else a LiteLLM proxy's ``x-litellm-response-cost`` header
    (LiteLLM passes response headers on prefixed ``llm_provider-``).
    """
    cost = None
    if provider in USAGE_COST_PROVIDERS:
        cost = hidden_params[UPSTREAM_USAGE_COST] if UPSTREAM_USAGE_COST in hidden_params else _field(usage, "cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost) and cost >= 0:
        return float(cost)
    headers = hidden_params.get("additional_headers") or {}
    for key in (f"llm_provider-{PROVIDER_COST_HEADER}", PROVIDER_COST_HEADER):
        value = headers.get(key)
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) and number >= 0 else None
    return None
