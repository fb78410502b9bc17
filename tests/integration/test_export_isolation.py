"""Telemetry export never hurts the caller: real OTLP/HTTP, real SDK, no mocks of OpenTelemetry.

Each failure mode (nothing listening, slow past the export timeout, 500, 429) is driven
through ``configure_telemetry`` against a real receiver: emitting spans never raises, every
lost span is counted, and the warning is logged once. No test asserts a duration: the
blocked-exporter test proves the producer is not blocked by ordering (all spans produced
while the receiver still holds the first export).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import Status, StatusCode

from costrouter.config.settings import Settings
from costrouter.otel import semconv as sc
from costrouter.otel.exporters import TelemetrySetup, configure_telemetry
from costrouter.testing import Accept, OtlpReceiver, Refuse

SPANS = 200
QUEUE = 64


def _settings(**fields: Any) -> Settings:
    return Settings(_env_file=None, exporter="otlp", **fields)  # type: ignore[call-arg]


def _emit(setup: TelemetrySetup, count: int, name: str = "router.completion/group") -> None:
    tracer = setup.tracer_provider.get_tracer("isolation-test")
    for index in range(count):
        with tracer.start_as_current_span(name) as span:
            span.set_attribute(sc.ROUTER_CALL_ID, f"call-{index}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _costrouter_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "costrouter.exporters" and r.levelno >= logging.WARNING]


def _sdk_noise(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("opentelemetry") and r.levelno >= logging.WARNING]


@pytest.fixture
def receiver_endpoint(request: pytest.FixtureRequest, otlp_env: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> str:
    """Script the failure mode named by the test parameter; return the endpoint to export to."""
    mode = request.param
    if mode == "down":
        endpoint = f"http://127.0.0.1:{_free_port()}"
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        return endpoint
    behaviour = {"slow": Accept(delay=3.0), "500": Refuse(500), "429": Refuse(429, retry_after=2)}[mode]
    otlp_env.set_default("traces", behaviour)
    otlp_env.set_default("metrics", behaviour)
    return otlp_env.endpoint


@pytest.mark.parametrize("receiver_endpoint", ["down", "slow", "500", "429"], indirect=True)
def test_failing_endpoint_never_raises_counts_every_span_and_warns_once(
    receiver_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    setup = configure_telemetry(_settings(export_timeout_seconds=0.3, max_queue_size=QUEUE), set_global=False)
    counter = setup.meter_provider.get_meter("isolation-test").create_counter(sc.METRIC_CALLS)

    _emit(setup, SPANS)
    counter.add(1, {sc.CALL_OUTCOME: "success"})
    setup.force_flush(timeout=10)

    assert setup.dropped_spans > 0
    assert len(_costrouter_warnings(caplog)) == 1, "one warning at the first drop, not one per span or batch"
    assert setup.shutdown(timeout=10)

    stats = setup.stats
    assert stats.dropped_spans == SPANS, stats
    assert set(stats.dropped_by_reason) <= {"queue full", "export failed"}
    assert stats.failed_metric_exports >= 1
    warnings = _costrouter_warnings(caplog)
    assert len(warnings) == 2, [w.getMessage() for w in warnings]
    assert f"dropped {SPANS} span(s)" in warnings[1].getMessage()
    assert _sdk_noise(caplog) == [], "the SDK's per-batch errors are muted while costrouter reports them"


def test_blocked_exporter_does_not_block_the_producer(otlp_env: OtlpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    receiver = otlp_env
    receiver.block()
    # A long export timeout: the exporter really is stuck inside its HTTP request.
    setup = configure_telemetry(_settings(export_timeout_seconds=60, max_queue_size=QUEUE), set_global=False)
    try:
        _emit(setup, QUEUE)  # a full batch wakes the export worker, which sends it and gets stuck
        assert receiver.wait_for_blocked(1) == 1

        _emit(setup, 500)  # every span ends while the first export is still held

        assert receiver.blocked_count == 1, "the producer finished while the exporter was still stuck"
        assert receiver.spans == []
        assert setup.stats.dropped_by_reason == {"queue full": 500 - QUEUE}
        assert len(_costrouter_warnings(caplog)) == 1
    finally:
        receiver.release()
    assert setup.shutdown(timeout=10)
    assert len(receiver.wait_for_spans(2 * QUEUE)) == 2 * QUEUE
    assert setup.dropped_spans == 500 - QUEUE


def test_the_attribute_table_leaves_the_process_unchanged(otlp_env: OtlpReceiver) -> None:
    setup = configure_telemetry(_settings(), set_global=False)
    span_attributes = _every_span_attribute()
    tracer = setup.tracer_provider.get_tracer("costrouter")
    with tracer.start_as_current_span(f"{sc.SPAN_NAME_PREFIX}/cheap") as parent:
        parent.set_attributes(span_attributes)
        parent.add_event(sc.EVENT_BUDGET_ALERT, {sc.BUDGET_LIMIT_USD: 1.0, sc.BUDGET_SCOPE: "session"})
        with tracer.start_as_current_span(f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/dep-a") as attempt:
            attempt.set_attributes({sc.ATTEMPT_KIND: "first", sc.ATTEMPT_OUTCOME: "failure"})
            attempt.set_status(Status(StatusCode.ERROR, "rate limited"))

    meter = setup.meter_provider.get_meter("costrouter")
    meter.create_counter(sc.METRIC_COST, unit=sc.METRIC_COST_UNIT).add(
        0.25, {sc.ROUTER_MODEL_GROUP: "cheap", sc.ROUTER_DEPLOYMENT_ID: "dep-a"}
    )
    meter.create_counter(sc.METRIC_CALLS, unit=sc.METRIC_CALLS_UNIT).add(1, {sc.CALL_OUTCOME: "success"})
    meter.create_counter(sc.METRIC_ATTEMPTS, unit=sc.METRIC_ATTEMPTS_UNIT).add(
        2, {sc.ATTEMPT_KIND: "retry", sc.ATTEMPT_OUTCOME: "failure"}
    )
    meter.create_counter(sc.METRIC_BUDGET_DECISIONS, unit=sc.METRIC_BUDGET_DECISIONS_UNIT).add(
        1, {sc.BUDGET_SCOPE: "session", sc.BUDGET_OUTCOME: "rejected"}
    )
    meter.create_histogram(sc.METRIC_TOKEN_USAGE, unit=sc.METRIC_TOKEN_USAGE_UNIT).record(
        42, {sc.GEN_AI_TOKEN_TYPE: "input"}
    )
    meter.create_histogram(sc.METRIC_OPERATION_DURATION, unit=sc.METRIC_OPERATION_DURATION_UNIT).record(
        0.5, {sc.GEN_AI_REQUEST_MODEL: "gpt-x"}
    )
    assert setup.shutdown(timeout=10)

    spans = {span.name: span for span in otlp_env.wait_for_spans(2)}
    parent_span = spans[f"{sc.SPAN_NAME_PREFIX}/cheap"]
    assert parent_span.attributes == {k: list(v) if isinstance(v, tuple) else v for k, v in span_attributes.items()}
    assert parent_span.events[0].name == sc.EVENT_BUDGET_ALERT
    assert parent_span.events[0].attributes == {sc.BUDGET_LIMIT_USD: 1.0, sc.BUDGET_SCOPE: "session"}
    attempt_span = spans[f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/dep-a"]
    assert attempt_span.parent_span_id == parent_span.span_id
    assert (attempt_span.status_code, attempt_span.status_message) == ("ERROR", "rate limited")
    assert parent_span.resource["service.name"] == "costrouter"

    points = {point.metric: point for point in otlp_env.wait_for_metrics()}
    expected_units = {
        sc.METRIC_COST: sc.METRIC_COST_UNIT,
        sc.METRIC_CALLS: sc.METRIC_CALLS_UNIT,
        sc.METRIC_ATTEMPTS: sc.METRIC_ATTEMPTS_UNIT,
        sc.METRIC_BUDGET_DECISIONS: sc.METRIC_BUDGET_DECISIONS_UNIT,
        sc.METRIC_TOKEN_USAGE: sc.METRIC_TOKEN_USAGE_UNIT,
        sc.METRIC_OPERATION_DURATION: sc.METRIC_OPERATION_DURATION_UNIT,
    }
    assert {name: point.unit for name, point in points.items()} == expected_units
    assert points[sc.METRIC_COST].kind == "sum"
    assert points[sc.METRIC_COST].is_monotonic
    assert points[sc.METRIC_COST].value == 0.25
    assert points[sc.METRIC_COST].attributes == {sc.ROUTER_MODEL_GROUP: "cheap", sc.ROUTER_DEPLOYMENT_ID: "dep-a"}
    assert points[sc.METRIC_BUDGET_DECISIONS].attributes == {sc.BUDGET_SCOPE: "session", sc.BUDGET_OUTCOME: "rejected"}
    assert points[sc.METRIC_OPERATION_DURATION].explicit_bounds == sc.OPERATION_DURATION_BUCKETS
    assert points[sc.METRIC_TOKEN_USAGE].explicit_bounds == tuple(float(b) for b in sc.TOKEN_USAGE_BUCKETS)
    assert points[sc.METRIC_TOKEN_USAGE].sum == 42


def _every_span_attribute() -> dict[str, Any]:
    """One value for every span attribute name semconv.py defines (not metric, event or span names)."""
    skip_prefixes = ("METRIC_", "EVENT_", "SPAN_NAME", "ATTEMPT_SPAN_NAME")
    values: dict[str, Any] = {}
    for constant, name in vars(sc).items():
        if not constant.isupper() or not isinstance(name, str) or constant.startswith(skip_prefixes):
            continue
        key = f"{name}team" if name.endswith(".") else name  # a prefix such as router.metadata.
        values[key] = _sample_value(key, len(values))
    return values


def _sample_value(name: str, index: int) -> Any:
    if name.endswith(("_usd", ".cost", "cost.total", "cost.prompt", "cost.completion", "_cost", "temperature")):
        return 0.001 * (index + 1)
    if ("token" in name and "type" not in name) or name.endswith(
        ("attempts", "retries", "fallbacks", "count", "index")
    ):
        return index + 1
    if name.endswith(("stream", "store_error")):
        return True
    if name.endswith(("tags", "scopes", "names", "finish_reasons")):
        return ("a", "b")
    return f"value-{index}"


_EXIT_SCRIPT = textwrap.dedent(
    """
    import json

    from opentelemetry import metrics, trace

    from costrouter.otel.exporters import configure_telemetry

    # COSTROUTER_EXPORTER=otlp and OTEL_EXPORTER_OTLP_ENDPOINT come from the environment.
    first = configure_telemetry()  # no provider installed yet: builds them and installs them globally
    tracer = trace.get_tracer("exit-test")
    for index in range(5):
        with tracer.start_as_current_span(f"exit-{index}"):
            pass
    again = configure_telemetry()  # the global providers are SDK ones now: used as they are
    print(json.dumps({
        "installed": trace.get_tracer_provider() is first.tracer_provider
        and metrics.get_meter_provider() is first.meter_provider,
        "owns_first": [first.owns_tracer_provider, first.owns_meter_provider],
        "reused": again.tracer_provider is first.tracer_provider and again.meter_provider is first.meter_provider,
        "owns_again": [again.owns_tracer_provider, again.owns_meter_provider],
        "processors": len(first.tracer_provider._active_span_processor._span_processors),
    }))
    # No shutdown(): the batch processor's 5 s schedule has not fired; only the exit hook sends the spans.
    """
)


@pytest.fixture
def exited_child(otlp_env: OtlpReceiver) -> tuple[dict[str, Any], OtlpReceiver]:
    """Run the script above in a fresh interpreter (it imports LiteLLM: seconds, so once)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COSTROUTER_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_env.endpoint,
        COSTROUTER_EXPORTER="otlp",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    result = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), otlp_env


def test_exit_without_shutdown_still_exports_and_sdk_providers_are_reused(
    exited_child: tuple[dict[str, Any], OtlpReceiver],
) -> None:
    report, receiver = exited_child
    names = sorted(span.name for span in receiver.wait_for_spans(5))
    assert names == [f"exit-{index}" for index in range(5)]
    assert report == {
        "installed": True,
        "owns_first": [True, True],
        "reused": True,
        "owns_again": [False, False],
        "processors": 1,
    }
