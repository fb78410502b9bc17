"""Property: the cached hold lines (:class:`HoldLine`, :meth:`WorstCase.hold_attos`) give exactly the hold
that :meth:`Price.upper_bound_attos` computes, for every price, service tier, threshold and reach."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from costrouter.config import price_fields as pf
from costrouter.money import attos_to_units_ceil
from costrouter.pricing.prices import Price, WorstCase, estimate_attos, estimate_units

rates_ = st.floats(min_value=0, max_value=1e-4, allow_nan=False, allow_infinity=False)
THRESHOLDS = ("1000", "2000", "128k", "200k")
TIER_NAMES = (None, "", "auto", "default", "flex", "priority", "fast", "FLEX", "scale", "balanced", "ultrafast")
OPTIONAL = tuple(key for key in pf.PER_TOKEN_FIELDS if key not in (pf.INPUT, pf.OUTPUT))
"""The per-token prices a deployment may set beside input and output."""


@st.composite
def prices(draw: st.DrawFn) -> Price:
    """Any dimensions, thresholds (inclusive or not), service-tier prices (flat and above thresholds), a fee."""
    rates: dict[str, float] = {key: draw(rates_) for key in OPTIONAL if draw(st.booleans())}
    thresholds = draw(st.lists(st.sampled_from(THRESHOLDS), max_size=3, unique=True))
    for threshold in thresholds:
        for key in pf.TIERED_FIELDS:
            if draw(st.booleans()):
                rates[f"{key}_above_{threshold}_tokens"] = draw(rates_)
    for tier in draw(st.lists(st.sampled_from(pf.SERVICE_TIERS), max_size=2, unique=True)):
        for key in pf.SERVICE_TIERED_FIELDS:
            if draw(st.booleans()):
                rates[f"{key}_{tier}"] = draw(rates_)
        for threshold in thresholds:
            for key in pf.TIERED_FIELDS:
                if draw(st.integers(0, 3)) == 0:
                    rates[f"{key}_above_{threshold}_tokens_{tier}"] = draw(rates_)
    if draw(st.booleans()):
        rates[pf.REQUEST] = draw(st.floats(min_value=0, max_value=0.05))
    return Price(
        draw(rates_),
        draw(rates_),
        draw(st.none() | st.integers(1, 100_000)),
        "deployment",
        rates,
        inclusive_threshold=draw(st.booleans()),
        service_tier=draw(st.sampled_from(TIER_NAMES)) or None,
    )


# Reaches around the thresholds (each one, one below, one above) and anywhere.
tokens_ = st.one_of(
    st.integers(min_value=0, max_value=300_000),
    st.sampled_from([0, 1, 999, 1000, 1001, 1999, 2000, 2001, 127_999, 128_000, 128_001, 200_000, 200_001]),
)


def _reference(worst: WorstCase, prompt: int, output: int, tier: str | None) -> int:
    """The hold before the cached lines: the largest upper bound of the prices."""
    return max((price.upper_bound_attos(prompt, output, None, None, tier) for price in worst.prices), default=0)


@settings(max_examples=500, deadline=None)
@given(
    listed=st.lists(prices(), max_size=3),
    calls=st.lists(
        st.tuples(tokens_, st.integers(min_value=0, max_value=100_000), st.sampled_from(TIER_NAMES)),
        min_size=1,
        max_size=6,
    ),
)
def test_hold_lines_equal_the_upper_bound_of_every_price(
    listed: list[Price], calls: list[tuple[int, int, str | None]]
) -> None:
    worst = WorstCase(tuple(listed), None)
    edges = [  # a reach one below, at and one past each threshold, split between prompt and output
        (threshold + shift - split, split, tier)
        for price in listed
        for threshold in price.thresholds
        for shift in (-1, 0, 1)
        for split in (0, 1)
        for tier in (None, price.service_tier, "priority")
    ]
    for prompt, output, tier in [*calls, *edges]:  # on one worst case: the cached lines are reused
        expected = _reference(worst, prompt, output, tier)
        assert worst.hold_attos(prompt, output, tier) == expected
        assert estimate_attos(prompt, output, worst, service_tier=tier) == expected
        assert estimate_units(prompt, output, worst, {}, None, tier) == attos_to_units_ceil(expected)


def test_a_call_with_units_still_prices_them() -> None:
    price = Price(1e-6, 2e-6, None, "deployment", {pf.QUERY: 0.01})
    worst = WorstCase((price,), None)
    units = {"search_units": Decimal("2.5")}
    assert estimate_attos(10, 0, worst, units) == price.upper_bound_attos(10, 0, units) > worst.hold_attos(10, 0)


def test_an_empty_worst_case_holds_nothing_whatever_the_tier() -> None:
    assert WorstCase((), None).hold_attos(1_000, 1_000, "flex") == 0
