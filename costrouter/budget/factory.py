"""Build the budget store that a policy's ``store`` section asks for, and tell which one a store is.

The Redis store (and redis-py with it) is imported only when a policy asks for it: a router
with memory budgets, or none, never loads ``redis``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, cast

from costrouter.budget.journal import journal_dir_for
from costrouter.budget.memory import MemoryBudgetStore

if TYPE_CHECKING:
    from pathlib import Path

    from costrouter.budget.leases import LeasedStore
    from costrouter.budget.redis import RedisBudgetStore
    from costrouter.budget.store import BudgetStore
    from costrouter.config.budgets import BudgetPolicy, StoreConfig


def store_from_config(config: StoreConfig, *, redis_url: str | None = None) -> BudgetStore:
    """A :class:`MemoryBudgetStore` or a :class:`RedisBudgetStore`, per ``config.backend``.

    With ``lease.enabled`` the Redis store is wrapped in a :class:`LeasedStore`.

    ``redis_url`` (say, from ``COSTROUTER_REDIS_URL``) wins over ``config.redis_url``;
    it does not change the backend.
    """
    if config.backend == "redis":
        from costrouter.budget.leases import LeasedStore  # noqa: PLC0415  (redis-py only when asked for)
        from costrouter.budget.redis import RedisBudgetStore  # noqa: PLC0415

        store = RedisBudgetStore(config, url=redis_url)
        return LeasedStore(store) if config.lease.enabled else store
    return MemoryBudgetStore(config)


def redis_store_of(store: BudgetStore) -> RedisBudgetStore | None:
    """The Redis store behind ``store`` (itself, or the one a lease holder wraps), else ``None``."""
    module = sys.modules.get("costrouter.budget.redis")  # not loaded: no Redis store exists
    inner = getattr(store, "inner", store)
    if module is None or not isinstance(inner, module.RedisBudgetStore):
        return None
    return cast("RedisBudgetStore", inner)


def leased_store_of(store: BudgetStore | None) -> LeasedStore | None:
    """``store`` if it serves from per-process leases, else ``None``."""
    module = sys.modules.get("costrouter.budget.leases")
    if module is None or not isinstance(store, module.LeasedStore):
        return None
    return cast("LeasedStore", store)


def journal_directory(policy: BudgetPolicy, store: BudgetStore) -> Path | None:
    """The journal directory of ``store``, or ``None`` (no journal: memory store, or ``journal_dir: null``)."""
    base = policy.store.journal_dir
    redis_store = redis_store_of(store)
    if base is None or redis_store is None:
        return None
    return journal_dir_for(base, redis_store.url, policy.store.key_prefix)
