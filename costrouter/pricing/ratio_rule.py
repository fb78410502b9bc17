"""How one observation moves a deployment's learned prompt-token ratio, and how a ratio ages.

The same rule runs in the memory store and in ``budget/lua/token_ratio.lua``: plain
functions here, so both stores and the in-process view (:mod:`costrouter.pricing.token_ratios`)
share it. A ratio is robust to one outlier answer:

* **a cap**: no ratio goes past ``cap`` (an answer past it is no tokenizer's difference);
* **a bounded step**: an observation above the ratio raises it at most ``step`` times (the
  first one from the prior ``unlearned_ratio``); a true ratio further up is reached in a few
  answers, a lie raises it once by that factor;
* **decay by evidence**: an observation below pulls the ratio ``decay`` of the way down;
* **decay by time**: a ratio no answer confirmed for ``half_life_seconds`` is halfway back to the
  prior, so a deployment nobody can call (every call refused) still recovers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from costrouter.config.budgets import PromptEstimate


@dataclass(frozen=True)
class RatioRule:
    """The learning rule's settings (from the policy's ``defaults.prompt``)."""

    prior: float = 2.0
    decay: float = 0.02
    step: float = 2.0
    cap: float = 8.0
    half_life_seconds: float | None = 86_400.0
    """``None``: a ratio does not age."""

    @classmethod
    def of(cls, settings: PromptEstimate) -> RatioRule:
        """The rule a policy's prompt-estimate settings describe."""
        return cls(
            prior=settings.unlearned_ratio,
            decay=settings.ratio_decay,
            step=settings.ratio_step,
            cap=settings.ratio_max,
            half_life_seconds=settings.ratio_half_life_seconds,
        )


@dataclass(frozen=True)
class LearnedRatio:
    """One deployment's ratio as a store keeps it: the ratio, how many answers taught it, its age."""

    ratio: float
    observations: int
    age_seconds: float


def aged_ratio(ratio: float, age_seconds: float, rule: RatioRule) -> float:
    """``ratio`` after ``age_seconds`` without an observation: toward the prior by the half-life, within the cap."""
    if rule.half_life_seconds is not None and age_seconds > 0:
        ratio = rule.prior + (ratio - rule.prior) * math.pow(0.5, age_seconds / rule.half_life_seconds)
    return min(ratio, rule.cap)


def next_token_ratio(stored: LearnedRatio | None, observed: float, rule: RatioRule) -> float:
    """The ratio after one observation (see the module's docstring)."""
    if stored is None:
        return min(observed, rule.prior * rule.step, rule.cap)
    base = aged_ratio(stored.ratio, stored.age_seconds, rule)
    if observed >= base:
        return min(observed, base * rule.step, rule.cap)
    return base - (base - observed) * rule.decay
