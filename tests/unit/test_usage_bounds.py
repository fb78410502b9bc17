"""Plausibility bounds on what a provider reports (costrouter.pricing.usage_bounds)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from litellm import Usage
from pydantic import ValidationError

from costrouter.config.budgets import PromptEstimate
from costrouter.money import MAX_CALL_UNITS
from costrouter.pricing.usage_bounds import (
    CONTEXT_MARGIN,
    DEFAULT_LIMITS,
    MAX_CONTEXT_TOKENS,
    UsageLimits,
    bounded_count,
    choices_asked,
    deployment_limits,
    implausible_charge_units,
    implausible_figures,
    plausible_amount_usd,
    plausible_count,
)

LIMITS = UsageLimits(prompt_tokens=1_000, completion_tokens=100)


@pytest.mark.parametrize(
    ("value", "plausible"),
    [
        (None, True),
        (0, True),
        (1_000, True),
        (12.0, True),
        (1_001, False),
        (-1, False),
        (2.5, False),
        (math.nan, False),
        (math.inf, False),
        ("12", False),
        (True, False),
        (10**20, False),
    ],
)
def test_a_count_is_a_non_negative_integer_within_its_limit(value: object, plausible: bool) -> None:
    assert plausible_count(value, 1_000) is plausible


def test_a_count_is_held_within_its_limit_and_garbage_is_no_count() -> None:
    assert bounded_count(10**20, 1_000) == 1_000
    assert bounded_count(-5, 1_000) == 0
    assert bounded_count(math.inf, 1_000) == 1_000
    assert bounded_count(math.nan, 1_000) is None
    assert bounded_count("lots", 1_000) is None


def test_every_token_field_of_a_usage_block_is_checked_details_included() -> None:
    usage = Usage(
        prompt_tokens=10,
        completion_tokens=5,
        prompt_tokens_details={"cached_tokens": 10**20},
        completion_tokens_details={"reasoning_tokens": -3},
    )
    failed = implausible_figures(usage, 10, 5, {}, LIMITS)
    assert set(failed) == {"cached_tokens", "reasoning_tokens"}
    assert implausible_figures({"prompt_tokens": 10, "completion_tokens": 5}, 10, 5, {}, LIMITS) == ()
    assert implausible_figures(None, 10**20, 5, {}, LIMITS) == ("prompt_tokens",)
    assert implausible_figures(None, 10, 101, {}, LIMITS) == ("completion_tokens",)
    assert implausible_figures(None, 10, 101, {}, LIMITS.for_choices(2)) == ()


def test_units_are_finite_non_negative_and_bounded() -> None:
    units = {"audio_seconds": Decimal("NaN"), "characters": Decimal(-1), "images": Decimal("1e12")}
    assert implausible_figures(None, None, None, units, LIMITS) == ("audio_seconds", "characters", "images")
    assert implausible_figures(None, None, None, {"search_units": Decimal(3)}, LIMITS) == ()


def test_a_known_model_is_bounded_by_its_context_window_an_unknown_one_by_the_largest() -> None:
    known = deployment_limits("gpt-4o-mini", None)
    assert known == UsageLimits(128_000 * CONTEXT_MARGIN, 16_384 * CONTEXT_MARGIN)
    assert deployment_limits("gpt-4o-mini", 1_000).completion_tokens == 1_000 * CONTEXT_MARGIN
    unknown = deployment_limits("openai/no-such-model", None)
    assert unknown == DEFAULT_LIMITS == UsageLimits(MAX_CONTEXT_TOKENS * 2, MAX_CONTEXT_TOKENS * 2)


def test_amounts_past_the_cap_or_not_finite_are_implausible() -> None:
    assert plausible_amount_usd(None)
    assert plausible_amount_usd(0.0)
    assert plausible_amount_usd(10_000.0)
    assert not plausible_amount_usd(10_000.01)
    assert not plausible_amount_usd(1e30)
    assert not plausible_amount_usd(-0.01)
    assert not plausible_amount_usd(math.nan)


def test_an_implausible_answer_is_charged_its_hold_within_the_cap() -> None:
    assert implausible_charge_units(65, 10**9) == 65
    assert implausible_charge_units(None, 1_234) == 1_234
    assert implausible_charge_units(None, 10**30) == MAX_CALL_UNITS
    assert implausible_charge_units(10**30, 0) == MAX_CALL_UNITS


def test_the_ratio_cap_is_never_below_the_prior() -> None:
    with pytest.raises(ValidationError, match="ratio_max"):
        PromptEstimate(unlearned_ratio=4.0, ratio_max=3.0)
    assert PromptEstimate(unlearned_ratio=4.0, ratio_max=4.0).ratio_max == 4.0


def test_the_choices_asked_never_raise_on_a_request_refused_for_them() -> None:
    assert choices_asked({"n": 3}) == 3
    assert [choices_asked({"n": n}) for n in (0, -1, "2", True, None)] == [1, 1, 1, 1, 1]
    assert choices_asked({}) == 1
