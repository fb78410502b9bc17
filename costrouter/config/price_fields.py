"""The price fields a deployment may carry, by LiteLLM's price-map names, and their limits.

A plain table with no dependencies, shared by the YAML models (:mod:`costrouter.config`)
and the price model (:mod:`costrouter.prices`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

INPUT: Final = "input_cost_per_token"
OUTPUT: Final = "output_cost_per_token"
CACHE_READ: Final = "cache_read_input_token_cost"
CACHE_CREATION: Final = "cache_creation_input_token_cost"
CACHE_CREATION_1H: Final = "cache_creation_input_token_cost_above_1hr"
"""Anthropic's one-hour cache writes (the plain cache write price is the five-minute one)."""
REASONING: Final = "output_cost_per_reasoning_token"
INPUT_AUDIO: Final = "input_cost_per_audio_token"
OUTPUT_AUDIO: Final = "output_cost_per_audio_token"
INPUT_IMAGE: Final = "input_cost_per_image_token"
OUTPUT_IMAGE: Final = "output_cost_per_image_token"
REQUEST: Final = "input_cost_per_request"
QUERY: Final = "input_cost_per_query"
"""Rerank: USD per search unit (Cohere: one query over up to 100 documents)."""
INPUT_SECOND: Final = "input_cost_per_second"
"""Transcription: USD per second of input audio."""
OUTPUT_SECOND: Final = "output_cost_per_second"
"""USD per second of audio, billed in place of the input second when set (LiteLLM's rule)."""
CHARACTER: Final = "input_cost_per_character"
"""Speech: USD per character of the input text."""
INPUT_PER_IMAGE: Final = "input_cost_per_image"
"""Image generation: USD per image (LiteLLM reads it before the output price per image)."""
OUTPUT_PER_IMAGE: Final = "output_cost_per_image"
"""Image generation: USD per image produced."""
PIXEL: Final = "input_cost_per_pixel"
"""Image generation: USD per pixel produced (when no price per image is set)."""

PER_TOKEN_FIELDS: Final = (
    INPUT,
    OUTPUT,
    CACHE_READ,
    CACHE_CREATION,
    CACHE_CREATION_1H,
    REASONING,
    INPUT_AUDIO,
    OUTPUT_AUDIO,
    INPUT_IMAGE,
    OUTPUT_IMAGE,
)
"""Prices per token, in USD, that every deployment may set."""

UNIT_FIELDS: Final = (QUERY, INPUT_SECOND, OUTPUT_SECOND, CHARACTER, INPUT_PER_IMAGE, OUTPUT_PER_IMAGE, PIXEL)
"""Prices per unit other than a token: search units, audio seconds, characters, images, pixels."""
IMAGE_FIELDS: Final = (INPUT_PER_IMAGE, OUTPUT_PER_IMAGE, PIXEL)
"""Flat image prices: a deployment that sets one is not priced by the price map's size variants."""
PER_MILLION_UNIT_FIELDS: Final = frozenset({CHARACTER, PIXEL})
"""Unit prices held to the per-token limit and shown per million (a character or a pixel costs about as
little as a token)."""

TIERED_FIELDS: Final = (INPUT, OUTPUT, CACHE_READ, CACHE_CREATION, CACHE_CREATION_1H)
"""Prices that change once the prompt passes a threshold (``input_cost_per_token_above_200k_tokens``)."""

THRESHOLD_KEY: Final = re.compile(rf"^({'|'.join(TIERED_FIELDS)})_above_(\d+)(k?)_tokens$")
"""A price above a prompt-token threshold, as LiteLLM's price map writes it."""

SERVICE_TIERS: Final = ("flex", "balanced", "priority", "ultrafast")
"""Service tiers LiteLLM's price map prices apart, as the suffix of a price (``input_cost_per_token_flex``)."""
TIER_SPELLINGS: Final = {"fast": "priority"}
"""Tiers a provider names otherwise, priced as another (LiteLLM's ``_SERVICE_TIER_TO_COST_KEY_SUFFIX``)."""
STANDARD_TIERS: Final = frozenset({"default", "standard"})
"""Tiers a provider reports for the standard price (no suffix)."""
SERVICE_TIERED_FIELDS: Final = (INPUT, OUTPUT, CACHE_READ, CACHE_CREATION, REASONING, INPUT_AUDIO, INPUT_IMAGE)
"""Prices a service tier may set apart (LiteLLM looks each up with the tier's suffix first)."""

SERVICE_TIER_KEY: Final = re.compile(
    rf"^((?:{'|'.join(SERVICE_TIERED_FIELDS)})|(?:{'|'.join(TIERED_FIELDS)})_above_\d+k?_tokens)"
    rf"_({'|'.join(SERVICE_TIERS)})$"
)
"""A price of one service tier: a flat price or a threshold price, with the tier's suffix."""

MAX_PER_TOKEN_USD: Final = 0.01
"""The most a token may cost ($10,000 per million): larger is a typo (a price per million)."""
MAX_PER_REQUEST_USD: Final = 100.0
"""The most a request's flat fee may be."""

PriceLayer = Literal["deployment", "litellm_params", "model_info"]
"""A layer of the file that may hold prices, by precedence: top-level fields, ``litellm_params``,
a proxy's ``model_info``."""

PRICE_MAP_FALLBACK: Final = "prices_from_price_map"
"""The deployment field that lets an incomplete price take the rest from LiteLLM's price map."""


def unit_name(key: str) -> str:
    """What one unit of the price ``key`` is: ``token``, ``request``, ``search unit``, ``second`` …."""
    names = {
        REQUEST: "request",
        QUERY: "search unit",
        INPUT_SECOND: "second",
        OUTPUT_SECOND: "second",
        CHARACTER: "character",
        INPUT_PER_IMAGE: "image",
        OUTPUT_PER_IMAGE: "image",
        PIXEL: "pixel",
    }
    return names.get(key, "token")


def parse_threshold(key: str) -> tuple[str, int] | None:
    """``(field, threshold)`` of a threshold price key, else ``None``."""
    match = THRESHOLD_KEY.match(key)
    if match is None:
        return None
    return match.group(1), int(match.group(2)) * (1000 if match.group(3) else 1)


def parse_service_tier(key: str) -> tuple[str, str] | None:
    """``(price, tier)`` of a service-tier price key (``input_cost_per_token_flex``), else ``None``."""
    match = SERVICE_TIER_KEY.match(key)
    return (match.group(1), match.group(2)) if match is not None else None


def billed_tier(tier: str | None) -> str | None:
    """The priced tier ``tier`` bills at (``fast`` → ``priority``); ``None`` for the standard price.

    A tier the price map does not price apart (``default``, ``auto``, ``scale`` …) is ``None``.
    """
    if tier is None:
        return None
    name = tier.lower()
    name = TIER_SPELLINGS.get(name, name)
    return name if name in SERVICE_TIERS else None


def is_price_field(key: str) -> bool:
    """Whether ``key`` is a price costrouter models (a flat price, a fee, a threshold or a tier price)."""
    return (
        key in PER_TOKEN_FIELDS
        or key == REQUEST
        or key in UNIT_FIELDS
        or THRESHOLD_KEY.match(key) is not None
        or SERVICE_TIER_KEY.match(key) is not None
    )


def price_problem(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the price ``key``, or ``None`` when it can."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return f"must be a number of USD, not {value!r}"
    try:
        number = float(value)
    except ValueError:
        return f"must be a number of USD, not {value!r}"
    if not math.isfinite(number):
        return f"must be finite, not {value!r}"
    if number < 0:
        return f"must be >= 0, not {value!r}"
    per_item = key == REQUEST or (key in UNIT_FIELDS and key not in PER_MILLION_UNIT_FIELDS)
    limit = MAX_PER_REQUEST_USD if per_item else MAX_PER_TOKEN_USD
    if number > limit:
        unit = (
            f"per {unit_name(key)}"
            if per_item
            else f"per {unit_name(key)} (is it a price per million {unit_name(key)}s?)"
        )
        return f"{value!r} is above the sane limit of {limit} USD {unit}"
    return None


def prices_in(mapping: Mapping[str, Any]) -> dict[str, float]:
    """The price fields of ``mapping`` (``litellm_params`` or ``model_info``), as floats; others ignored.

    Call :func:`price_problem` first: this assumes every price field is valid.
    """
    return {key: float(value) for key, value in mapping.items() if is_price_field(key) and value is not None}
