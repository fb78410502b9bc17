"""costrouter: every LLM call routed through LiteLLM, traced, priced and held to a budget.

>>> from costrouter import CostRouter, context
>>> router = CostRouter.from_files("configs/router.yaml", budgets="configs/budgets.yaml")
>>> router.route_completion("fast", [{"role": "user", "content": "hi"}], session_id="sess-1")
"""

from __future__ import annotations

import os

# Without network, LiteLLM's import would try to download its price map, retrying with
# sleeps; costrouter prices from the file first, so the bundled map is the right default.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from costrouter._default import aroute_completion, default_router, route_completion
from costrouter._version import __version__
from costrouter.context import Caller, context, current_caller
from costrouter.errors import (
    BudgetExceededError,
    BudgetStoreError,
    ConfigError,
    CostRouterError,
)
from costrouter.router import CostRouter

__all__ = [
    "BudgetExceededError",
    "BudgetStoreError",
    "Caller",
    "ConfigError",
    "CostRouter",
    "CostRouterError",
    "__version__",
    "aroute_completion",
    "context",
    "current_caller",
    "default_router",
    "route_completion",
]
