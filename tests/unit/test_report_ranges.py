"""A span file cut into byte ranges (counted apart, on other processes) reports exactly what one pass reports."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from costrouter.cli.commands import app
from costrouter.otel import semconv as sc
from costrouter.report.html import report_html
from costrouter.report.read import split_ranges, stream_report
from costrouter.report.summary import report_csv, report_json

NS = 1_000_000_000
T0 = 1_790_000_000 * NS
RECENT = 6
"""A small window of recent calls, so that late attempts fall out of it within a few lines."""
BREAKDOWNS = [("group",), ("deployment",), ("session",), ("tag",), ("model",), ("session", "tag")]


def call(span: Any, rng: random.Random, trace: Any = None, **extra: Any) -> dict[str, Any]:
    group = rng.choice(["fast", "capable", "local"])
    return {
        "name": f"router.completion/{group}",
        "trace_id": f"t{span}" if trace is None else trace,
        "span_id": span,
        "start_time_ns": T0 + rng.randrange(3 * 86_400) * NS,
        "end_time_ns": T0,
        "status": {"code": rng.choice(["UNSET", "UNSET", "ERROR"])},
        "attributes": {
            sc.ROUTER_MODEL_GROUP: group,
            sc.ROUTER_DEPLOYMENT_ID: f"{group}-{rng.choice(['primary', 'backup'])}",
            sc.SESSION_ID: rng.choice(["s1", "s2", "=cmd|' /C calc'!A0", "s3"]),
            sc.ROUTER_TAGS: rng.sample(["a", "b", "c"], rng.randrange(3)),
            sc.GEN_AI_RESPONSE_MODEL: rng.choice(["m1", "m2"]),
            sc.LLM_USAGE_COST_USD: rng.choice([rng.uniform(0, 0.01), 0.1, 1e-12]),
            sc.LLM_LATENCY_MS: rng.lognormvariate(5, 1),
            sc.GEN_AI_USAGE_INPUT_TOKENS: rng.randrange(2000),
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: rng.randrange(800),
            **extra,
        },
    }


def attempt(parent: dict[str, Any], index: int, rng: random.Random) -> dict[str, Any]:
    return {
        "name": f"router.attempt/{parent['attributes'][sc.ROUTER_DEPLOYMENT_ID]}",
        "trace_id": parent["trace_id"],
        "span_id": f"{parent['span_id']}-{index}",
        "parent_span_id": parent["span_id"],
        "attributes": {
            sc.ATTEMPT_INDEX: index,
            sc.ATTEMPT_KIND: rng.choice(["first", "retry", "fallback"]),
            sc.ATTEMPT_OUTCOME: rng.choice(["success", "failure"]),
            sc.ROUTER_MODEL_GROUP: rng.choice(["fast", "capable"]),
            sc.ROUTER_DEPLOYMENT_ID: parent["attributes"][sc.ROUTER_DEPLOYMENT_ID],
        },
    }


def any_value(item: Any) -> dict[str, Any]:
    """An OTLP JSON ``AnyValue``."""
    if isinstance(item, list):
        return {"arrayValue": {"values": [any_value(entry) for entry in item]}}
    if isinstance(item, float):
        return {"doubleValue": item}
    if isinstance(item, int):
        return {"intValue": str(item)}
    return {"stringValue": item}


def otlp_line(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Calls as one OTLP JSON ``TracesData`` line (the Collector's file exporter)."""
    spans = [
        {
            "traceId": f"{index + 1:032x}",
            "spanId": f"{index + 1:016x}",
            "name": record["name"],
            "startTimeUnixNano": str(record["start_time_ns"]),
            "endTimeUnixNano": str(record["end_time_ns"]),
            "attributes": [{"key": key, "value": any_value(item)} for key, item in record["attributes"].items()],
        }
        for index, record in enumerate(calls)
    ]
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {}, "spans": spans}]}]}


def otlp_span(record: dict[str, Any]) -> dict[str, Any]:
    """A call or attempt record as an OTLP JSON span (its ids as the hex of their text, so they still match)."""

    def hexed(value: Any) -> str:
        return str(value).encode().hex()

    span = {
        "traceId": hexed(record["trace_id"]),
        "spanId": hexed(record["span_id"]),
        "name": record["name"],
        "startTimeUnixNano": str(record.get("start_time_ns", T0)),
        "endTimeUnixNano": str(record.get("end_time_ns", T0)),
        "attributes": [{"key": key, "value": any_value(item)} for key, item in record["attributes"].items()],
    }
    if record.get("parent_span_id"):
        span["parentSpanId"] = hexed(record["parent_span_id"])
    if record.get("status", {}).get("code") == "ERROR":
        span["status"] = {"code": 2, "message": "failed"}
    return span


def batch_line(record: dict[str, Any], attempts: list[dict[str, Any]], rng: random.Random) -> str:
    """A call and its attempts as one batch line, in any order, now and then with a span a report skips."""
    spans: list[Any] = [otlp_span(item) for item in [*attempts, record]]
    if rng.random() < 0.3:
        spans.insert(len(spans) // 2, otlp_span(attempt(record, 0, rng)) | {"startTimeUnixNano": "soon"})
    if rng.random() < 0.3:
        spans.insert(rng.randrange(len(spans) + 1), [1, 2])
    if rng.random() < 0.3:
        negative = call(f"{record['span_id']}-n", rng, **{sc.LLM_USAGE_COST_USD: -1.0})
        spans.insert(rng.randrange(len(spans) + 1), otlp_span(negative))
    if rng.random() < 0.3:
        rng.shuffle(spans)  # attempts after their call, in the same line
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"scope": {"name": "costrouter"}, "spans": spans}]}]})


def bad_lines(rng: random.Random, number: int) -> list[str]:
    """Now and then a line a report skips, a blank one, or an OTLP JSON line of two calls."""
    nan = json.dumps(call(f"nan{number}", rng)).replace('"llm.usage.cost_usd": ', '"llm.usage.cost_usd": NaN, "x": ')
    choices = [
        "not json",
        nan,
        json.dumps(call(f"neg{number}", rng, **{sc.LLM_USAGE_COST_USD: -1.0})),
        "   ",
        json.dumps(otlp_line([call(f"o{number}", rng), call(f"p{number}", rng)])),
        json.dumps([1, 2]),
    ]
    return [choices[rng.randrange(len(choices))]] if rng.random() < 0.12 else []


def hostile_file(path: Path, seed: int) -> Path:
    """Calls with attempts before and after them, near and far, with every kind of line a report skips."""
    rng = random.Random(seed)
    lines: list[str] = []
    deferred: list[tuple[int, str]] = []  # (after this many more calls, line): attempts written after their call
    for number in range(400):
        span = f"{number:05x}" if number % 17 else number + 1_000_000  # some integer span ids
        record = call(span, rng)
        attempts = [json.dumps(attempt(record, index, rng)) for index in range(rng.randrange(4))]
        shape = rng.random()
        if rng.random() < 0.15:  # one batch line, as the file exporter writes
            lines.append(batch_line(record, [attempt(record, index, rng) for index in range(rng.randrange(4))], rng))
        elif shape < 0.55:
            lines += [*attempts, json.dumps(record)]
        elif shape < 0.75:  # after their call: within the window of recent calls, or past it
            lines.append(json.dumps(record))
            deferred += [(number + rng.randrange(3 * RECENT), item) for item in attempts]
        elif shape < 0.85:  # long before their call
            for item in attempts:
                lines.insert(rng.randrange(len(lines) + 1), item)
            lines.append(json.dumps(record))
        elif shape < 0.9:  # orphans: their call never comes
            lines += attempts
        else:  # a repeated call id, attempts around both
            lines += [attempts[0] if attempts else "", json.dumps(record), *attempts[1:], json.dumps(call(span, rng))]
        lines += [item for due, item in deferred if due <= number]
        deferred = [(due, item) for due, item in deferred if due > number]
        lines += bad_lines(rng, number)
    lines += [item for _, item in deferred]
    path.write_text("\n".join(lines) + "\n" + json.dumps(call("cut", rng))[:50])
    return path


def outputs(report: Any) -> tuple[str, str, str, tuple[str, ...], int, int]:
    return (
        report_json(report),
        report_csv(report),
        report_html(report),
        report.problems,
        report.spans,
        report.orphan_attempts,
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_ranges_counted_apart_report_what_one_pass_reports(tmp_path: Path, seed: int) -> None:
    path = hostile_file(tmp_path / "spans.jsonl", seed)
    window = {"since_ns": T0 + 86_400 * NS // 2, "until_ns": T0 + 2 * 86_400 * NS}
    for options in ({}, window):
        serial = stream_report(path, BREAKDOWNS, workers=1, recent=RECENT, **options)
        assert serial.skipped > 10
        assert serial.orphan_attempts > 0
        expected = outputs(serial)
        for chunk_bytes in (97, 1_000, 20_000):
            cut = stream_report(path, BREAKDOWNS, workers=1, chunk_bytes=chunk_bytes, recent=RECENT, **options)
            assert outputs(cut) == expected, chunk_bytes


def test_ranges_on_other_processes_report_what_one_pass_reports(tmp_path: Path) -> None:
    path = hostile_file(tmp_path / "spans.jsonl", 4)
    serial = stream_report(path, BREAKDOWNS, workers=1)
    parallel = stream_report(path, BREAKDOWNS, workers=2, chunk_bytes=4_000)
    assert outputs(parallel) == outputs(serial)
    assert serial.total.calls > 300


def test_ranges_start_and_end_at_line_starts(tmp_path: Path) -> None:
    path = hostile_file(tmp_path / "spans.jsonl", 5)
    data = path.read_bytes()
    for chunk_bytes in (1, 50, 777, len(data) // 2, len(data), 10 * len(data)):
        ranges = split_ranges(path, chunk_bytes)
        assert ranges[0][0] == 0
        assert ranges[-1][1] == len(data)
        for (_, end), (start, _) in itertools.pairwise(ranges):
            assert end == start
            assert data[start - 1 : start] == b"\n"


def test_the_command_reads_with_the_workers_it_is_given(tmp_path: Path) -> None:
    path = hostile_file(tmp_path / "spans.jsonl", 6)
    outputs = []
    for workers in ("1", "2"):
        result = CliRunner().invoke(
            app, ["report", str(path), "--by", "session,tag", "-f", "csv", "--workers", workers]
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert "total," in outputs[0]
    refused = CliRunner().invoke(app, ["report", str(path), "--workers", "0"])
    assert refused.exit_code == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_a_line_reports_what_a_span_a_line_reports(tmp_path: Path, workers: int) -> None:
    """The file exporter writes a batch of spans a line: the report counts its spans, not its lines."""
    rng = random.Random(3)
    calls = [call(f"{number:05x}", rng) for number in range(60)]
    document = otlp_line(calls)
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    records = tmp_path / "records.jsonl"  # one span a line

    def line(batch: list[dict[str, Any]]) -> str:
        scope_spans = [{**document["resourceSpans"][0]["scopeSpans"][0], "spans": batch}]
        return json.dumps({"resourceSpans": [{**document["resourceSpans"][0], "scopeSpans": scope_spans}]}) + "\n"

    records.write_text("".join(line([span]) for span in spans))
    batched = tmp_path / "batched.jsonl"
    batched.write_text("".join(line(spans[start : start + 16]) for start in range(0, 60, 16)))
    by_record = stream_report(records, BREAKDOWNS, workers=workers, chunk_bytes=1_000)
    by_batch = stream_report(batched, BREAKDOWNS, workers=workers, chunk_bytes=1_000)
    assert by_batch.spans == by_record.spans == 60
    assert report_csv(by_batch) == report_csv(by_record)
    assert report_json(by_batch).replace(str(batched), str(records)) == report_json(by_record)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_span_a_report_cannot_read_costs_only_itself_not_the_rest_of_its_batch(tmp_path: Path, workers: int) -> None:
    rng = random.Random(7)
    calls = [call(f"c{number}", rng, **{sc.LLM_USAGE_COST_USD: 0.25}) for number in range(4)]
    unreadable = otlp_span(calls[0]) | {"startTimeUnixNano": "soon"}  # the decoder and the checked path refuse it
    uncountable = otlp_span(call("neg", rng, **{sc.LLM_USAGE_COST_USD: -1.0}))  # read, and refused by the checks
    spans = [otlp_span(calls[0]), unreadable, otlp_span(calls[1]), [1, 2], uncountable, otlp_span(calls[2])]
    line = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(calls[3]) + "\n" + line + "\n")
    report = stream_report(path, BREAKDOWNS, workers=workers, chunk_bytes=len(line) // 2)
    assert (report.spans, report.skipped, report.total.calls) == (7, 3, 4)
    assert report.total.cost_usd == 1.0
    assert report.problems == (
        f"{path}:2: span 2: not an OTLP JSON span: invalid literal for int() with base 10: 'soon'",
        f"{path}:2: span 4: not an OTLP JSON span: 'list' object has no attribute 'get'",
        f"{path}:2: span 5: {sc.LLM_USAGE_COST_USD} must be a finite number not below 0 (at most 1e+06), not -1.0",
    )
