"""``costrouter prices push <target>``: the router's prices written into a backend that prices spans itself.

One module per target and a small registry. A target builds its price records from the router
config (a pure function, testable without the backend) and pushes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from costrouter.prices_push import signoz


@dataclass(frozen=True)
class Target:
    """A backend costrouter can push prices to: how to build the records, how to push them."""

    name: str
    build: Callable[..., signoz.RulePlan]
    push: Callable[..., int]
    url_env: str
    key_env: str


TARGETS: Final[dict[str, Target]] = {
    "signoz": Target("signoz", signoz.pricing_rules, signoz.push, "SIGNOZ_URL", "SIGNOZ_API_KEY"),
}
"""Every push target, by name."""
