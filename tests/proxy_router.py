"""The Router LiteLLM's proxy builds from a ``config.yaml``, built the way the proxy builds it.

LiteLLM's ``proxy/proxy_server.py`` cannot be imported in the dev environment (it needs the
``proxy`` extra: ``websockets``, ``apscheduler`` …), so this follows ``ProxyConfig.load_config``
of the installed LiteLLM step by step, with LiteLLM's own helpers, for the part that makes
the Router:

1. ``get_config``: ``yaml.safe_load`` of the file, its ``include`` files merged in with LiteLLM's
   own ``resolve_includes`` (``_process_includes``), then every ``os.environ/`` value resolved
   with ``get_secret`` (``_check_for_os_environ_vars``);
2. ``litellm_settings.custom_provider_map``: each handler loaded with ``get_instance_fn``
   relative to the file, ``litellm.custom_provider_map`` set, ``custom_llm_setup()``;
3. ``router_params = {"cache_responses": litellm.cache is not None}``, the ``model_list``,
   and every ``router_settings`` key in ``Router.get_valid_args()`` minus
   ``ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG`` (others are ignored with a warning);
4. ``litellm.Router(**router_params, router_general_settings=RouterGeneralSettings(async_only_mode=True),
   ignore_invalid_deployments=True, ...)``.

Left out: the other ``litellm_settings`` keys (process-wide module settings, not the Router's),
the proxy's database, guardrails and access checks, which do not change the Router's
deployments or settings.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import litellm
import yaml
from litellm.constants import ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG
from litellm.proxy.common_utils.config_includes import resolve_include_file_path, resolve_includes
from litellm.proxy.types_utils.utils import get_instance_fn
from litellm.router import Router
from litellm.secret_managers.main import get_secret
from litellm.types.router import RouterGeneralSettings
from litellm.utils import custom_llm_setup


def _resolved(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _resolved(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item) if isinstance(item, dict) else item for item in value]
    if isinstance(value, str) and value.startswith("os.environ/"):
        return get_secret(value)
    return value


def proxy_config(path: Path) -> dict[str, Any]:
    """The file as the proxy reads it: ``yaml.safe_load``, then its ``_process_includes`` (LiteLLM's own merge)."""
    root = os.path.abspath(path)
    with path.open(encoding="utf-8") as file:
        config = yaml.safe_load(file)

    async def read(location: str) -> Mapping[str, object]:
        text = await asyncio.to_thread(Path(location).read_text, encoding="utf-8")
        return dict(yaml.safe_load(text))

    def resolve(entry: str, declared_in: str) -> str:
        return resolve_include_file_path(entry, declared_in, root)

    return dict(asyncio.run(resolve_includes(config=config, location=root, resolve=resolve, read=read)))


def deployments_of(router: Router) -> list[dict[str, Any]]:
    """A Router's deployments: ``registry().all()`` where LiteLLM has it (1.110 deprecates ``model_list``)."""
    registry = getattr(router, "registry", None)
    return list(registry().all() if callable(registry) else router.model_list)


def setting_of(router: Router, name: str) -> Any:
    """A Router setting by its attribute, on every LiteLLM (1.110 deprecates the attributes for accessors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(router, name)


def proxy_router(path: Path) -> Router:
    """The Router LiteLLM's proxy would serve ``path`` with."""
    config = _resolved(proxy_config(path))
    for item in (config.get("litellm_settings") or {}).get("custom_provider_map") or []:
        handler = get_instance_fn(item["custom_handler"], config_file_path=str(path))
        litellm.custom_provider_map = [
            *(entry for entry in litellm.custom_provider_map if entry["provider"] != item["provider"]),
            {"provider": item["provider"], "custom_handler": handler},
        ]
        custom_llm_setup()  # type: ignore[no-untyped-call]
    router_params: dict[str, Any] = {"cache_responses": litellm.cache is not None}
    if config.get("model_list"):
        router_params["model_list"] = config["model_list"]
    available = [arg for arg in Router.get_valid_args() if arg not in ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG]
    router_params.update({k: v for k, v in (config.get("router_settings") or {}).items() if k in available})
    return Router(
        **router_params,
        router_general_settings=RouterGeneralSettings(async_only_mode=True),
        ignore_invalid_deployments=True,
    )
