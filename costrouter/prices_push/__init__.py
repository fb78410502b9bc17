"""Push deployment prices to observability backends that price spans themselves.

``costrouter prices push phoenix URL`` registers each model's prices as Phoenix custom
models, so Phoenix's cost equals costrouter's. One module per backend; :data:`TARGETS`
names them and :func:`register_target` adds one.
"""

from __future__ import annotations

from costrouter.prices_push.phoenix import PushError
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
