"""One budget instance (a budget of the policy applied to one scope id) and the hash tag of its keys.

The policy (:mod:`costrouter.config.budgets`) says which instances a call is charged to; the
stores (:mod:`costrouter.budget`) keep each instance's spend and holds under :func:`budget_key`.
"""

from __future__ import annotations

from dataclasses import dataclass

from costrouter.config.windows import WindowSpec

GLOBAL_SCOPE_ID = "*"
"""The scope id of a ``global`` budget."""


@dataclass(frozen=True)
class BudgetRef:
    """One budget instance: a budget of the policy applied to one scope id."""

    name: str
    scope: str
    scope_id: str
    window: WindowSpec
    limit_units: int
    alert_at: tuple[float, ...] = ()
    on_exceeded: str = "reject"
    downgrade_to: str | None = None


def key_part(text: str) -> str:
    """Escape the characters that delimit key parts and Redis Cluster hash tags."""
    return text.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D")


def budget_key(prefix: str, budget: BudgetRef) -> str:
    """The hash tag shared by every key of one budget instance: ``{prefix:name:scope:id}``."""
    parts = (prefix, key_part(budget.name), budget.scope, key_part(budget.scope_id))
    return "{" + ":".join(parts) + "}"
