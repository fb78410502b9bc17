"""configure_telemetry without a network: the none and file exporters, and the gRPC extra."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from costrouter import semconv as sc
from costrouter.errors import ConfigError
from costrouter.exporters import configure_telemetry, read_span_records
from costrouter.settings import Settings

pytestmark = pytest.mark.usefixtures("clean_env")


def test_none_gives_no_op_providers_and_owns_nothing() -> None:
    setup = configure_telemetry(Settings(exporter="none"))
    assert isinstance(setup.tracer_provider, trace.NoOpTracerProvider)
    assert not setup.owns_tracer_provider
    assert not setup.owns_meter_provider
    assert setup.shutdown()


def test_file_exporter_writes_one_json_object_per_span(tmp_path: Path) -> None:
    path = tmp_path / "out" / "spans.jsonl"
    setup = configure_telemetry(Settings(exporter="file", export_file=path, service_name="svc"), set_global=False)
    tracer = setup.tracer_provider.get_tracer("costrouter")
    with tracer.start_as_current_span(f"{sc.SPAN_NAME_PREFIX}/cheap") as parent:
        parent.set_attributes({sc.LLM_USAGE_COST_USD: 0.5, sc.SESSION_ID: "s-1", sc.ROUTER_TAGS: ("a", "b")})
        parent.add_event(sc.EVENT_BUDGET_ALERT, {sc.BUDGET_LIMIT_USD: 1.0})
        with tracer.start_as_current_span(f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/dep") as child:
            child.set_status(Status(StatusCode.ERROR, "boom"))
    assert setup.shutdown(timeout=5)

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert all(isinstance(json.loads(line), dict) for line in lines)
    child_record, parent_record = read_span_records(path)
    assert parent_record["name"] == "router.completion/cheap"
    assert parent_record["parent_span_id"] is None
    assert parent_record["attributes"] == {sc.LLM_USAGE_COST_USD: 0.5, sc.SESSION_ID: "s-1", sc.ROUTER_TAGS: ["a", "b"]}
    assert parent_record["events"][0]["name"] == sc.EVENT_BUDGET_ALERT
    assert parent_record["events"][0]["attributes"] == {sc.BUDGET_LIMIT_USD: 1.0}
    assert parent_record["status"] == {"code": "UNSET", "description": None}
    assert parent_record["resource"]["service.name"] == "svc"
    assert len(parent_record["trace_id"]) == 32
    assert len(parent_record["span_id"]) == 16
    assert parent_record["start_time_ns"] <= parent_record["end_time_ns"]
    assert child_record["parent_span_id"] == parent_record["span_id"]
    assert child_record["trace_id"] == parent_record["trace_id"]
    assert child_record["status"] == {"code": "ERROR", "description": "boom"}


def test_reading_skips_a_line_cut_short_but_refuses_a_broken_one(tmp_path: Path) -> None:
    good = json.dumps({"name": "a"})
    cut = tmp_path / "cut.jsonl"
    cut.write_text(f"{good}\n{good[:5]}", encoding="utf-8")
    assert [r["name"] for r in read_span_records(cut)] == ["a"]
    broken = tmp_path / "broken.jsonl"
    broken.write_text(f"{good[:5]}\n{good}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl:1"):
        list(read_span_records(broken))


def test_an_unwritable_file_is_a_counted_drop_not_an_exception(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    setup = configure_telemetry(Settings(exporter="file", export_file=blocker / "spans.jsonl"), set_global=False)
    with setup.tracer_provider.get_tracer("t").start_as_current_span("s"):
        pass
    setup.shutdown(timeout=5)
    assert setup.stats.dropped_by_reason == {"export failed": 1}


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None,
    reason="the grpc extra is installed",
)
def test_grpc_without_the_extra_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match=r"costrouter\[grpc\]") as caught:
        configure_telemetry(Settings(exporter="otlp", otlp_protocol="grpc"), set_global=False)
    assert caught.value.problems[0].location == "otlp_protocol"
