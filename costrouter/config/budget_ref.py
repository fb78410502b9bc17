"""One budget instance (a budget of the policy applied to one scope id) and the hash tag of its keys.

The policy (:mod:`costrouter.config.budgets`) says which instances a call is charged to; the
stores (:mod:`costrouter.budget`) keep each instance's spend and holds under :func:`budget_key`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from costrouter.config.windows import WindowSpec

KEY_LAYOUT_VERSION: Final = "v2"
"""The layout of costrouter's Redis keys, written after the user's prefix in every key.

``v2`` (0.3): amounts in :data:`costrouter.money.UNITS_PER_USD` units. The unversioned layout
of 0.2 held micro-dollars; ``costrouter budget migrate`` carries it over
(:mod:`costrouter.budget.migrate`).
"""

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
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Every reserve and settle looks an instance up several times: its hash is computed once.
        fields = (self.name, self.scope, self.scope_id, self.window, self.limit_units, self.alert_at)
        object.__setattr__(self, "_hash", hash((*fields, self.on_exceeded, self.downgrade_to)))

    def __hash__(self) -> int:
        return self._hash

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_hash"]  # another process hashes strings with another seed
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__post_init__()


def key_part(text: str) -> str:
    """Escape the characters that delimit key parts and Redis Cluster hash tags."""
    return text.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D")


def layout_prefix(prefix: str) -> str:
    """The user's key prefix followed by the key layout version: ``prefix:v2``."""
    return f"{prefix}:{KEY_LAYOUT_VERSION}"


def budget_key(prefix: str, budget: BudgetRef) -> str:
    """The hash tag shared by every key of one budget instance: ``{prefix:v2:name:scope:id}``."""
    parts = (layout_prefix(prefix), key_part(budget.name), budget.scope, key_part(budget.scope_id))
    return "{" + ":".join(parts) + "}"
