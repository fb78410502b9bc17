"""Which kind of call a deployment serves, and the error for a call of another kind."""

from __future__ import annotations

from collections.abc import Mapping

from costrouter.config.groups import Deployment
from costrouter.config.modes import canonical_mode
from costrouter.pricing.prices import price_map_entry, price_map_model
from costrouter.routing.operations.base import Operation


def deployment_mode(deployment: Deployment) -> str | None:
    """The deployment's ``mode``: the file's field (or a proxy's ``model_info.mode``), else the price map's.

    The price map's entry is its ``base_model``'s when it names one. ``None`` when nothing says
    (any kind of call is let through).
    """
    if deployment.mode is not None:
        return deployment.mode
    mode = (price_map_entry(price_map_model(deployment)) or {}).get("mode")
    return canonical_mode(str(mode)) if mode else None


def check_mode(operation: Operation, group: str, modes: Mapping[str, str | None]) -> None:
    """Refuse a call of ``operation``'s kind on a group whose deployments serve another kind."""
    wrong = {deployment: mode for deployment, mode in modes.items() if mode is not None and mode not in operation.modes}
    if wrong:
        served = ", ".join(f"{deployment} ({mode})" for deployment, mode in sorted(wrong.items()))
        kinds = ", ".join(sorted(operation.modes))
        message = f"model group {group!r} serves {served}: not a {operation.name} call (needs mode {kinds})"
        raise ValueError(message)
