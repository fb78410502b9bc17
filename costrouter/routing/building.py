"""Turn a :class:`RouterConfig` into a LiteLLM ``Router``."""

from __future__ import annotations

from typing import Any

from litellm.router import Router

from costrouter.config.groups import RouterConfig, deployment_id_of, resolve_secrets
from costrouter.errors import ConfigError, ConfigProblem
from costrouter.pricing.prices import deployment_price


def _orders(priorities: list[int]) -> dict[int, int]:
    """Map priorities (any integers, lower first) onto LiteLLM's ``order`` (1, 2, …)."""
    return {priority: rank + 1 for rank, priority in enumerate(sorted(set(priorities)))}


def build_model_list(config: RouterConfig, source: str = "<config>") -> list[dict[str, Any]]:
    """LiteLLM's ``model_list``: one entry per deployment, secrets resolved.

    Raises a ConfigError naming every missing environment variable.
    """
    problems: list[ConfigProblem] = []
    model_list = []
    for group_name, group in config.groups.items():
        orders = _orders([deployment.priority for deployment in group.deployments])
        for index, deployment in enumerate(group.deployments):
            location = f"groups.{group_name}.deployments[{index}]"
            params: dict[str, Any] = {**deployment.litellm_params, "model": deployment.model}
            optional = {
                "api_base": deployment.api_base,
                "api_key": deployment.api_key,
                "input_cost_per_token": deployment.input_cost_per_token,
                "output_cost_per_token": deployment.output_cost_per_token,
                "timeout": deployment.timeout,
                "stream_timeout": deployment.stream_timeout,
            }
            params.update({key: value for key, value in optional.items() if value is not None})
            if len(orders) > 1:
                params["order"] = orders[deployment.priority]
            params = resolve_secrets(params, location, source, problems)
            deployment_id = deployment_id_of(group_name, index, deployment)
            # Every resolved price reaches LiteLLM too, so its response_cost uses the same prices.
            price = deployment_price(deployment)
            rates = dict(price.rates) if price is not None else {}
            model_info = {**deployment.model_info, **rates, "id": deployment_id}
            model_list.append({"model_name": group_name, "litellm_params": params, "model_info": model_info})
    if problems:
        raise ConfigError(source, problems)
    return model_list


def build_litellm_router(config: RouterConfig, source: str = "<config>") -> Router:
    """A LiteLLM Router with the file's deployments, fallbacks and router settings."""
    settings = config.router
    fallbacks = [{name: list(group.fallbacks)} for name, group in config.groups.items() if group.fallbacks]
    arguments: dict[str, Any] = {
        "model_list": build_model_list(config, source),
        "num_retries": settings.num_retries,
        "retry_after": settings.retry_after,
        "routing_strategy": settings.routing_strategy,
        "fallbacks": fallbacks,
    }
    optional = {
        "allowed_fails": settings.allowed_fails,
        "cooldown_time": settings.cooldown_time,
        "timeout": settings.timeout,
    }
    arguments.update({key: value for key, value in optional.items() if value is not None})
    return Router(**arguments)
