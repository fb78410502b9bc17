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
    from costrouter._default import (
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
    from costrouter.router import CostRouter

_LAZY = {
    "CostRouter": "costrouter.router",
    "aroute_completion": "costrouter._default",
    "aroute_embedding": "costrouter._default",
    "aroute_image": "costrouter._default",
    "aroute_image_edit": "costrouter._default",
    "route_image_edit": "costrouter._default",
    "aroute_messages": "costrouter._default",
    "aroute_rerank": "costrouter._default",
    "route_rerank": "costrouter._default",
    "aroute_response": "costrouter._default",
    "aroute_speech": "costrouter._default",
    "route_speech": "costrouter._default",
    "aroute_text_completion": "costrouter._default",
    "aroute_transcription": "costrouter._default",
    "route_transcription": "costrouter._default",
    "default_router": "costrouter._default",
    "route_completion": "costrouter._default",
    "route_embedding": "costrouter._default",
    "route_image": "costrouter._default",
    "route_messages": "costrouter._default",
    "route_response": "costrouter._default",
    "route_text_completion": "costrouter._default",
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
