"""Turn a :class:`RouterConfig` into a LiteLLM ``Router``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import litellm
from litellm import constants as litellm_constants
from litellm.llms.custom_llm import CustomLLM
from litellm.proxy.types_utils.utils import get_instance_fn
from litellm.router import Router
from litellm.types.llms.custom_llm import CustomLLMItem
from litellm.utils import custom_llm_setup

from costrouter.config.groups import RouterConfig, deployment_id_of, resolve_secrets
from costrouter.errors import ConfigError, ConfigProblem
from costrouter.pricing.prices import deployment_price

logger = logging.getLogger("costrouter")


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
        # A LiteLLM proxy file's own `order` values reach LiteLLM as written, as its proxy passes them.
        written_orders = any("order" in deployment.litellm_params for deployment in group.deployments)
        for index, deployment in enumerate(group.deployments):
            location = f"groups.{group_name}.deployments[{index}]"
            params: dict[str, Any] = {**deployment.litellm_params, "model": deployment.model}
            optional = {
                "api_base": deployment.api_base,
                "api_key": deployment.api_key,
                "timeout": deployment.timeout,
                "stream_timeout": deployment.stream_timeout,
            }
            params.update({key: value for key, value in optional.items() if value is not None})
            if len(orders) > 1 and not written_orders:
                params["order"] = orders[deployment.priority]
            params = resolve_secrets(params, location, source, problems)
            deployment_id = deployment_id_of(group_name, index, deployment)
            # Every resolved price reaches LiteLLM too, so its response_cost uses the same prices: in
            # model_info only, which the Router registers once under the deployment's id. A price in
            # litellm_params makes LiteLLM register it again on every call, and each registration
            # clears LiteLLM's model-info caches for every call of the process.
            price = deployment_price(deployment)
            rates = dict(price.rates) if price is not None else {}
            params = {key: value for key, value in params.items() if key not in rates}
            model_info = {**deployment.model_info, **rates, "id": deployment_id}
            model_list.append({"model_name": group_name, "litellm_params": params, "model_info": model_info})
    if problems:
        raise ConfigError(source, problems)
    return model_list


_PROXY_MANAGED: Final = frozenset(
    getattr(
        litellm_constants,
        "ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG",
        {"model_list", "search_tools", "assistants_config", "router_general_settings", "ignore_invalid_deployments"},
    )
)
"""Router arguments LiteLLM's proxy sets itself and ignores in ``router_settings``."""


def router_args(config: RouterConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """``router.litellm_args`` split into what the installed Router takes and what is left out, with why.

    Left out, as LiteLLM's proxy leaves them out: names ``Router.__init__`` does not take, and
    those the proxy sets itself.
    """
    valid = set(Router.get_valid_args())
    passed: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for key, value in config.router.litellm_args.items():
        if key in _PROXY_MANAGED:
            left_out[key] = "set by LiteLLM's proxy itself, not by its router_settings"
        elif key not in valid:
            left_out[key] = f"not an argument of the installed LiteLLM's Router (litellm {_litellm_version()})"
        else:
            passed[key] = value
    return passed, left_out


def _litellm_version() -> str:
    try:
        return version("litellm")
    except PackageNotFoundError:  # a source checkout of LiteLLM: no distribution metadata
        return "unknown"


def register_custom_providers(config: RouterConfig, source: str = "<config>") -> None:
    """Register the file's ``custom_provider_map`` with LiteLLM, as its proxy does at start.

    Each handler is ``module.instance``: a module file next to ``source``, else an importable
    module; it must be a ``litellm.CustomLLM``. LiteLLM keeps custom providers process-wide:
    an entry replaces an earlier one of the same provider. Raises a ConfigError naming each
    handler that does not load.
    """
    if not config.custom_provider_map:
        return
    problems: list[ConfigProblem] = []
    loaded: dict[str, CustomLLM] = {}
    for index, entry in enumerate(config.custom_provider_map):
        location = f"custom_provider_map[{index}].custom_handler"
        try:
            handler = get_instance_fn(entry.custom_handler, config_file_path=source if Path(source).is_file() else None)
        except (ImportError, AttributeError, OSError, SyntaxError) as exc:
            problems.append(ConfigProblem(location, f"cannot load {entry.custom_handler!r}: {exc}"))
            continue
        if not isinstance(handler, CustomLLM):
            kind = type(handler).__name__
            problems.append(ConfigProblem(location, f"{entry.custom_handler!r} is a {kind}, not a litellm.CustomLLM"))
            continue
        loaded[entry.provider] = handler
    if problems:
        raise ConfigError(source, problems)
    kept = [item for item in litellm.custom_provider_map if item.get("provider") not in loaded]
    added = [CustomLLMItem(provider=provider, custom_handler=handler) for provider, handler in loaded.items()]
    litellm.custom_provider_map = [*kept, *added]
    setup: Callable[[], None] = custom_llm_setup  # adds the providers to LiteLLM's provider lists
    setup()


def build_litellm_router(config: RouterConfig, source: str = "<config>") -> Router:
    """A LiteLLM Router with the file's deployments, fallbacks and router settings.

    ``router.litellm_args`` pass through (:func:`router_args`); what the Router does not take
    is left out with one warning, as LiteLLM's proxy does.
    """
    register_custom_providers(config, source)
    settings = config.router
    passed, left_out = router_args(config)
    if left_out:
        logger.warning(
            "costrouter: %s: router settings left out: %s",
            source,
            "; ".join(f"{key} ({reason})" for key, reason in left_out.items()),
        )
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
    problems: list[ConfigProblem] = []
    arguments.update(resolve_secrets(passed, "router.litellm_args", source, problems))
    if problems:
        raise ConfigError(source, problems)
    return Router(**arguments)
