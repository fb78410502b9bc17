"""Budgets: the policy file, windows, and the stores that hold and settle spend."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from costrouter.budget.factory import store_from_config
from costrouter.budget.memory import MemoryBudgetStore
from costrouter.budget.policy import Budget, BudgetPolicy, CostSettings, Defaults, StoreConfig, load_policy
from costrouter.budget.store import (
    GLOBAL_SCOPE_ID,
    BudgetRef,
    BudgetStatus,
    BudgetStore,
    ReserveOutcome,
    SettleOutcome,
)
from costrouter.budget.windows import Window, WindowSpec, parse_window, window_at, window_id

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
