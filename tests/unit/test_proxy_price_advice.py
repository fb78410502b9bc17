"""The proxy plugin warns at start-up of prices LiteLLM would register again on every call."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from costrouter.config.groups import parse_router_config
from costrouter.proxy.plugin import CostRouterProxyHandler
from costrouter.proxy.price_advice import advice, deployments_priced_every_call, registered_every_call

PRICES = {"input_cost_per_token": 2e-6, "output_cost_per_token": 4e-6}


def _deployment(name: str, deployment_id: str, params: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {"model": "openai/chat-model", "api_key": "sk-test", **params},
        "model_info": {"id": deployment_id, **info},
    }


def _config(*deployments: dict[str, Any]) -> dict[str, Any]:
    return {"model_list": list(deployments)}


@pytest.mark.parametrize(
    ("params", "registered"),
    [
        (PRICES, True),
        ({"input_cost_per_second": 0.001}, True),
        ({"output_cost_per_second": 0.001}, True),
        ({"cost_per_second": 0.001}, True),
        ({"input_cost_per_token": 2e-6}, False),  # LiteLLM registers per-token prices only in pairs
        ({"input_cost_per_token": 2e-6, "output_cost_per_token": None}, False),
        ({"model": "openai/chat-model"}, False),
    ],
)
def test_litellm_s_own_test_of_prices_registered_per_call(params: dict[str, Any], registered: bool) -> None:
    assert registered_every_call(params) is registered


def test_only_deployments_pricing_in_litellm_params_are_named() -> None:
    config = parse_router_config(
        _config(
            _deployment("chat", "slow-1", PRICES, {}),
            _deployment("chat", "fast-1", {}, PRICES),
            _deployment("other", "slow-2", {"cost_per_second": 0.001}, {}),
        )
    )
    assert deployments_priced_every_call(config) == ["slow-1", "slow-2"]
    message = advice(config, "config.yaml")
    assert message is not None
    assert "config.yaml: deployments slow-1, slow-2 price in litellm_params" in message
    assert "model_info" in message


def test_a_config_pricing_in_model_info_gets_no_advice() -> None:
    config = parse_router_config(_config(_deployment("chat", "fast-1", {}, PRICES)))
    assert advice(config, "config.yaml") is None


def test_a_long_list_is_cut_after_ten_ids() -> None:
    config = parse_router_config(_config(*(_deployment("chat", f"d{index}", PRICES, {}) for index in range(13))))
    message = advice(config, "config.yaml")
    assert message is not None
    assert "d0, d1, d2, d3, d4, d5, d6, d7, d8, d9 and 3 more price" in message


@pytest.mark.parametrize(("where", "warned"), [("litellm_params", True), ("model_info", False)])
def test_the_plugin_warns_once_at_start_up(
    where: str, warned: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    params, info = (PRICES, {}) if where == "litellm_params" else ({}, PRICES)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(_deployment("chat", "chat-primary", params, info))), encoding="utf-8")
    monkeypatch.setenv("CONFIG_FILE_PATH", str(path))
    monkeypatch.setenv("COSTROUTER_EXPORTER", "none")
    monkeypatch.delenv("COSTROUTER_BUDGETS", raising=False)
    with caplog.at_level(logging.WARNING, logger="costrouter"):
        handler = CostRouterProxyHandler()
    try:
        lines = [record.getMessage() for record in caplog.records if "price in litellm_params" in record.getMessage()]
        assert len(lines) == (1 if warned else 0)
        if warned:
            assert f"{path}: deployments chat-primary price in litellm_params" in lines[0]
        assert handler.router.planner.prices.group_deployments["chat"]  # priced either way
    finally:
        handler.router.shutdown()
