"""Which model group a requested name routes to, and the model a wildcard group calls for it.

A group whose name holds ``*`` is a pattern (``openai/*``, ``*``). LiteLLM's Router serves a
name no group has by the most specific pattern that matches it (also tried as
``{provider}/{name}``), and calls each of that group's deployments with the pattern's ``*``
filled in: ``openai/gpt-4o`` on a deployment ``openai/*`` calls ``openai/gpt-4o``. costrouter
resolves names with LiteLLM's own ``PatternMatchRouter``, so it holds and settles a call at the
prices of the model the call actually names, not at the pattern's.

The resolved group is the pattern: it names the span and the metrics (a bounded set, however
many models callers name); the model called is the span's ``gen_ai.request.model``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

try:  # LiteLLM 1.110 moved the pattern router out of router_utils; its API is the same
    from litellm.litellm_core_utils.pattern_match_deployments import PatternMatchRouter
except ImportError:  # LiteLLM 1.106-1.109
    from litellm.router_utils.pattern_match_deployments import PatternMatchRouter

from costrouter.config.groups import WILDCARD, Deployment, RouterConfig
from costrouter.otel.models import ModelFacts, model_facts
from costrouter.pricing.prices import Price, deployment_price

__all__ = ["GroupResolver", "Resolved"]

_MAX_REMEMBERED: Final = 4096
"""Names (and wildcard prices) remembered; past this each is worked out again, so callers naming
ever new models cost time, never memory."""


@dataclass(frozen=True)
class Resolved:
    """A requested name resolved: its group, the name LiteLLM is called with, the models a pattern fills in."""

    group: str
    requested: str
    models: Mapping[str, str] = field(default_factory=dict)
    """Deployment id -> the model it calls, for a wildcard group (empty for a named group)."""

    @property
    def wildcard(self) -> bool:
        """Whether a pattern served the name."""
        return bool(self.models)


class GroupResolver:
    """Resolves requested names to groups, and prices the model each wildcard deployment calls."""

    def __init__(self, config: RouterConfig) -> None:
        self._groups = frozenset(config.groups)
        self._deployments: dict[str, Deployment] = {}
        self._patterns = PatternMatchRouter()
        for group, deployment_id, deployment in config.deployments():
            if WILDCARD in group:
                self._deployments[deployment_id] = deployment
                entry = {"model_name": group, "litellm_params": {"model": deployment.model}}
                self._patterns.add_pattern(group, {**entry, "model_info": {"id": deployment_id}})
        self._resolved: dict[str, Resolved | None] = {}
        self._prices: dict[tuple[str, str], Price | None] = {}
        self._aliases = group_aliases(config.router.litellm_args.get("model_group_alias"))

    def resolve(self, name: str) -> Resolved | None:
        """The group serving ``name``; ``None`` if none does.

        LiteLLM's order: a ``model_group_alias`` first (it is resolved once, and LiteLLM is still
        called with the alias), then a group's own name, then a wildcard pattern.
        """
        target = self._aliases.get(name)
        if target is not None and target != name:
            resolved = self._resolve_name(target)
            return None if resolved is None else Resolved(resolved.group, name, resolved.models)
        return self._resolve_name(name)

    def _resolve_name(self, name: str) -> Resolved | None:
        if name in self._groups:
            return Resolved(name, name)
        if not self._deployments:
            return None
        if name in self._resolved:
            return self._resolved[name]
        matched = self._patterns.get_deployments_by_pattern(model=name)
        resolved = (
            Resolved(
                str(matched[0]["model_name"]),
                name,
                {str(item["model_info"]["id"]): str(item["litellm_params"]["model"]) for item in matched},
            )
            if matched
            else None
        )
        if len(self._resolved) < _MAX_REMEMBERED:
            self._resolved[name] = resolved
        return resolved

    def called(self, deployment_id: str, model: str) -> Deployment:
        """The wildcard deployment ``deployment_id`` as it calls ``model``."""
        return self._deployments[deployment_id].model_copy(update={"model": model})

    def price(self, deployment_id: str, model: str) -> Price | None:
        """The price of ``model`` on the wildcard deployment: the file's prices, else the price map's.

        ``None`` when neither has one (the budget policy's default price applies).
        """
        key = (deployment_id, model)
        if key in self._prices:
            return self._prices[key]
        price = deployment_price(self.called(deployment_id, model))
        if len(self._prices) < _MAX_REMEMBERED:
            self._prices[key] = price
        return price

    def facts(self, deployment_id: str, model: str, provider: str | None) -> ModelFacts:
        """What the span says of the model the wildcard deployment calls."""
        return model_facts(self.called(deployment_id, model), provider)


def group_aliases(model_group_alias: Any) -> dict[str, str]:
    """``router_settings.model_group_alias`` as alias -> group, both of its shapes.

    ``{"gpt-4": "gpt-4o"}`` and ``{"gpt-4": {"model": "gpt-4o", "hidden": true}}``, as LiteLLM's
    ``resolve_model_group_alias`` reads them; an entry of another shape is passed over, as LiteLLM
    passes it over.
    """
    if not isinstance(model_group_alias, Mapping):
        return {}
    aliases = {}
    for alias, entry in model_group_alias.items():
        target = entry.get("model") if isinstance(entry, Mapping) else entry
        if isinstance(alias, str) and isinstance(target, str) and target:
            aliases[alias] = target
    return aliases
