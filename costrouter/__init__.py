"""costrouter: every LLM call routed through LiteLLM, traced, priced and held to a budget.

>>> from costrouter import CostRouter, context
>>> router = CostRouter.from_files("configs/router.yaml", budgets="configs/budgets.yaml")
>>> router.route_completion("fast", [{"role": "user", "content": "hi"}], session_id="sess-1")

Names that need LiteLLM (whose import takes seconds) load on first use, so tools that
only read configs, budgets or span files start at once.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# Without network, LiteLLM's import would try to download its price map, retrying with
# sleeps; costrouter prices from the file first, so the bundled map is the right default.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from costrouter._version import __version__
from costrouter.context import Caller, context, current_caller
from costrouter.errors import BudgetExceededError, BudgetStoreError, ConfigError, CostRouterError

if TYPE_CHECKING:
    from costrouter.routing.default import (
        aroute_completion,
        aroute_embedding,
        aroute_image,
        aroute_image_edit,
        aroute_messages,
        aroute_rerank,
        aroute_response,
        aroute_speech,
        aroute_text_completion,
        aroute_transcription,
        default_router,
        route_completion,
        route_embedding,
        route_image,
        route_image_edit,
        route_messages,
        route_rerank,
        route_response,
        route_speech,
        route_text_completion,
        route_transcription,
    )
    from costrouter.routing.router import CostRouter

_LAZY = {
    "CostRouter": "costrouter.routing.router",
    "aroute_completion": "costrouter.routing.default",
    "aroute_embedding": "costrouter.routing.default",
    "aroute_image": "costrouter.routing.default",
    "aroute_image_edit": "costrouter.routing.default",
    "route_image_edit": "costrouter.routing.default",
    "aroute_messages": "costrouter.routing.default",
    "aroute_rerank": "costrouter.routing.default",
    "route_rerank": "costrouter.routing.default",
    "aroute_response": "costrouter.routing.default",
    "aroute_speech": "costrouter.routing.default",
    "route_speech": "costrouter.routing.default",
    "aroute_text_completion": "costrouter.routing.default",
    "aroute_transcription": "costrouter.routing.default",
    "route_transcription": "costrouter.routing.default",
    "default_router": "costrouter.routing.default",
    "route_completion": "costrouter.routing.default",
    "route_embedding": "costrouter.routing.default",
    "route_image": "costrouter.routing.default",
    "route_messages": "costrouter.routing.default",
    "route_response": "costrouter.routing.default",
    "route_text_completion": "costrouter.routing.default",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'costrouter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "BudgetExceededError",
    "BudgetStoreError",
    "Caller",
    "ConfigError",
    "CostRouter",
    "CostRouterError",
    "__version__",
    "aroute_completion",
    "aroute_embedding",
    "aroute_image",
    "aroute_image_edit",
    "aroute_messages",
    "aroute_rerank",
    "aroute_response",
    "aroute_speech",
    "aroute_text_completion",
    "aroute_transcription",
    "context",
    "current_caller",
    "default_router",
    "route_completion",
    "route_embedding",
    "route_image",
    "route_image_edit",
    "route_messages",
    "route_rerank",
    "route_response",
    "route_speech",
    "route_text_completion",
    "route_transcription",
]
