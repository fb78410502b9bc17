"""Push deployment prices to observability backends that price spans themselves.

``costrouter prices push phoenix URL`` registers each model's prices as Phoenix custom
models, so Phoenix's cost equals costrouter's. One module per backend; :data:`TARGETS`
names them and :func:`register_target` adds one.

Layer 5: imports the foundation, config, pricing and otel, never routing, budgets or the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from costrouter.errors import PushError
    from costrouter.prices_push.plan import Change, Conflict, ModelPrice, PushPlan, model_prices
    from costrouter.prices_push.registry import TARGETS, PriceTarget, push_prices, register_target

__all__ = [
    "TARGETS",
    "Change",
    "Conflict",
    "ModelPrice",
    "PriceTarget",
    "PushError",
    "PushPlan",
    "model_prices",
    "push_prices",
    "register_target",
]

_HOMES = {
    "PushError": "transport",
    **dict.fromkeys(("Change", "Conflict", "ModelPrice", "PushPlan", "model_prices"), "plan"),
    **dict.fromkeys(("TARGETS", "PriceTarget", "push_prices", "register_target"), "registry"),
}


def __getattr__(name: str) -> Any:
    # The backends' clients load on first use, so `costrouter report` does not pay for them.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
