"""Money as integers: nano-dollars (1e-9 USD) in counters, atto-dollars (1e-18 USD) in prices.

Stores, counters, holds, limits and journal lines only ever hold nano-dollars ("units").
A price per token is an integer of atto-dollars (:data:`ATTOS_PER_USD`), so a call's exact
cost is an integer too; it reaches a counter through :func:`attos_to_units` (round half to
even). Floats appear at the edges (spans, log lines, the YAML files) and are converted here,
through their shortest decimal form, so that a price such as ``0.000015`` does not pick up
binary rounding noise. ``docs/cost.md`` lists every place a figure is rounded.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Final

UNITS_PER_USD: Final = 1_000_000_000
"""Units (nano-dollars) in one US dollar: the unit of every counter, hold, limit and journal line."""

LEGACY_UNITS_PER_USD: Final = 1_000_000
"""The unit of costrouter 0.2's stores and journal lines (micro-dollars), for reading and migrating them."""

ATTOS_PER_USD: Final = 10**18
"""Atto-dollars in one US dollar: the unit of a price (per token, second, character, image …)."""

ATTOS_PER_UNIT: Final = ATTOS_PER_USD // UNITS_PER_USD


def _decimal(usd: float, scale: int) -> Decimal:
    if not math.isfinite(usd):
        message = f"an amount of money must be finite, not {usd!r}"
        raise ValueError(message)
    return Decimal(repr(float(usd))) * scale


def usd_to_units(usd: float) -> int:
    """Convert dollars to units (nano-dollars), rounding half to even (``2.5e-9`` → 2)."""
    return int(_decimal(usd, UNITS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def usd_to_units_ceil(usd: float) -> int:
    """Convert dollars to units, rounding up: for estimates and holds."""
    return int(_decimal(usd, UNITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def units_to_usd(units: int) -> float:
    """Convert units to dollars: the float nearest the exact amount (``int / int`` rounds correctly)."""
    return units / UNITS_PER_USD


def usd_to_attos(usd: float) -> tuple[int, bool]:
    """A price in atto-dollars, and whether it had to be rounded (more than 18 decimal places).

    The float's shortest decimal form is the price (``1e-07`` is exactly 10**11 atto-dollars);
    a price finer than an atto-dollar is rounded half to even, which the caller reports.
    """
    exact = _decimal(usd, ATTOS_PER_USD)
    rounded = exact.to_integral_value(rounding=ROUND_HALF_EVEN)
    return int(rounded), rounded != exact


def attos_to_units(attos: int) -> int:
    """An exact cost in atto-dollars as units, rounded half to even: what a call charges a counter."""
    units, rest = divmod(attos, ATTOS_PER_UNIT)
    twice = 2 * rest
    if twice > ATTOS_PER_UNIT or (twice == ATTOS_PER_UNIT and units & 1):
        units += 1
    return units


def attos_to_units_ceil(attos: int) -> int:
    """An exact amount in atto-dollars as units, rounded up: for estimates and holds."""
    return -(-attos // ATTOS_PER_UNIT)


def attos_to_usd(attos: int) -> float:
    """An exact amount in atto-dollars as the nearest float of dollars (correctly rounded)."""
    return attos / ATTOS_PER_USD


def per_million(usd_per_token: float) -> float:
    """A price per token as a price per million tokens, exactly (``1e-07`` → ``0.1``, not ``0.09999999999999999``).

    The nearest float to the exact product of the price's decimal form, for a backend priced per million.
    """
    return usd_to_attos(usd_per_token)[0] * 1_000_000 / ATTOS_PER_USD


MAX_CALL_USD: Final = 10_000
"""The most one routed call is ever charged, per budget: a larger figure is an untrusted answer.

No provider's price list reaches it for one call (a million output tokens of the dearest model
cost a few hundred dollars); an amount past it is charged this cap, flagged on the span and logged.
"""

MAX_CALL_UNITS: Final = MAX_CALL_USD * UNITS_PER_USD
""":data:`MAX_CALL_USD` in units."""

MAX_COUNTER_UNITS: Final = 2**53 - 1
"""The largest amount a counter holds: every store keeps it exactly (a Lua number is a double).

Counters saturate here instead of wrapping; in nano-dollars it is about 9.0 million dollars
($9,007,199.25), per counter (one budget instance's spend, or its holds).
"""
