"""``budget top`` without an index: the largest spenders found by scanning a budget's window hashes.

With ``store.top_index`` off (the default) no key is written per session for the ranking, so a
live session costs only its window hash. ``top`` is then built on demand: a ``SCAN`` of the keys
of the named budget's current window (every primary of a Redis Cluster), the ``spent`` field of
each page read in one pipeline, and the ``n`` largest kept in a heap. Memory is bounded by ``n``
and one page; time grows with the keys in Redis (the scan reports how many it read), so a fleet
of millions of live sessions that ranks often turns ``top_index`` on instead.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from costrouter.config.budget_ref import BudgetRef, budget_key

if TYPE_CHECKING:
    from costrouter.budget.redis_clients import SyncClient

PAGE: Final = 1000
"""Keys asked of each SCAN step (a hint to Redis) and read per pipeline."""
MAX_KEYS: Final = 10_000_000
"""The scan stops after this many keys and says so."""

_SENTINEL: Final = "\x00"
_GLOB_SPECIAL: Final = "\\*?[]"


@dataclass(frozen=True)
class TopScan:
    """The ranking, and what it cost: keys scanned, and whether the scan stopped at ``MAX_KEYS``."""

    ranked: list[tuple[str, int]]
    scanned: int
    complete: bool


def window_key(base: str, window: str) -> str:
    """The hash of one budget instance's window (``base`` is the instance's hash tag)."""
    return f"{base}:w:{window}"


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


def _unescape_part(text: str) -> str:
    """The inverse of :func:`~costrouter.config.budget_ref.key_part`."""
    return text.replace("%7D", "}").replace("%7B", "{").replace("%3A", ":").replace("%25", "%")


def window_pattern(prefix: str, budget: BudgetRef, window: str) -> tuple[str, str, str]:
    """The SCAN pattern of every instance's ``window`` hash of ``budget``, and the text around the id."""
    key = window_key(budget_key(prefix, replace(budget, scope_id=_SENTINEL)), window)
    head, tail = key.split(_SENTINEL)
    return f"{_glob_escape(head)}*{_glob_escape(tail)}", head, tail


def _keys(client: SyncClient, pattern: str, limit: int) -> Iterator[list[str]]:
    page: list[str] = []
    for seen, key in enumerate(client.scan_iter(match=pattern, count=PAGE), start=1):
        page.append(key if isinstance(key, str) else key.decode())
        if len(page) == PAGE or seen >= limit:
            yield page
            page = []
        if seen >= limit:
            return
    if page:
        yield page


def scan_top(
    client: SyncClient, prefix: str, budget: BudgetRef, window: str, n: int, *, limit: int = MAX_KEYS
) -> TopScan:
    """The ``n`` largest ``(scope_id, spent)`` of ``budget`` in ``window``, by scanning its window hashes."""
    pattern, head, tail = window_pattern(prefix, budget, window)
    best: list[tuple[int, str]] = []
    scanned = 0
    for page in _keys(client, pattern, limit):
        scanned += len(page)
        pipe = client.pipeline(transaction=False)
        for key in page:
            pipe.hget(key, "spent")
        for key, spent in zip(page, pipe.execute(), strict=True):
            if key.startswith(head) and key.endswith(tail) and spent is not None and n > 0:
                entry = (int(spent), _unescape_part(key[len(head) : len(key) - len(tail)]))
                if entry[0] <= 0:
                    continue
                if len(best) < n:
                    heapq.heappush(best, entry)
                elif entry > best[0]:
                    heapq.heapreplace(best, entry)
    ranked = [(scope_id, spent) for spent, scope_id in sorted(best, reverse=True)]
    return TopScan(ranked, scanned, complete=scanned < limit)
