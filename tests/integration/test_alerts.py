"""Budget alerts reach real HTTP receivers on loopback: signed webhook, Slack format, retries, failures, dedupe."""

from __future__ import annotations

import hmac
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from costrouter import CostRouter
from costrouter.budget import BudgetPolicy
from costrouter.budget.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from costrouter.cli.commands import app
from costrouter.testing import ProviderDouble, TelemetryCapture, WebhookReceiver
from tests.routing import router_config
from tests.workers.alert_calls import THRESHOLDS

ROOT = Path(__file__).resolve().parents[2]

MESSAGES = [{"role": "user", "content": "hello"}]
SECRET = "whsec-test-4f2a"


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def slack() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def policy(sinks: list[dict[str, Any]], store: dict[str, Any] | None = None, **alerts: Any) -> dict[str, Any]:
    """A session budget of 10 micro-dollars: one call crosses 50 % and 100 % (warn: calls go on)."""
    return {
        "store": store or {"backend": "memory"},
        "budgets": [
            {"name": "tiny", "scope": "session", "limit_usd": 0.00001, "on_exceeded": "warn", "alert_at": [0.5, 1.0]}
        ],
        "alerts": {"sinks": sinks, "backoff_seconds": 0.05, **alerts},
    }


def routed(provider: ProviderDouble, capture: TelemetryCapture, budgets: dict[str, Any], calls: int = 3) -> CostRouter:
    router = CostRouter(
        router_config(provider.base_url),
        budgets=budgets,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    for _ in range(calls):
        router.route_completion("fast", MESSAGES, max_tokens=10, session_id="s-alert")
    return router


def test_a_signed_webhook_and_a_slack_message_once_per_threshold(
    provider: ProviderDouble,
    capture: TelemetryCapture,
    hook: WebhookReceiver,
    slack: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider.reset()
    monkeypatch.setenv("COSTROUTER_TEST_ALERT_SECRET", SECRET)
    sinks = [
        {"type": "webhook", "url": hook.url, "secret": "os.environ/COSTROUTER_TEST_ALERT_SECRET"},
        {"type": "slack", "url": slack.url},
    ]
    router = routed(provider, capture, policy(sinks))
    assert router.alerts.flush()
    router.shutdown()
    received = hook.wait_for(2)
    assert len(received) == 2  # three calls, two thresholds: each sent once
    bodies = [request.json() for request in received]
    assert [body["threshold"] for body in bodies] == [0.5, 1.0]
    assert bodies[1]["exceeded"] is True
    assert {body["budget"] for body in bodies} == {"tiny"}
    assert {body["scope_id"] for body in bodies} == {"s-alert"}
    for request in received:
        timestamp = int(request.headers[TIMESTAMP_HEADER])
        expected = sign(SECRET, timestamp, request.body)
        assert hmac.compare_digest(request.headers[SIGNATURE_HEADER], expected)
        assert request.headers["Content-Type"] == "application/json"
    messages = [request.json() for request in slack.wait_for(2)]
    assert set(messages[0]) == {"text"}
    assert "budget *tiny* for session `s-alert` reached 50% of its limit" in messages[0]["text"]
    assert ":rotating_light:" in messages[1]["text"]
    assert router.alerts.stats.sent == 4
    assert router.alerts.stats.failed == 0


def test_a_receiver_that_answers_500_gets_the_same_alert_again(
    provider: ProviderDouble, capture: TelemetryCapture, hook: WebhookReceiver
) -> None:
    provider.reset()
    hook.answer(500, 503)
    router = routed(provider, capture, policy([{"type": "webhook", "url": hook.url}]), calls=1)
    assert router.alerts.flush()
    received = hook.wait_for(4)
    assert [request.status for request in received] == [500, 503, 200, 200]
    first_alert = [request.headers["X-Costrouter-Alert-Id"] for request in received[:3]]
    assert len(set(first_alert)) == 1
    assert (router.alerts.stats.sent, router.alerts.stats.retried, router.alerts.stats.failed) == (2, 2, 0)
    router.shutdown()


def test_receivers_that_are_down_or_always_fail_never_reach_the_call(
    provider: ProviderDouble, capture: TelemetryCapture, caplog: pytest.LogCaptureFixture
) -> None:
    provider.reset()
    failing = WebhookReceiver(default_status=500).start()
    down = WebhookReceiver().start()
    down_url = down.url
    down.stop()  # nothing listens on this port any more
    sinks = [
        {"type": "webhook", "url": failing.url, "name": "ops-hook"},
        {"type": "slack", "url": down_url, "name": "ops-slack"},
    ]
    try:
        with caplog.at_level(logging.WARNING, logger="costrouter.alerts"):
            router = routed(provider, capture, policy(sinks, max_attempts=3))  # no exception reaches the caller
            assert router.alerts.flush()
        assert len(failing.wait_for(6)) == 6  # two alerts, three tries each
    finally:
        failing.stop()
    stats = router.alerts.stats
    assert (stats.sent, stats.failed, stats.retried) == (0, 4, 8)
    failures = [record.getMessage() for record in caplog.records if "failed after 3 tries" in record.getMessage()]
    assert len(failures) == 4
    assert any("sink ops-hook failed after 3 tries: HTTP 500" in message for message in failures)
    assert any("sink ops-slack failed after 3 tries: ConnectionRefusedError" in message for message in failures)
    assert all("127.0.0.1" not in message for message in failures)  # a sink is named, its URL never shown
    points = capture.metric_points("costrouter.alerts")
    assert {(attributes["sink"], attributes["outcome"]) for attributes, _ in points} >= {
        ("ops-hook", "failed"),
        ("ops-slack", "failed"),
        ("ops-hook", "retried"),
    }
    router.shutdown()


def test_two_routers_sharing_redis_send_each_threshold_once(
    provider: ProviderDouble, capture: TelemetryCapture, hook: WebhookReceiver, redis_url: str
) -> None:
    provider.reset()
    store = {"backend": "redis", "redis_url": redis_url, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    budgets = policy([{"type": "webhook", "url": hook.url}], store)
    first = routed(provider, capture, budgets, calls=1)
    second = routed(provider, capture, budgets, calls=2)
    for router in (first, second):
        assert router.alerts.flush()
        router.shutdown()
    assert sorted(request.json()["threshold"] for request in hook.wait_for(2)) == [0.5, 1.0]
    assert len(hook.requests) == 2
    assert first.alerts.stats.sent + second.alerts.stats.sent == 2


@pytest.mark.parametrize("leases", ["1", "0"], ids=["leases", "per-call"])
def test_two_os_processes_sharing_redis_send_each_threshold_once(
    provider: ProviderDouble, hook: WebhookReceiver, redis_url: str, leases: str
) -> None:
    provider.reset()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    worker = "tests.workers.alert_calls"
    command = [sys.executable, "-m", worker, provider.base_url, redis_url, prefix, hook.url, "8", leases]
    workers = [
        subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=ROOT,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:  # both routers are built before either calls
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready", worker.communicate()[1][-3000:]
    results = []
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert len(provider.requests) == 16
    assert all(result["flushed"] for result in results)
    assert sum(result["sent"] for result in results) == len(THRESHOLDS)
    assert sum(result["failed"] + result["dropped"] for result in results) == 0
    bodies = [request.json() for request in hook.requests]
    assert sorted(body["threshold"] for body in bodies) == list(THRESHOLDS)
    assert len({body["id"] for body in bodies}) == len(THRESHOLDS)
    assert {(body["budget"], body["scope_id"], body["window_id"]) for body in bodies} == {
        ("shared", "shared-session", bodies[0]["window_id"])
    }


def test_sinks_never_show_their_url_or_secret() -> None:
    parsed = BudgetPolicy.model_validate(
        policy(
            [
                {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/canary-slack"},
                {"type": "webhook", "url": "https://ops.example/h", "secret": "canary-secret"},
            ]
        )
    )
    assert "canary" not in repr(parsed)
    assert "canary" not in str(parsed.alerts)


def test_an_unknown_sink_type_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="email"):
        BudgetPolicy.model_validate(policy([{"type": "email", "url": "x"}]))


def test_validate_lists_sinks_by_name_only(tmp_path: Path) -> None:
    router = tmp_path / "router.yaml"
    router.write_text("groups:\n  fast:\n    deployments:\n      - model: openai/gpt-4o-mini\n")
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        "budgets:\n  - scope: session\n    limit_usd: 1\n    alert_at: [0.8]\n"
        "alerts:\n  sinks:\n    - type: slack\n      url: https://hooks.slack.com/services/T0/B0/canary\n"
        "      name: finops\n"
    )
    result = CliRunner().invoke(app, ["validate", str(router), str(budgets)])
    assert "alert sinks: slack 'finops'" in result.stdout, result.output
    assert "canary" not in result.output
