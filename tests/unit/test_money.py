"""Dollars to micro-dollars and back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costrouter.money import micros_to_usd, usd_to_micros, usd_to_micros_ceil


@pytest.mark.parametrize(
    ("usd", "nearest", "ceil"),
    [
        (0.0, 0, 0),
        (0.5, 500_000, 500_000),
        (0.000015, 15, 15),
        (0.0000005, 1, 1),
        (0.0000004, 0, 1),
        (1e-9, 0, 1),
        (0.1 + 0.2, 300_000, 300_001),
        (1000, 1_000_000_000, 1_000_000_000),
    ],
)
def test_conversions_round_as_documented(usd: float, nearest: int, ceil: int) -> None:
    assert usd_to_micros(usd) == nearest
    assert usd_to_micros_ceil(usd) == ceil


@pytest.mark.parametrize("usd", [math.nan, math.inf, -math.inf])
def test_non_finite_amounts_are_refused(usd: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        usd_to_micros(usd)


@given(st.integers(min_value=0, max_value=10**15))
def test_micros_survive_a_round_trip(micros: int) -> None:
    assert usd_to_micros(micros_to_usd(micros)) == micros


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_ceil_is_never_below_nearest(usd: float) -> None:
    assert usd_to_micros(usd) <= usd_to_micros_ceil(usd) <= usd_to_micros(usd) + 1
