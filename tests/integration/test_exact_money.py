"""Cheap calls priced exactly, end to end: span, budget counter (every store, leases on) and report.

A $1e-7 a token chat model and a $2e-8 a token embedding model on the provider double, 1,000
calls on one session budget. Rounded to whole micro-dollars per call (costrouter 0.2), the chat
call's $1.5e-6 was charged $2e-6 and an embedding of fewer than 25 tokens $0; in nano-dollars
with prices in atto-dollars every figure is the exact product.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from costrouter import CostRouter
from costrouter.budget import BudgetPolicy
from costrouter.budget.redis import RedisBudgetStore
from costrouter.cli.commands import app
from costrouter.config.settings import Settings
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.otel.exporters import configure_telemetry
from costrouter.otel.span_file import read_span_records
from costrouter.testing import ProviderDouble, Reply
from tests.integration.budget_backends import BACKENDS

CHAT_PRICE = 1e-7
EMBED_PRICE = 2e-8
CHAT_UNITS_PER_TOKEN = 100  # $1e-7 in nano-dollars
EMBED_UNITS_PER_TOKEN = 20  # $2e-8 in nano-dollars
CALLS = 1_000
MESSAGES = [{"role": "user", "content": "a cheap question"}]
WORDS = ["tide", "gull", "reef", "buoy", "kelp", "dune", "cove", "spit", "surf", "salt", "mist", "foam"]


def cheap_config(base_url: str) -> dict[str, Any]:
    def deployment(deployment_id: str, model: str, mode: str, in_price: float, out_price: float) -> dict[str, Any]:
        return {
            "id": deployment_id,
            "model": f"openai/{model}",
            "api_base": base_url,
            "api_key": "test-key",
            "input_cost_per_token": in_price,
            "output_cost_per_token": out_price,
            "mode": mode,
        }

    return {
        "router": {"num_retries": 0},
        "groups": {
            "chat": {"deployments": [deployment("local-chat", "local-chat", "chat", CHAT_PRICE, CHAT_PRICE)]},
            "embed": {"deployments": [deployment("local-embed", "local-embed", "embedding", EMBED_PRICE, 0.0)]},
        },
    }


@pytest.fixture(params=[*BACKENDS, pytest.param("redis-leases", id="redis-leases")])
def store(request: pytest.FixtureRequest) -> dict[str, Any]:
    kind = request.param
    prefix = f"t{uuid.uuid4().hex[:10]}"
    if kind == "memory":
        return {"backend": "memory"}
    if kind == "redis-cluster":
        url = request.getfixturevalue("redis_cluster_url")
        return {"backend": "redis", "redis_url": url, "key_prefix": prefix, "cluster": True}
    url = request.getfixturevalue("redis_url")
    lease = {"lease": {"enabled": True}} if kind == "redis-leases" else {}
    return {"backend": "redis", "redis_url": url, "key_prefix": prefix, **lease}


@pytest.fixture
def provider() -> Iterator[ProviderDouble]:
    with ProviderDouble() as double:
        double.set_default("local-chat", Reply(prompt_tokens=7, completion_tokens=8))
        yield double


def exact_units(attributes: dict[str, Any]) -> int:
    """The call's cost worked out by hand: tokens x price, in nano-dollars."""
    if attributes[sc.ROUTER_DEPLOYMENT_ID] == "local-embed":
        return attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] * EMBED_UNITS_PER_TOKEN
    tokens = attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] + attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS]
    return tokens * CHAT_UNITS_PER_TOKEN


def test_a_thousand_cheap_calls_add_up_exactly_on_the_span_the_budget_and_the_report(
    provider: ProviderDouble, store: dict[str, Any], tmp_path: Path
) -> None:
    span_file = tmp_path / "spans.jsonl"
    budgets = {"store": store, "budgets": [{"scope": "session", "limit_usd": 1.0, "window": "total"}]}
    setup = configure_telemetry(Settings(exporter="file", export_file=str(span_file)), set_global=False)
    router = CostRouter(
        cheap_config(provider.base_url),
        budgets=budgets,
        tracer_provider=setup.tracer_provider,
        meter_provider=setup.meter_provider,
    )
    for i in range(CALLS):
        if i % 2:
            router.route_completion("chat", MESSAGES, max_tokens=8, session_id="cheap")
        else:  # 1 to 24 words: the double bills a token a word, $2e-8 to $4.8e-7
            words = [WORDS[(i + n) % len(WORDS)] for n in range(1 + i % 24)]
            router.route_embedding("embed", input=[" ".join(words)], session_id="cheap")
    (budget,) = BudgetPolicy.model_validate(budgets).budgets_for(session_id="cheap")
    if store["backend"] == "memory":
        assert router.store is not None
        status = router.store.status(budget)
    router.shutdown()
    assert setup.shutdown(timeout=30)
    if store["backend"] == "redis":  # read after the router gave its lease back and settled everything
        with RedisBudgetStore(BudgetPolicy.model_validate(budgets).store) as fresh:
            status = fresh.status(budget)

    spans = [record for record in read_span_records(span_file) if record["attributes"].get(sc.SESSION_ID) == "cheap"]
    calls = [span for span in spans if span["attributes"].get(sc.LLM_USAGE_COST_USD) is not None]
    assert len(calls) == CALLS
    total = 0
    for span in calls:
        attributes = span["attributes"]
        units = exact_units(attributes)
        cost = attributes[sc.LLM_USAGE_COST_USD]
        assert cost > 0
        assert math.isclose(cost, units / 1e9, rel_tol=1e-9)
        assert cost == units / 10**9  # the nearest double to the exact product
        total += units
    assert status.spent_units == total  # to the unit: every call's exact cost, no per-call rounding
    assert status.held_units == 0

    report = CliRunner().invoke(app, ["report", str(span_file), "--format", "json", "--by", "session"])
    assert report.exit_code == 0, report.output
    totals = json.loads(report.stdout)["total"]
    assert totals["calls"] == CALLS
    assert usd_to_units(totals["cost_usd"]) == total
