"""A real Arize Phoenix shows costrouter's cost, tokens, session and user, one LLM call per routed call.

Phoenix runs from ``.phoenix-venv`` (``.ci/run`` installs it); costrouter's own OTLP exporter
sends the spans; the assertions read Phoenix's GraphQL API back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from costrouter import CostRouter
from costrouter.cli.commands import app
from costrouter.config.groups import parse_router_config
from costrouter.config.settings import Settings
from costrouter.otel import semconv as sc
from costrouter.otel.exporters import configure_telemetry
from costrouter.prices_push import push_prices
from costrouter.prices_push.command import PENDING_EXIT
from costrouter.testing import Fail, ProviderDouble, Reply
from tests.integration.phoenix_server import PhoenixServer

PROJECT = "costrouter-phoenix-test"
PROBE_PROJECT = "costrouter-phoenix-probe"
PRESET_PROJECT = "costrouter-phoenix-preset"
MESSAGES = [{"role": "user", "content": "what is the capital of France"}]


def _deployment(deployment_id: str, model: str, base_url: str, **prices: Any) -> dict[str, Any]:
    return {"id": deployment_id, "model": model, "api_base": base_url, "api_key": "test-key", **prices}


def phoenix_config(base_url: str) -> dict[str, Any]:
    """Custom, self-hosted and public (price map) prices; a retrying group; a group that falls back."""
    return {
        "router": {"num_retries": 1, "retry_after": 0},
        "groups": {
            "custom": {
                "deployments": [
                    _deployment(
                        "custom-1",
                        "openai/custom-model",
                        base_url,
                        input_cost_per_token=1e-6,
                        output_cost_per_token=3e-6,
                    )
                ]
            },
            "selfhosted": {
                "deployments": [
                    _deployment(
                        "local-llama",
                        "openai/local-llama",
                        base_url,
                        input_cost_per_token=1e-7,
                        output_cost_per_token=2e-7,
                    )
                ]
            },
            "public": {"deployments": [_deployment("public-mini", "openai/gpt-4o-mini", base_url)]},
            "flaky": {
                "deployments": [
                    _deployment(
                        "flaky-1", "openai/flaky-model", base_url, input_cost_per_token=2e-6, output_cost_per_token=4e-6
                    )
                ],
                "fallbacks": ["custom"],
            },
        },
    }


@pytest.fixture(scope="module")
def phoenix() -> Iterator[PhoenixServer]:
    with PhoenixServer() as server:
        yield server


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderDouble]:
    with ProviderDouble() as double:
        yield double


def _priced(span: dict[str, Any]) -> bool:
    summary = span.get("costSummary") or {}
    return (summary.get("total") or {}).get("cost") is not None


def _wait_for_llm_spans(
    phoenix: PhoenixServer, count: int, *, priced: bool = False, project: str = PROJECT
) -> list[dict[str, Any]]:
    """The project's LLM spans once ``count`` are in (and, with ``priced``, Phoenix has costed each).

    Phoenix writes a span's cost after the span itself, from its own insertion queue, so a span
    can be listed before its cost summary is: on a loaded machine that gap was seen in CI.
    """
    deadline = time.monotonic() + 60
    while True:
        spans = [span for span in phoenix.project_spans(project) if span["spanKind"] == "llm"]
        ready = len(spans) >= count and (not priced or all(_priced(span) for span in spans))
        if ready or time.monotonic() > deadline:
            return spans
        time.sleep(0.5)


def _wait_until_phoenix_applies_the_prices(phoenix: PhoenixServer, config: Any) -> None:
    """Route probe calls to a project of their own until Phoenix prices one.

    Phoenix reads custom model prices into memory on a clock (every 5 s in 20.26), and a span
    ingested before that read is never priced; a loaded fresh-clone run hit that gap once.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        setup = configure_telemetry(Settings(exporter="otlp", project_name=PROBE_PROJECT), set_global=False)
        router = CostRouter(config, tracer_provider=setup.tracer_provider, meter_provider=setup.meter_provider)
        router.route_completion("custom", MESSAGES, max_tokens=20)  # a model only the push prices
        router.shutdown()
        assert setup.shutdown(timeout=30)
        time.sleep(1)
        if any(_priced(span) for span in phoenix.project_spans(PROBE_PROJECT) if span["spanKind"] == "llm"):
            return
    raise AssertionError("Phoenix priced no probe span within 60 s of the price push")


def test_phoenix_shows_costrouters_cost_after_the_price_push(
    phoenix: PhoenixServer, provider: ProviderDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_router_config(phoenix_config(provider.base_url))
    dry = push_prices(config, "phoenix", phoenix.url)
    assert {change.action for change in dry.changes} == {"create"}
    applied = push_prices(config, "phoenix", phoenix.url, apply=True)
    assert len(applied.pending) == 4
    again = push_prices(config, "phoenix", phoenix.url)
    assert again.pending == []  # idempotent

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix.url)
    _wait_until_phoenix_applies_the_prices(phoenix, config)
    setup = configure_telemetry(Settings(exporter="otlp", project_name=PROJECT), set_global=False)
    router = CostRouter(config, tracer_provider=setup.tracer_provider, meter_provider=setup.meter_provider)
    provider.script("custom-model", Fail(429, retry_after=0.01), Reply(completion_tokens=7))  # a retry
    provider.set_default("flaky-model", Fail(500))  # a fallback to custom
    calls = [
        ("custom", "sess-p", "alice"),
        ("selfhosted", "sess-p", "alice"),
        ("public", "sess-q", "bob"),
        ("flaky", "sess-q", "bob"),
    ]
    for group, session, user in calls:
        router.route_completion(group, MESSAGES, max_tokens=20, session_id=session, user_id=user)
    assert setup.shutdown(timeout=30)

    spans = _wait_for_llm_spans(phoenix, len(calls), priced=True)
    assert PROJECT in phoenix.project_names()
    # One LLM call per routed call: the attempt spans of the calls that retried (2) or fell back (3)
    # are CHAIN steps; a call whose one attempt succeeded carries it on its LLM span.
    assert len(spans) == len(calls)
    chains = [span for span in phoenix.project_spans(PROJECT) if span["name"].startswith(sc.ATTEMPT_SPAN_NAME_PREFIX)]
    assert len(chains) == 2 + 3
    assert {span["spanKind"] for span in chains} == {"chain"}
    for span in spans:
        attributes = span["attributes"]
        ours = attributes["llm"]["usage"]["cost_usd"]
        assert _priced(span), f"Phoenix did not price {span['name']} within 60 s: {span.get('costSummary')}"
        # Both are the exact product of tokens and prices: Phoenix's in its own double arithmetic
        # (prompt and completion apart, then summed), costrouter's the nearest double to it.
        # Seen: Phoenix 3.0000000000000004e-05 for an exact $3e-5 (9 x 1e-6 + 7 x 3e-6 in doubles).
        assert math.isclose(span["costSummary"]["total"]["cost"], ours, rel_tol=1e-15), span["name"]
        assert ours > 0
        assert span["tokenCountPrompt"] == attributes["gen_ai"]["usage"]["input_tokens"]
        assert span["tokenCountCompletion"] == attributes["gen_ai"]["usage"]["output_tokens"]
    users = sorted(span["attributes"]["user"]["id"] for span in spans)
    assert users == ["alice", "alice", "bob", "bob"]
    assert phoenix.sessions(PROJECT) == {"sess-p": 2, "sess-q": 2}


def test_the_phoenix_preset_writes_openinference_names_only_and_phoenix_shows_the_same(
    phoenix: PhoenixServer, provider: ProviderDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``COSTROUTER_BACKEND=phoenix`` leaves the GenAI and LiteLLM names out.

    Phoenix still shows the cost, the tokens, the session and the user of each call.
    """
    config = parse_router_config(phoenix_config(provider.base_url))
    push_prices(config, "phoenix", phoenix.url, apply=True)  # a no-op when the test above pushed them
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix.url)
    _wait_until_phoenix_applies_the_prices(phoenix, config)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", phoenix.url)
    monkeypatch.setenv("PHOENIX_PROJECT_NAME", PRESET_PROJECT)
    settings = Settings(exporter="otlp", backend="phoenix")
    setup = configure_telemetry(settings, set_global=False)
    router = CostRouter(
        config, tracer_provider=setup.tracer_provider, meter_provider=setup.meter_provider, settings=settings
    )
    provider.set_default("flaky-model", Fail(500))  # a fallback to custom: its attempts are CHAIN steps
    for group in ("custom", "flaky"):
        router.route_completion(group, MESSAGES, max_tokens=20, session_id="sess-r", user_id="carol")
    assert setup.shutdown(timeout=30)

    spans = _wait_for_llm_spans(phoenix, 2, priced=True, project=PRESET_PROJECT)
    assert len(spans) == 2
    everything = phoenix.project_spans(PRESET_PROJECT)
    assert {span["spanKind"] for span in everything if span["name"].startswith(sc.ATTEMPT_SPAN_NAME_PREFIX)} == {
        "chain"
    }
    for span in everything:
        assert "gen_ai" not in span["attributes"], span["attributes"]["gen_ai"]
    for span in spans:
        attributes = span["attributes"]
        ours = attributes["llm"]["usage"]["cost_usd"]
        assert _priced(span), f"Phoenix did not price {span['name']} within 60 s: {span.get('costSummary')}"
        assert abs(span["costSummary"]["total"]["cost"] - ours) <= 0.5e-6 + 1e-12, span["name"]
        assert span["tokenCountPrompt"] == attributes["llm"]["token_count"]["prompt"] > 0
        assert span["tokenCountCompletion"] == attributes["llm"]["token_count"]["completion"] > 0
        assert attributes["user"]["id"] == "carol"
    assert phoenix.sessions(PRESET_PROJECT) == {"sess-r": 2}


def test_the_command_is_a_dry_run_until_apply(phoenix: PhoenixServer, tmp_path: Path) -> None:
    config_file = tmp_path / "router.yaml"
    config = {"groups": {"cmd": {"deployments": [_deployment("cmd-1", "openai/cmd-model", "http://127.0.0.1:9/v1")]}}}
    config["groups"]["cmd"]["deployments"][0].update(input_cost_per_token=5e-6, output_cost_per_token=1.5e-5)
    config_file.write_text(yaml.safe_dump(config))
    runner = CliRunner()
    arguments = ["prices", "push", "phoenix", phoenix.url, "--config", str(config_file)]

    dry = runner.invoke(app, arguments)
    assert dry.exit_code == PENDING_EXIT, dry.output
    assert "+ cmd-model" in dry.output
    assert "prompt.input: 5 USD/1M" in dry.output
    applied = runner.invoke(app, [*arguments, "--apply"])
    assert applied.exit_code == 0, applied.output
    assert "applied 1 change(s)" in applied.output
    config["groups"]["cmd"]["deployments"][0]["output_cost_per_token"] = 2e-5
    config_file.write_text(yaml.safe_dump(config))
    changed = runner.invoke(app, arguments)
    assert changed.exit_code == PENDING_EXIT
    assert "~ cmd-model" in changed.output
    assert "completion.output: 15 -> 20 USD/1M" in changed.output
    runner.invoke(app, [*arguments, "--apply"])
    in_sync = runner.invoke(app, arguments)
    assert in_sync.exit_code == 0, in_sync.output
    assert "= cmd-model" in in_sync.output


def test_an_unreachable_backend_is_a_clear_error(tmp_path: Path) -> None:
    config_file = tmp_path / "router.yaml"
    config_file.write_text(yaml.safe_dump(phoenix_config("http://127.0.0.1:9/v1")))
    result = CliRunner().invoke(app, ["prices", "push", "phoenix", "http://127.0.0.1:9", "--config", str(config_file)])
    assert result.exit_code == 1
    assert "phoenix at http://127.0.0.1:9" in result.output
