"""Time in reports: ``--since``/``--until`` values, and cost over time per group in bounded memory."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

__all__ = ["Timeline", "parse_instant"]

_NS: Final = 1_000_000_000
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_instant(text: str, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch of ``text``; ``ValueError`` when it is neither form.

    ``text`` is an ISO 8601 date or time (UTC unless it says), or a duration back from
    now (``90m``, ``24h``, ``7d``, ``2w``).
    """
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative is not None:
        now = time.time_ns() if now_ns is None else now_ns
        return now - int(float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)] * _NS)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        message = f"{text!r} is neither an ISO 8601 time (2026-11-27, 2026-11-27T09:30Z) nor a duration (24h, 7d)"
        raise ValueError(message) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * _NS + moment.microsecond * 1000


@dataclass
class Timeline:
    """Cost per group per time bucket; buckets widen (doubling) to stay under ``max_buckets``.

    Costs are integers of 1e-12 USD, like the report's rows.
    """

    max_buckets: int = 2048
    width_ns: int = 60 * _NS
    cells: dict[tuple[str, int], int] = field(default_factory=dict)
    buckets: set[int] = field(default_factory=set)

    def add(self, group: str, start_ns: int, cost_pico: int) -> None:
        """Count ``cost_pico`` for ``group`` at ``start_ns``."""
        bucket = start_ns // self.width_ns
        key = (group, bucket)
        self.cells[key] = self.cells.get(key, 0) + cost_pico
        if bucket not in self.buckets:
            self.buckets.add(bucket)
            if len(self.buckets) > self.max_buckets:
                self._widen()

    def merge(self, other: Timeline) -> None:
        """Add ``other`` (the same kind of timeline over other calls): the result is what one pass would hold.

        One pass ends at the narrowest width that holds all its buckets, whatever their
        order; so does this: both go to the wider width, then widen while too many.
        """
        while self.width_ns < other.width_ns:
            self._widen()
        cells, buckets = other.cells, other.buckets
        if other.width_ns < self.width_ns:
            factor = self.width_ns // other.width_ns
            cells = {}
            for (group, bucket), cost in other.cells.items():
                key = (group, bucket // factor)
                cells[key] = cells.get(key, 0) + cost
            buckets = {bucket // factor for bucket in other.buckets}
        for key, cost in cells.items():
            self.cells[key] = self.cells.get(key, 0) + cost
        self.buckets |= buckets
        while len(self.buckets) > self.max_buckets:
            self._widen()

    def _widen(self) -> None:
        self.width_ns *= 2
        cells: dict[tuple[str, int], int] = {}
        for (group, bucket), cost in self.cells.items():
            key = (group, bucket // 2)
            cells[key] = cells.get(key, 0) + cost
        self.cells = cells
        self.buckets = {bucket // 2 for bucket in self.buckets}

    def series(self, points: int = 48) -> tuple[list[int], dict[str, list[int]]]:
        """At most ``points`` bucket starts (ns) from the first to the last, and each group's cost in each."""
        if not self.buckets:
            return [], {}
        first, last = min(self.buckets), max(self.buckets)
        span = last - first + 1
        per_point = -(-span // points)
        starts = [(first + index * per_point) * self.width_ns for index in range(-(-span // per_point))]
        groups: dict[str, list[int]] = {}
        for (group, bucket), cost in self.cells.items():
            row = groups.setdefault(group, [0] * len(starts))
            row[(bucket - first) // per_point] += cost
        return starts, dict(sorted(groups.items(), key=lambda item: (-sum(item[1]), item[0])))

    @property
    def bucket_seconds(self) -> int:
        """The width of one bucket now, in seconds."""
        return self.width_ns // _NS
