"""Span-file reports: reading, aggregation per dimension, and the three formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from costrouter.otel import semconv as sc
from costrouter.report.read import stream_report
from costrouter.report.summary import (
    aggregate,
    build_report,
    calls_from_records,
    load_span_records,
    parse_breakdowns,
    report_csv,
    report_json,
)

TRACE = "0" * 31


def call_span(span_id: str, group: str, **attributes: Any) -> dict[str, Any]:
    status = attributes.pop("status", "UNSET")
    base = {
        sc.ROUTER_MODEL_GROUP: group,
        sc.LLM_USAGE_COST_USD: 0.0,
        sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
        sc.LLM_LATENCY_MS: 100.0,
    }
    return {
        "name": f"{sc.SPAN_NAME_PREFIX}/{group}",
        "trace_id": TRACE + span_id[-1],
        "span_id": span_id,
        "parent_span_id": None,
        "kind": "CLIENT",
        "start_time_ns": 0,
        "end_time_ns": 0,
        "status": {"code": status, "description": None},
        "attributes": {**base, **attributes},
        "events": [],
        "resource": {},
        "scope": "costrouter",
    }


def attempt_span(
    parent: dict[str, Any], index: int, group: str, deployment: str, kind: str, ok: bool
) -> dict[str, Any]:
    return {
        **parent,
        "name": f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/{deployment}",
        "span_id": f"{parent['span_id']}{index}",
        "parent_span_id": parent["span_id"],
        "attributes": {
            sc.ATTEMPT_INDEX: index,
            sc.ATTEMPT_KIND: kind,
            sc.ATTEMPT_OUTCOME: "success" if ok else "failure",
            sc.ROUTER_MODEL_GROUP: group,
            sc.ROUTER_DEPLOYMENT_ID: deployment,
        },
    }


def workload() -> list[dict[str, Any]]:
    """Three calls: a plain one, one that fell back from capable to fast, one rejected."""
    plain = call_span(
        "a1",
        "fast",
        **{
            sc.ROUTER_SERVED_GROUP: "fast",
            sc.ROUTER_DEPLOYMENT_ID: "fast-primary",
            sc.SESSION_ID: "s1",
            sc.USER_ID: "alice",
            sc.LLM_USAGE_COST_USD: 0.1,
        },
    )
    fell_back = call_span(
        "b2",
        "capable",
        **{
            sc.ROUTER_SERVED_GROUP: "fast",
            sc.ROUTER_DEPLOYMENT_ID: "fast-primary",
            sc.SESSION_ID: "s1",
            sc.USER_ID: "alice",
            sc.LLM_USAGE_COST_USD: 0.2,
            sc.LLM_LATENCY_MS: 300.0,
        },
    )
    rejected = call_span(
        "c3",
        "capable",
        status="ERROR",
        **{
            sc.SESSION_ID: "s2",
            sc.USER_ID: "bob",
            sc.BUDGET_OUTCOME: "rejected",
            sc.ERROR_TYPE: "BudgetExceededError",
            sc.GEN_AI_USAGE_INPUT_TOKENS: 0,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
            sc.LLM_LATENCY_MS: 1.0,
        },
    )
    return [
        attempt_span(plain, 0, "fast", "fast-primary", "first", ok=True),
        plain,
        attempt_span(fell_back, 0, "capable", "capable-primary", "first", ok=False),
        attempt_span(fell_back, 1, "capable", "capable-primary", "retry", ok=False),
        attempt_span(fell_back, 2, "fast", "fast-primary", "fallback", ok=True),
        fell_back,
        rejected,
    ]


def test_calls_carry_their_attempts_in_order() -> None:
    calls = calls_from_records(workload())  # type: ignore[arg-type]
    assert [call.outcome for call in calls] == ["ok", "ok", "rejected"]
    assert [attempt.kind for attempt in calls[1].attempts] == ["first", "retry", "fallback"]
    assert calls[1].group == "fast"
    assert calls[1].requested == "capable"
    assert calls[2].group == "capable"  # no group served it: the requested one
    assert calls[2].deployment is None


def test_by_group_counts_cost_where_the_call_was_served_and_attempts_where_they_went() -> None:
    rows = {row.key: row for row in aggregate(calls_from_records(workload()), ["group"]).rows}  # type: ignore[arg-type]
    fast, capable = rows[("fast",)], rows[("capable",)]
    assert (fast.calls, fast.ok, fast.attempts, fast.fallbacks, fast.retries) == (2, 2, 2, 1, 0)
    assert fast.cost_usd == pytest.approx(0.3)
    assert (capable.calls, capable.rejected, capable.attempts, capable.failed_attempts, capable.retries) == (
        1,
        1,
        2,
        2,
        1,
    )
    assert capable.cost_usd == 0.0
    assert capable.latency_ms_mean is None  # a rejected call never reached a provider


def test_by_session_attempts_follow_their_call() -> None:
    breakdown = aggregate(calls_from_records(workload()), ["session", "user"])  # type: ignore[arg-type]
    first, second = breakdown.rows
    assert first.key == ("s1", "alice")
    assert (first.calls, first.attempts, first.retries, first.fallbacks) == (2, 4, 1, 1)
    assert first.input_tokens == 20
    assert first.latency_ms_mean == pytest.approx(200.0)
    assert first.latency_ms_p95 == 300.0
    assert second.key == ("s2", "bob")
    assert second.rejected == 1


def test_requested_dimension_and_missing_values() -> None:
    by_requested = aggregate(calls_from_records(workload()), ["requested"])  # type: ignore[arg-type]
    assert {row.key: row.calls for row in by_requested.rows} == {("capable",): 2, ("fast",): 1}
    by_team = aggregate(calls_from_records(workload()), ["team"])  # type: ignore[arg-type]
    assert [row.key for row in by_team.rows] == [(None,)]


def test_a_call_carrying_its_one_attempt_reports_as_with_an_attempt_span(tmp_path: Path) -> None:
    """A call whose one attempt succeeded carries it on its own span: same figures as a child span."""
    records = workload()
    plain = records[1]
    on_itself = {sc.ATTEMPT_INDEX: 0, sc.ATTEMPT_KIND: "first", sc.ATTEMPT_OUTCOME: "success"}
    carried = {**plain, "attributes": {**plain["attributes"], **on_itself}}
    rewritten = [carried, *records[2:]]
    assert calls_from_records(rewritten)[0].attempts == calls_from_records(records)[0].attempts  # type: ignore[arg-type]
    breakdowns = [("group",), ("deployment",), ("session", "user")]
    with_child = json.loads(report_json(build_report("spans.jsonl", records, breakdowns)))  # type: ignore[arg-type]
    on_parent = json.loads(report_json(build_report("spans.jsonl", rewritten, breakdowns)))  # type: ignore[arg-type]
    assert on_parent["spans"] == with_child["spans"] - 1
    for key in ("calls", "total", "breakdowns"):
        assert on_parent[key] == with_child[key]
    assert on_parent["total"]["attempts"] == 4
    path = tmp_path / "spans.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in rewritten))
    streamed = stream_report(str(path), breakdowns)
    assert (streamed.total.attempts, streamed.total.fallbacks, streamed.total.failed_attempts) == (4, 1, 2)
    assert streamed.orphan_attempts == 0


def test_parse_breakdowns() -> None:
    assert parse_breakdowns("group, session+user") == [("group",), ("session", "user")]
    with pytest.raises(ValueError, match="unknown dimension 'vendor'"):
        parse_breakdowns("group,vendor")
    with pytest.raises(ValueError, match="names no dimension"):
        parse_breakdowns(" , ")


def test_json_and_csv_totals_agree() -> None:
    report = build_report("spans.jsonl", workload(), [("group",), ("deployment",)])  # type: ignore[arg-type]
    document = json.loads(report_json(report))
    assert document["calls"] == 3
    assert document["spans"] == 7
    assert document["total"]["cost_usd"] == pytest.approx(0.3)
    assert document["total"]["attempts"] == 4
    assert [row["deployment"] for row in document["breakdowns"]["deployment"]] == [
        "fast-primary",
        None,
        "capable-primary",
    ]
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert rows[-1]["by"] == "total"
    assert float(rows[-1]["cost_usd"]) == pytest.approx(0.3)
    assert {row["group"] for row in rows if row["by"] == "group"} == {"fast", "capable"}
    assert all(row["session"] == "" for row in rows)


def test_reading_a_span_file_skips_a_cut_last_line_and_names_a_bad_one(tmp_path: Path) -> None:
    lines = [json.dumps(record) for record in workload()]
    good = tmp_path / "spans.jsonl"
    good.write_text("\n".join(lines) + "\n" + lines[0][:20])
    assert len(load_span_records(str(good))) == 7
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "\nnot json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_span_records(str(bad))
    with pytest.raises(FileNotFoundError):
        load_span_records(str(tmp_path / "absent.jsonl"))


def test_by_operation_separates_the_kinds_of_call() -> None:
    chat = call_span("c1", "fast", **{sc.GEN_AI_OPERATION_NAME: "chat", sc.LLM_USAGE_COST_USD: 0.5})
    embedding = {
        **call_span("e1", "embed", **{sc.GEN_AI_OPERATION_NAME: "embeddings", sc.LLM_USAGE_COST_USD: 0.25}),
        "name": "router.embedding/embed",
    }
    calls = calls_from_records([chat, embedding])

    rows = {row.key: row for row in aggregate(calls, ["operation"]).rows}

    assert rows[("chat",)].cost_usd == 0.5
    assert rows[("embeddings",)].cost_usd == 0.25
    assert rows[("embeddings",)].calls == 1
