"""A LiteLLM proxy config of Azure deployments with ``base_model``: every call at the base model's price."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import litellm
import pytest
from typer.testing import CliRunner

from costrouter import CostRouter
from costrouter.cli.commands import app
from costrouter.money import UNITS_PER_USD, units_to_usd
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, TelemetryCapture
from costrouter.testing.provider import count_prompt_tokens

MESSAGES = [{"role": "user", "content": "plan the route past the reef"}]

PROXY_CONFIG = """\
model_list:
  - model_name: o1
    litellm_params:
      model: azure/o_series/o1
      api_base: {api_base}
      api_key: test-key
      api_version: 2025-01-01-preview
    model_info:
      base_model: azure/o1
  - model_name: o3
    litellm_params:
      model: azure/o_series/prod-o3
      api_base: {api_base}
      api_key: test-key
      api_version: 2025-01-01-preview
      base_model: o3                      # no provider: LiteLLM prices it as azure/o3
    model_info:
      base_model: azure/o1                # litellm_params' base_model wins, as in LiteLLM's cost path
  - model_name: o4-mini
    litellm_params:
      model: azure/o4-mini-eastus
      api_base: {api_base}
      api_key: test-key
      api_version: 2025-01-01-preview
    model_info:
      base_model: azure/o4-mini
      mode: chat
"""
EXPECTED = {"o1": "azure/o1", "o3": "azure/o3", "o4-mini": "azure/o4-mini"}
"""Each group's price-map entry (LiteLLM's own)."""


def charged(entry: str, prompt_tokens: int, completion_tokens: int) -> float:
    """The cost at LiteLLM's price of ``entry``, exact, then to the budget unit as the span carries it."""
    prices = litellm.model_cost[entry]
    exact = prompt_tokens * Decimal(repr(prices["input_cost_per_token"])) + completion_tokens * Decimal(
        repr(prices["output_cost_per_token"])
    )
    return units_to_usd(int((exact * UNITS_PER_USD).to_integral_value(ROUND_HALF_UP)))


@pytest.fixture
def proxy_config(tmp_path: Path, provider: ProviderDouble) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(PROXY_CONFIG.format(api_base=provider.base_url.removesuffix("/v1")))
    return path


@pytest.fixture
def router(proxy_config: Path, provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    provider.reset()
    made = CostRouter.from_files(
        proxy_config, tracer_provider=capture.tracer_provider, meter_provider=capture.meter_provider
    )
    yield made
    made.shutdown()


def test_every_call_is_priced_at_its_base_model(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture, caplog: pytest.LogCaptureFixture
) -> None:
    for group in EXPECTED:
        router.route_completion(group, MESSAGES, max_tokens=50)

    spans = capture.call_spans()
    assert [request.model for request in provider.requests] == ["o1", "prod-o3", "o4-mini-eastus"]
    for span, (group, entry) in zip(spans, EXPECTED.items(), strict=True):
        attributes = dict(span.attributes or {})
        assert attributes[sc.ROUTER_GROUP] == group
        cost = charged(entry, count_prompt_tokens(MESSAGES), 8)
        assert cost > 0
        assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(cost, rel=1e-12)
    assert "priced at $0" not in caplog.text


def test_validate_shows_the_base_model_as_the_price_source(proxy_config: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(proxy_config)])

    assert result.exit_code == 0, result.output
    assert "base_model azure/o1" in result.stdout
    assert "base_model azure/o3" in result.stdout
    assert "base_model azure/o4-mini" in result.stdout
    assert "$15.00" in result.stdout  # azure/o1's input price per million, not $0.00
    assert "priced at $0" not in result.stderr


def test_a_deployment_the_map_prices_at_a_made_up_zero_is_warned_about(
    tmp_path: Path, provider: ProviderDouble, capture: TelemetryCapture, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: o1\n"
        "    litellm_params: {model: azure/o_series/o1, api_base: http://127.0.0.1:1, api_key: k}\n"
        "  - model_name: local\n"  # a self-hosted model LiteLLM prices at $0 on purpose
        "    litellm_params: {model: ollama/llama3.2, api_base: http://127.0.0.1:1}\n"
        "  - model_name: free-by-choice\n"
        "    litellm_params: {model: azure/o_series/o1, api_base: http://127.0.0.1:1, api_key: k,\n"
        "                     input_cost_per_token: 0, output_cost_per_token: 0}\n"
        "  - model_name: accepted\n"
        "    litellm_params: {model: azure/o_series/o1, api_base: http://127.0.0.1:1, api_key: k}\n"
        "    model_info: {prices_from_price_map: true}\n"
    )

    result = CliRunner().invoke(app, ["validate", str(path)])
    with caplog.at_level(logging.WARNING, logger="costrouter"):
        CostRouter.from_files(path, tracer_provider=capture.tracer_provider).shutdown()

    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "priced at $0" in line]
    assert len(warned) == 1
    assert "deployment o1-0 is priced at $0 by LiteLLM's price map" in warned[0]
    logged = [record.getMessage() for record in caplog.records if "priced at $0" in record.getMessage()]
    assert len(logged) == 1
    assert "o1-0" in logged[0]
