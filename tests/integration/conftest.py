"""Fixtures for integration tests: a real OTLP/HTTP receiver and a clean OTEL environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from costrouter import CostRouter
from costrouter.testing import OtlpReceiver, ProviderDouble, TelemetryCapture
from tests.routing import router_config

# Variables that would send test telemetry somewhere else, or shape it, if the developer's
# shell had them set.
_OTEL_VARIABLES = [name for name in os.environ if name.startswith(("OTEL_", "COSTROUTER_"))]


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderDouble]:
    """An OpenAI-compatible provider double on loopback, shared by a module's tests."""
    with ProviderDouble() as double:
        yield double


@pytest.fixture
def capture() -> Iterator[TelemetryCapture]:
    """Spans and metrics of one test, kept in memory by the real SDK."""
    telemetry = TelemetryCapture()
    yield telemetry
    telemetry.shutdown()


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    """A CostRouter over ``tests.routing``'s groups, on the module's provider double (reset), shut down after."""
    provider.reset()
    routed = CostRouter(
        router_config(provider.base_url),
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    yield routed
    routed.shutdown()


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A started OTLP/HTTP receiver on 127.0.0.1 (accepts everything until scripted)."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def otlp_env(otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> OtlpReceiver:
    """Point the standard OTLP variables at ``otlp_receiver``; clear every other OTEL_/COSTROUTER_ one."""
    for name in _OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_receiver.endpoint)
    monkeypatch.setenv("COSTROUTER_EXPORTER", "otlp")
    return otlp_receiver
