"""Dollars to units (nano-dollars) and atto-dollars, and back."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costrouter.money import (
    ATTOS_PER_USD,
    MAX_COUNTER_UNITS,
    UNITS_PER_USD,
    attos_to_units,
    attos_to_units_ceil,
    attos_to_usd,
    units_to_usd,
    usd_to_attos,
    usd_to_units,
    usd_to_units_ceil,
)
from costrouter.report.summary import format_usd


@pytest.mark.parametrize(
    ("usd", "nearest", "ceil"),
    [
        (0.0, 0, 0),
        (0.5, 500_000_000, 500_000_000),
        (0.000015, 15_000, 15_000),
        (2.5e-9, 2, 3),  # half to even
        (3.5e-9, 4, 4),
        (4e-10, 0, 1),
        (4.8e-7, 480, 480),  # 24 tokens at $2e-8: a whole number of units, not $0
        (0.1 + 0.2, 300_000_000, 300_000_001),
        (1000, 1_000_000_000_000, 1_000_000_000_000),
    ],
)
def test_conversions_round_as_documented(usd: float, nearest: int, ceil: int) -> None:
    assert usd_to_units(usd) == nearest
    assert usd_to_units_ceil(usd) == ceil


@pytest.mark.parametrize("usd", [math.nan, math.inf, -math.inf])
def test_non_finite_amounts_are_refused(usd: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        usd_to_units(usd)


@given(st.integers(min_value=0, max_value=10**15))
def test_units_survive_a_round_trip(units: int) -> None:
    assert usd_to_units(units_to_usd(units)) == units


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_ceil_is_never_below_nearest(usd: float) -> None:
    assert usd_to_units(usd) <= usd_to_units_ceil(usd) <= usd_to_units(usd) + 1


def test_a_price_is_an_exact_integer_of_atto_dollars_and_a_finer_one_is_named() -> None:
    assert usd_to_attos(1e-7) == (10**11, False)
    assert usd_to_attos(2e-8) == (2 * 10**10, False)
    assert usd_to_attos(1.5e-18) == (2, True)  # half to even, and said so


@given(st.integers(min_value=0, max_value=10**30))
def test_atto_dollars_reach_a_counter_rounded_half_to_even(attos: int) -> None:
    exact = Fraction(attos, ATTOS_PER_USD // UNITS_PER_USD)
    assert attos_to_units(attos) == round(exact)  # Python's round of a Fraction is half to even
    assert attos_to_units_ceil(attos) == math.ceil(exact)


@given(st.integers(min_value=0, max_value=10**30))
def test_a_float_of_atto_dollars_is_the_nearest_double(attos: int) -> None:
    exact = Fraction(attos, ATTOS_PER_USD)
    usd = attos_to_usd(attos)
    assert abs(Fraction(usd) - exact) <= abs(Fraction(math.nextafter(usd, math.inf)) - exact)
    assert abs(Fraction(usd) - exact) <= abs(Fraction(math.nextafter(usd, -math.inf)) - exact)


def test_a_counter_holds_about_nine_million_dollars() -> None:
    assert 9_000_000 < units_to_usd(MAX_COUNTER_UNITS) < 9_010_000


def test_a_figure_finer_than_a_micro_dollar_shows_its_nano_dollars() -> None:
    assert format_usd(4.8e-7) == "$0.000000480"  # 24 embedding tokens at $2e-8: not "$0.000000"
    assert format_usd(0.000123) == "$0.000123"
    assert format_usd(0.1 + 0.2) == "$0.300000"  # float noise is not a digit
