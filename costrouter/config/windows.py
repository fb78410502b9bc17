"""Budget windows: which period a moment belongs to, and when that period ends.

A window is ``total`` (never resets), a fixed period of ``<n>s|m|h|d`` aligned to the
Unix epoch, or a calendar ``daily``/``monthly`` period in UTC. Each period has an id:

========  =====================  ==============================
kind      id                     example
========  =====================  ==============================
total     ``total``              ``total``
fixed     epoch second it starts ``1717200000``
daily     UTC date               ``2024-06-01``
monthly   UTC year and month     ``2024-06``
========  =====================  ==============================

The Redis scripts compute the same ids from the server's clock (``lua/lib.lua``);
the two implementations are tested against each other.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

WindowKind = Literal["total", "fixed", "daily", "monthly"]

_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FIXED = re.compile(r"^([1-9][0-9]*)([smhd])$")
_SECONDS_PER_DAY: Final = 86400
_DECEMBER: Final = 12
_NAMED: Final[dict[str, WindowKind]] = {"total": "total", "daily": "daily", "monthly": "monthly"}


@dataclass(frozen=True)
class WindowSpec:
    """A parsed window: its kind, the period length for ``fixed``, and the original text."""

    kind: WindowKind
    seconds: int
    text: str


@dataclass(frozen=True)
class Window:
    """One period of a window: its id and the epoch second it ends (``None``: never)."""

    id: str
    end: int | None


def parse_window(text: str) -> WindowSpec:
    """Parse ``total``, ``daily``, ``monthly`` or ``<n>s|m|h|d``; raise ValueError otherwise."""
    value = text.strip()
    named = _NAMED.get(value)
    if named is not None:
        return WindowSpec(kind=named, seconds=0, text=value)
    match = _FIXED.match(value)
    if match is None:
        message = f"window must be total, daily, monthly or <n>s|m|h|d (such as 30d), not {text!r}"
        raise ValueError(message)
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return WindowSpec(kind="fixed", seconds=seconds, text=value)


def window_at(spec: WindowSpec, now: float) -> Window:
    """The period of ``spec`` that contains the moment ``now`` (Unix seconds, UTC)."""
    second = math.floor(now)
    if spec.kind == "total":
        return Window("total", None)
    if spec.kind == "fixed":
        start = second - second % spec.seconds
        return Window(str(start), start + spec.seconds)
    day = datetime.fromtimestamp(second - second % _SECONDS_PER_DAY, UTC)
    if spec.kind == "daily":
        return Window(f"{day.year:04d}-{day.month:02d}-{day.day:02d}", int(day.timestamp()) + _SECONDS_PER_DAY)
    year, month = (day.year + 1, 1) if day.month == _DECEMBER else (day.year, day.month + 1)
    end = datetime(year, month, 1, tzinfo=UTC)
    return Window(f"{day.year:04d}-{day.month:02d}", int(end.timestamp()))


def window_id(spec: WindowSpec, now: float) -> str:
    """The id of the period of ``spec`` that contains ``now``."""
    return window_at(spec, now).id
