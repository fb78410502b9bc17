"""Budgets: the stores that hold and settle spend, and what a routed call asks of them.

- ``store``: the interface; ``memory``: the embedded default; ``redis`` (+ ``lua/*.lua``, one script
  a file), ``redis_clients``, ``redis_batch``, ``redis_durable``: the Redis store; ``leases``,
  ``lease_message``, ``journal``, ``renewal``: per-process leases, the settle journal and hold renewal;
  ``factory``: the store a policy asks for;
- ``reserving``, ``settling``: a call's reserve and settle as flows of store ops, and what keeps the
  books whole when the store fails; ``view``: status by scope and id; ``alerts``: threshold alerts.

The policy file's models live in :mod:`costrouter.config.budgets` and are re-exported here.
Layer 4: imports the foundation, config, pricing and otel, never a higher layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from costrouter.budget.factory import store_from_config
from costrouter.budget.memory import MemoryBudgetStore
from costrouter.budget.store import BudgetStatus, BudgetStore, ReserveOutcome, SettleOutcome
from costrouter.config.budget_ref import GLOBAL_SCOPE_ID, BudgetRef
from costrouter.config.budgets import Budget, BudgetPolicy, CostSettings, Defaults, StoreConfig, load_policy
from costrouter.config.windows import Window, WindowSpec, parse_window, window_at, window_id

if TYPE_CHECKING:
    from costrouter.budget.redis import RedisBudgetStore

__all__ = [
    "GLOBAL_SCOPE_ID",
    "Budget",
    "BudgetPolicy",
    "BudgetRef",
    "BudgetStatus",
    "BudgetStore",
    "CostSettings",
    "Defaults",
    "MemoryBudgetStore",
    "RedisBudgetStore",
    "ReserveOutcome",
    "SettleOutcome",
    "StoreConfig",
    "Window",
    "WindowSpec",
    "load_policy",
    "parse_window",
    "store_from_config",
    "window_at",
    "window_id",
]


def __getattr__(name: str) -> Any:
    # redis-py is imported with the Redis store, on first use, not with the package.
    if name == "RedisBudgetStore":
        return importlib.import_module("costrouter.budget.redis").RedisBudgetStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
