"""Money as integers of micro-dollars (1e-6 USD).

Stores and counters only ever hold micro-dollars; floats appear at the edges (spans,
log lines, the YAML files) and are converted here, through ``Decimal`` so that a
price such as ``0.000015`` does not pick up binary rounding noise.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Final

MICROS_PER_USD: Final = 1_000_000
"""Micro-dollars in one US dollar."""

UNITS_PER_USD: Final = MICROS_PER_USD
"""The integer units of money in one US dollar, as stores and counters hold them."""

LEGACY_UNITS_PER_USD: Final = 1_000_000
"""The units per US dollar of the unversioned Redis layout of 0.2 (micro-dollars)."""


def _decimal_usd(usd: float) -> Decimal:
    if not math.isfinite(usd):
        message = f"an amount of money must be finite, not {usd!r}"
        raise ValueError(message)
    return Decimal(repr(float(usd))) * MICROS_PER_USD


def usd_to_micros(usd: float) -> int:
    """Convert dollars to micro-dollars, rounding half up (``0.0000005`` → 1)."""
    return int(_decimal_usd(usd).to_integral_value(rounding=ROUND_HALF_UP))


def usd_to_micros_ceil(usd: float) -> int:
    """Convert dollars to micro-dollars, rounding up: for estimates and holds."""
    return int(_decimal_usd(usd).to_integral_value(rounding=ROUND_CEILING))


def micros_to_usd(micros: int) -> float:
    """Convert micro-dollars to dollars (a float, for display)."""
    return micros / MICROS_PER_USD


MAX_CALL_USD: Final = 10_000
"""The most one routed call is ever charged, per budget: a larger figure is an untrusted answer.

No provider's price list reaches it for one call (a million output tokens of the dearest model
cost a few hundred dollars); an amount past it is charged this cap, flagged on the span and logged.
"""

MAX_CALL_MICROS: Final = MAX_CALL_USD * MICROS_PER_USD
""":data:`MAX_CALL_USD` in micro-dollars."""

MAX_COUNTER_MICROS: Final = 2**53 - 1
"""The largest amount a counter holds: every store keeps it exactly (a Lua number is a double).

Counters saturate here instead of wrapping; it is about 9 billion dollars.
"""
