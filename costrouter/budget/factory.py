"""Build the budget store that a policy's ``store`` section asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from costrouter.budget.leases import LeasedStore
from costrouter.budget.memory import MemoryBudgetStore
from costrouter.budget.redis import RedisBudgetStore

if TYPE_CHECKING:
    from costrouter.budget.policy import StoreConfig
    from costrouter.budget.store import BudgetStore


def store_from_config(config: StoreConfig, *, redis_url: str | None = None) -> BudgetStore:
    """A :class:`MemoryBudgetStore` or a :class:`RedisBudgetStore`, per ``config.backend``.

    With ``lease.enabled`` the Redis store is wrapped in a :class:`LeasedStore`.

    ``redis_url`` (say, from ``COSTROUTER_REDIS_URL``) wins over ``config.redis_url``;
    it does not change the backend.
    """
    if config.backend == "redis":
        store = RedisBudgetStore(config, url=redis_url)
        return LeasedStore(store) if config.lease.enabled else store
    return MemoryBudgetStore(config)
