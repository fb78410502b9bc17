"""Issue 25, finding 10: a preset's API-key header went to an ``OTEL_*`` endpoint the preset never named.

Two real OTLP receivers: the preset's own endpoint and the one ``OTEL_EXPORTER_OTLP_ENDPOINT`` names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from costrouter.config.settings import Settings
from costrouter.errors import ConfigError
from costrouter.otel.exporters import configure_telemetry
from costrouter.testing import OtlpReceiver


@dataclass(frozen=True)
class Preset:
    base_env: str
    secrets: dict[str, str]
    """Environment variable -> value, for the preset's secret headers."""
    header: str
    """The secret header on the wire."""


PRESETS = {
    "arthur": Preset("ARTHUR_BASE_URL", {"ARTHUR_API_KEY": "arthur-canary"}, "authorization"),
    "langsmith": Preset("LANGSMITH_ENDPOINT", {"LANGSMITH_API_KEY": "ls-canary"}, "x-api-key"),
    "fiddler": Preset("FIDDLER_URL", {"FIDDLER_API_KEY": "fiddler-canary"}, "authorization"),
    "signoz": Preset("SIGNOZ_ENDPOINT", {"SIGNOZ_INGESTION_KEY": "sz-canary"}, "signoz-ingestion-key"),
    "phoenix": Preset("PHOENIX_COLLECTOR_ENDPOINT", {"PHOENIX_API_KEY": "px-canary"}, "authorization"),
    "langfuse": Preset(
        "LANGFUSE_HOST", {"LANGFUSE_PUBLIC_KEY": "pk-canary", "LANGFUSE_SECRET_KEY": "sk-canary"}, "authorization"
    ),
    "datadog": Preset("DD_OTLP_ENDPOINT", {"DD_API_KEY": "dd-canary"}, "dd-api-key"),
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_*, COSTROUTER_* or preset variable from the developer's shell."""
    preset_vars = {p.base_env for p in PRESETS.values()} | {k for p in PRESETS.values() for k in p.secrets}
    for name in list(os.environ):
        if name.startswith(("OTEL_", "COSTROUTER_")) or name in preset_vars:
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def named() -> Iterator[OtlpReceiver]:
    """The endpoint the preset names."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def other() -> Iterator[OtlpReceiver]:
    """The endpoint an OTEL_* variable names."""
    with OtlpReceiver() as receiver:
        yield receiver


def _export_one_span(settings: Settings) -> None:
    setup = configure_telemetry(settings, set_global=False)
    setup.tracer_provider.get_tracer("test").start_span("one").end()
    setup.shutdown()


def _configure(env: pytest.MonkeyPatch, name: str, named: OtlpReceiver) -> Preset:
    preset = PRESETS[name]
    env.setenv(preset.base_env, named.endpoint)
    for variable, value in preset.secrets.items():
        env.setenv(variable, value)
    return preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_an_otel_endpoint_elsewhere_is_refused_and_receives_nothing(
    name: str, env: pytest.MonkeyPatch, named: OtlpReceiver, other: OtlpReceiver
) -> None:
    preset = _configure(env, name, named)
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", other.endpoint)
    with pytest.raises(ConfigError) as raised:
        _export_one_span(Settings(exporter="otlp", backend=name))  # type: ignore[arg-type]
    message = str(raised.value)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in message
    assert preset.header in message
    assert "COSTROUTER_PRESET_HEADERS_TO_OTEL_ENDPOINT=true" in message
    assert "canary" not in message
    assert other.requests == []  # the red team saw every preset's key arrive here


def test_a_per_signal_otel_endpoint_elsewhere_is_refused_too(
    env: pytest.MonkeyPatch, named: OtlpReceiver, other: OtlpReceiver
) -> None:
    _configure(env, "langsmith", named)
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", other.traces_endpoint)
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        _export_one_span(Settings(exporter="otlp", backend="langsmith"))
    assert other.requests == []


@pytest.mark.parametrize("name", ["langsmith", "signoz"])
def test_without_an_otel_endpoint_the_key_goes_to_the_preset_host_only(
    name: str, env: pytest.MonkeyPatch, named: OtlpReceiver, other: OtlpReceiver
) -> None:
    preset = _configure(env, name, named)
    _export_one_span(Settings(exporter="otlp", backend=name, export_logs=False))  # type: ignore[arg-type]
    named.wait_for_spans(1)
    assert all(request.headers.get(preset.header) for request in named.requests if request.signal == "traces")
    assert other.requests == []


def test_an_otel_endpoint_on_the_preset_host_keeps_the_key(env: pytest.MonkeyPatch, named: OtlpReceiver) -> None:
    _configure(env, "fiddler", named)
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", named.traces_endpoint)
    _export_one_span(Settings(exporter="otlp", backend="fiddler"))
    named.wait_for_spans(1)
    assert named.requests[0].headers["authorization"] == "Bearer fiddler-canary"


def test_the_opt_in_sends_the_key_to_the_otel_endpoint(
    env: pytest.MonkeyPatch, named: OtlpReceiver, other: OtlpReceiver
) -> None:
    _configure(env, "langsmith", named)
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", other.endpoint)
    env.setenv("COSTROUTER_PRESET_HEADERS_TO_OTEL_ENDPOINT", "true")
    _export_one_span(Settings(exporter="otlp", backend="langsmith"))
    other.wait_for_spans(1)
    assert other.requests[0].headers["x-api-key"] == "ls-canary"
    assert named.requests == []


def test_a_header_the_user_sets_for_the_otel_endpoint_is_not_the_presets(
    env: pytest.MonkeyPatch, named: OtlpReceiver, other: OtlpReceiver
) -> None:
    _configure(env, "arthur", named)
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", other.endpoint)
    env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20collector-key")
    _export_one_span(Settings(exporter="otlp", backend="arthur"))
    other.wait_for_spans(1)
    assert other.requests[0].headers["authorization"] == "Bearer collector-key"
