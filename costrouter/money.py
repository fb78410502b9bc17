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
