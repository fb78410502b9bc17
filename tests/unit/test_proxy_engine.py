"""The proxy plugin runs costrouter without a LiteLLM Router of its own: the proxy's is the only one.

Each LiteLLM Router adds its callbacks to every call made in its process, so a second,
unused Router in the proxy made each proxied call pay for two.
"""

from __future__ import annotations

import gc
from pathlib import Path

import litellm
import pytest
import yaml

from costrouter.proxy.plugin import CostRouterProxyHandler
from costrouter.routing.engine import CallEngine
from costrouter.routing.router import CostRouter


def _routers() -> list[litellm.Router]:
    """Every live LiteLLM Router (a list holds them: none is collected between two counts)."""
    gc.collect()
    return [item for item in gc.get_objects() if isinstance(item, litellm.Router)]


def _new(before: list[litellm.Router]) -> list[litellm.Router]:
    return [router for router in _routers() if not any(router is old for old in before)]


def test_the_plugin_built_from_the_proxy_config_holds_no_router(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "model_list": [
            {
                "model_name": "chat",
                "litellm_params": {
                    "model": "openai/chat-model",
                    "api_key": "sk-test",
                    "input_cost_per_token": 2e-6,
                    "output_cost_per_token": 4e-6,
                },
            }
        ]
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("CONFIG_FILE_PATH", str(path))
    monkeypatch.setenv("COSTROUTER_EXPORTER", "none")
    monkeypatch.delenv("COSTROUTER_BUDGETS", raising=False)
    before = _routers()

    handler = CostRouterProxyHandler()

    assert type(handler.router) is CallEngine
    assert not hasattr(handler.router, "litellm_router")
    assert handler.router.planner.prices.group_deployments["chat"]
    assert _new(before) == []
    handler.router.shutdown()


def test_a_cost_router_is_an_engine_with_its_own_router() -> None:
    before = _routers()
    config = {"model_list": [{"model_name": "chat", "litellm_params": {"model": "openai/chat-model", "api_key": "k"}}]}

    router = CostRouter(config)

    assert isinstance(router, CallEngine)
    assert isinstance(router.litellm_router, litellm.Router)
    (new,) = _new(before)
    assert new is router.litellm_router
    router.shutdown()
