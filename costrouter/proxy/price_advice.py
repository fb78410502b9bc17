"""Deployments of a proxy config whose prices LiteLLM registers again on every call.

The proxy hands a deployment's ``litellm_params`` to LiteLLM's ``completion()`` on every call.
When they hold both per-token prices, or a per-second one, ``completion()`` registers them
(``_register_custom_pricing_for_request``), and each registration clears LiteLLM's model-info
caches for the whole process: on the Router costrouter builds, 8.9 M of a 23.0 M instruction call
(``docs/cost.md``). Prices in ``model_info`` are registered once, under the deployment's id, and
give the same ``response_cost``; costrouter reads them from either place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from costrouter.config.groups import RouterConfig, deployment_id_of

_PER_TOKEN: Final = frozenset({"input_cost_per_token", "output_cost_per_token"})
_PER_SECOND: Final = frozenset({"input_cost_per_second", "output_cost_per_second", "cost_per_second"})


def registered_every_call(litellm_params: Mapping[str, Any]) -> bool:
    """Whether ``completion()`` registers the prices of ``litellm_params`` on every call (LiteLLM's own test)."""
    given = {key for key, value in litellm_params.items() if value is not None}
    return given >= _PER_TOKEN or bool(given & _PER_SECOND)


def deployments_priced_every_call(config: RouterConfig) -> list[str]:
    """The ids of the deployments whose ``litellm_params`` prices LiteLLM registers on every call."""
    return [
        deployment_id_of(name, index, deployment)
        for name, group in config.groups.items()
        for index, deployment in enumerate(group.deployments)
        if registered_every_call(deployment.litellm_params)
    ]


def advice(config: RouterConfig, path: str) -> str | None:
    """The start-up warning for ``config`` (loaded from ``path``), or ``None`` when no price is in the way."""
    ids = deployments_priced_every_call(config)
    if not ids:
        return None
    shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
    return (
        f"costrouter.proxy: {path}: deployments {shown} price in litellm_params, which LiteLLM's completion() "
        "registers again on every call, clearing its model-info caches for the whole process (on a Router, "
        "8.9 M of a 23.0 M instruction call); move the prices to each deployment's model_info: costrouter and "
        "LiteLLM's response_cost read them there the same (docs/proxy.md)"
    )
