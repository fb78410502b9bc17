"""configure_telemetry without a network: the none and file exporters, and the gRPC extra."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from costrouter.config.settings import Settings
from costrouter.errors import ConfigError
from costrouter.otel import semconv as sc
from costrouter.otel.exporters import configure_telemetry, read_span_records

pytestmark = pytest.mark.usefixtures("clean_env")


def test_none_gives_no_op_providers_and_owns_nothing() -> None:
    setup = configure_telemetry(Settings(exporter="none"))
    assert isinstance(setup.tracer_provider, trace.NoOpTracerProvider)
    assert not setup.owns_tracer_provider
    assert not setup.owns_meter_provider
    assert setup.shutdown()


def test_file_exporter_writes_otlp_json_that_reads_back_as_span_records(tmp_path: Path) -> None:
    path = tmp_path / "out" / "spans.jsonl"
    setup = configure_telemetry(Settings(exporter="file", export_file=path, service_name="svc"), set_global=False)
    tracer = setup.tracer_provider.get_tracer("costrouter")
    with tracer.start_as_current_span(f"{sc.SPAN_NAME_PREFIX}/cheap") as parent:
        parent.set_attributes({sc.LLM_USAGE_COST_USD: 0.5, sc.SESSION_ID: "s-1", sc.ROUTER_TAGS: ("a", "b")})
        parent.add_event(sc.EVENT_BUDGET_ALERT, {sc.BUDGET_LIMIT_USD: 1.0})
        with tracer.start_as_current_span(f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/dep") as child:
            child.set_status(Status(StatusCode.ERROR, "boom"))
    assert setup.shutdown(timeout=5)

    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    # OTLP JSON, as the Collector's file exporter writes it: one TracesData object per batch.
    assert all("resourceSpans" in line for line in lines)
    spans = [span for line in lines for rs in line["resourceSpans"] for ss in rs["scopeSpans"] for span in ss["spans"]]
    assert len(spans) == 2
    assert all(len(span["traceId"]) == 32 and len(span["spanId"]) == 16 for span in spans)  # hex, not base64
    assert {span["kind"] for span in spans} == {1}  # integer enums (INTERNAL)
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


def test_a_line_nested_too_deep_is_a_named_error_not_a_recursion_error(tmp_path: Path) -> None:
    hostile = tmp_path / "deep.jsonl"
    hostile.write_text(json.dumps({"name": "a"}) + "\n" + "[" * 100_000 + "\n", encoding="utf-8")
    records = read_span_records(hostile)
    assert next(records)["name"] == "a"
    with pytest.raises(ValueError, match=r"deep\.jsonl:2: .*nested too deep"):
        next(records)


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
    with pytest.raises(ConfigError, match=r"costrouter-litellm\[grpc\]") as caught:
        configure_telemetry(Settings(exporter="otlp", otlp_protocol="grpc"), set_global=False)
    assert caught.value.problems[0].location == "otlp_protocol"


COLLECTOR_LINE = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "costrouter", "version": "0.1.0"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "parentSpanId": "",
                            "name": "router.completion/fast",
                            "kind": 3,
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "attributes": [
                                {"key": "llm.usage.cost_usd", "value": {"doubleValue": 0.000123}},
                                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
                                {"key": "router.tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                                {"key": "router.stream", "value": {"boolValue": False}},
                            ],
                            "status": {"code": 1},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_a_collector_file_exporter_line_reads_as_span_records(tmp_path: Path) -> None:
    path = tmp_path / "collector.json"
    old = {"name": "old", "attributes": {}, "status": {"code": "UNSET", "description": None}}
    path.write_text(json.dumps(COLLECTOR_LINE) + "\n" + json.dumps(old) + "\n", encoding="utf-8")
    record, old_record = read_span_records(path)
    assert record["name"] == "router.completion/fast"
    assert record["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert record["parent_span_id"] is None
    assert record["kind"] == "CLIENT"
    assert record["start_time_ns"] == 1544712660000000000
    assert record["status"] == {"code": "OK", "description": None}
    assert record["attributes"] == {
        "llm.usage.cost_usd": 0.000123,
        "gen_ai.usage.input_tokens": 12,
        "router.tags": ["a"],
        "router.stream": False,
    }
    assert record["resource"] == {"service.name": "checkout"}
    assert record["scope"] == "costrouter"
    assert old_record["name"] == "old"  # the format before OTLP JSON still loads


def test_a_malformed_otlp_json_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not-an-id!"}]}]}]}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.json:1: not an OTLP JSON traces object"):
        list(read_span_records(path))
