"""``costrouter prices push <target>``: the router's prices written into a backend that prices spans itself.

One module per target and a small registry. A target builds its price records from the router
config (a pure function, testable without the backend) and pushes them. Target modules are
imported when used: they need the price model, which imports LiteLLM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Final


@dataclass(frozen=True)
class Target:
    """A backend costrouter can push prices to: how to build the records, how to push them."""

    name: str
    build: Callable[..., Any]
    push: Callable[..., int]
    url_env: str
    key_env: str


TARGETS: Final[dict[str, tuple[str, str, str]]] = {
    "signoz": ("costrouter.prices_push.signoz", "SIGNOZ_URL", "SIGNOZ_API_KEY"),
}
"""Every push target: its module, the URL variable, the key variable."""


def target(name: str) -> Target:
    """The push target called ``name`` (``KeyError`` for an unknown one)."""
    module_name, url_env, key_env = TARGETS[name]
    module = import_module(module_name)
    return Target(name, module.pricing_rules, module.push, url_env, key_env)
