"""Settings from the environment and .env, and the standard OTEL_* variables reaching the exporter."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from costrouter.config.settings import Settings
from costrouter.otel.exporters import build_resource, configure_telemetry
from costrouter.testing import OtlpReceiver

pytestmark = pytest.mark.usefixtures("clean_env")


def test_defaults() -> None:
    settings = Settings()
    assert settings.exporter == "none"
    assert settings.otlp_protocol == "http/protobuf"
    assert settings.export_file == Path("costrouter-spans.jsonl")
    assert settings.sampling_ratio == 1.0
    assert settings.export_timeout_seconds is None  # the SDK's OTEL_EXPORTER_OTLP_TIMEOUT then
    assert settings.capture_content is False


def test_environment_variables_map_onto_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTROUTER_EXPORTER", "file")
    monkeypatch.setenv("COSTROUTER_EXPORT_FILE", "out/spans.jsonl")
    monkeypatch.setenv("COSTROUTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("COSTROUTER_SERVICE_NAME", "billing")
    monkeypatch.setenv("COSTROUTER_SAMPLING_RATIO", "0.25")
    monkeypatch.setenv("COSTROUTER_CAPTURE_CONTENT", "true")
    monkeypatch.setenv("COSTROUTER_CONTENT_MAX_CHARS", "100")
    monkeypatch.setenv("COSTROUTER_EXPORT_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("COSTROUTER_MAX_QUEUE_SIZE", "10")
    monkeypatch.setenv("COSTROUTER_METRIC_EXPORT_INTERVAL_SECONDS", "3")
    monkeypatch.setenv("COSTROUTER_SHUTDOWN_TIMEOUT_SECONDS", "1")
    settings = Settings()
    assert settings.exporter == "file"
    assert settings.export_file == Path("out/spans.jsonl")
    assert settings.otlp_protocol == "grpc"
    assert settings.service_name == "billing"
    assert settings.sampling_ratio == 0.25
    assert settings.capture_content is True
    assert settings.content_max_chars == 100
    assert settings.export_timeout_seconds == 2.5
    assert settings.max_queue_size == 10
    assert settings.metric_export_interval_seconds == 3
    assert settings.shutdown_timeout_seconds == 1


def test_dotenv_file_is_read_and_the_environment_beats_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("COSTROUTER_EXPORTER=console\nCOSTROUTER_SAMPLING_RATIO=0.5\n", encoding="utf-8")
    assert (Settings().exporter, Settings().sampling_ratio) == ("console", 0.5)
    monkeypatch.setenv("COSTROUTER_EXPORTER", "otlp")
    assert (Settings().exporter, Settings().sampling_ratio) == ("otlp", 0.5)


def test_an_explicit_argument_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTROUTER_EXPORTER", "otlp")
    monkeypatch.setenv("COSTROUTER_MAX_QUEUE_SIZE", "10")
    settings = Settings(exporter="file", max_queue_size=99)
    assert (settings.exporter, settings.max_queue_size) == ("file", 99)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COSTROUTER_EXPORTER", "jaeger"),
        ("COSTROUTER_OTLP_PROTOCOL", "http/json"),
        ("COSTROUTER_SAMPLING_RATIO", "1.5"),
        ("COSTROUTER_MAX_QUEUE_SIZE", "0"),
        ("COSTROUTER_EXPORT_TIMEOUT_SECONDS", "-1"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("COSTROUTER_").lower()):
        Settings()


def test_service_name_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_resource(Settings()).attributes["service.name"] == "costrouter"
    assert build_resource(Settings(service_name="billing")).attributes["service.name"] == "billing"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes,deployment.environment=test")
    resource = build_resource(Settings(service_name="billing"))
    assert resource.attributes["service.name"] == "from-attributes"
    assert resource.attributes["deployment.environment"] == "test"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-otel")
    assert build_resource(Settings(service_name="billing")).attributes["service.name"] == "from-otel"


def test_otel_variables_reach_the_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Endpoint, per-signal endpoint, headers, compression and service name, as the receivers see them."""
    with OtlpReceiver() as metrics_receiver, OtlpReceiver() as traces_receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", metrics_receiver.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces_receiver.traces_endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret%20key,x-tenant=acme")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
        monkeypatch.setenv("COSTROUTER_EXPORTER", "otlp")

        setup = configure_telemetry(set_global=False)
        with setup.tracer_provider.get_tracer("settings-test").start_as_current_span("router.completion/g"):
            pass
        setup.meter_provider.get_meter("settings-test").create_counter("costrouter.calls").add(1)
        assert setup.shutdown(timeout=10)

        (span,) = traces_receiver.wait_for_spans(1)
        assert span.resource["service.name"] == "checkout"
        assert span.resource["deployment.environment"] == "staging"
        (trace_request,) = traces_receiver.requests
        assert trace_request.headers["x-api-key"] == "secret key"
        assert trace_request.headers["x-tenant"] == "acme"
        assert trace_request.headers["content-encoding"] == "gzip"

        assert metrics_receiver.wait_for_metrics("costrouter.calls")[0].resource["service.name"] == "checkout"
        assert {r.signal for r in metrics_receiver.requests} == {"metrics"}
        assert all(r.headers["x-api-key"] == "secret key" for r in metrics_receiver.requests)
        assert setup.dropped_spans == 0


def test_project_name_becomes_the_phoenix_project(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "openinference.project.name" not in build_resource(Settings()).attributes
    resource = build_resource(Settings(project_name="checkout"))
    assert resource.attributes["openinference.project.name"] == "checkout"
    assert resource.attributes["service.name"] == "costrouter"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "openinference.project.name=from-env")
    assert build_resource(Settings(project_name="checkout")).attributes["openinference.project.name"] == "from-env"


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "77", "max_queue_size", 77),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25", "sampling_ratio", 0.25),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "otlp_protocol", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", "otlp_protocol", "grpc"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "2500", "metric_export_interval_seconds", 2.5),
    ],
)
def test_standard_otel_variables_apply_when_costrouters_are_unset(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(Settings(), field) == expected
    own = {"max_queue_size": ("9", 9), "sampling_ratio": ("0.5", 0.5), "otlp_protocol": ("http/protobuf",) * 2}
    raw, parsed = own.get(field, ("7", 7.0))
    monkeypatch.setenv(f"COSTROUTER_{field.upper()}", raw)
    assert getattr(Settings(), field) == parsed  # costrouter's own variable wins


def test_a_sampler_that_is_not_a_ratio_leaves_the_ratio_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.1")
    assert Settings().sampling_ratio == 1.0


def test_a_bad_standard_variable_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL='http/json'"):
        Settings()
