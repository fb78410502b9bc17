"""`costrouter report` on hostile span files: every bad line skipped, named and counted; totals stay true."""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from costrouter.otel import semconv as sc
from costrouter.report.file_lines import MAX_LINE_BYTES
from costrouter.report.read import MAX_PROBLEMS_SHOWN, stream_report
from costrouter.report.summary import ReportRow, report_csv
from costrouter.report.times import Timeline, parse_instant

NS = 1_000_000_000
DAY = 86_400 * NS
T0 = 1_790_000_000 * NS  # 2026-09-21


def call(span: str, cost: float = 0.001, start: Any = T0, **attributes: Any) -> dict[str, Any]:
    return {
        "name": "router.completion/fast",
        "trace_id": "t" + span,
        "span_id": span,
        "parent_span_id": None,
        "start_time_ns": start,
        "end_time_ns": start + 5_000_000 if isinstance(start, int) else start,
        "status": {"code": "UNSET"},
        "attributes": {
            sc.ROUTER_MODEL_GROUP: "fast",
            sc.ROUTER_DEPLOYMENT_ID: "fast-primary",
            sc.LLM_USAGE_COST_USD: cost,
            sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
            **attributes,
        },
    }


def attempt(parent: str, index: int = 0, kind: str = "first") -> dict[str, Any]:
    return {
        "name": "router.attempt/fast-primary",
        "trace_id": "t" + parent,
        "span_id": f"{parent}-{index}",
        "parent_span_id": parent,
        "attributes": {
            sc.ATTEMPT_INDEX: index,
            sc.ATTEMPT_KIND: kind,
            sc.ATTEMPT_OUTCOME: "success",
            sc.ROUTER_MODEL_GROUP: "fast",
            sc.ROUTER_DEPLOYMENT_ID: "fast-primary",
        },
    }


def spans(tmp_path: Path, *lines: dict[str, Any] | str) -> Path:
    path = tmp_path / "spans.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_hostile_lines_are_skipped_named_and_never_poison_a_total(tmp_path: Path) -> None:
    path = spans(
        tmp_path,
        call("ok1", 0.25),
        "[" * 100_000 + "]" * 100_000,  # deeper than any parser recurses
        call("when", start="yesterday"),
        call("huge1", 1e308),
        call("huge2", 1e308),
        '{"name": "router.completion/fast", "attributes": {"llm.usage.cost_usd": NaN}}',
        call("negative", -5.0),
        call("text", "0.5"),
        call("tokens", **{sc.GEN_AI_USAGE_INPUT_TOKENS: -3}),
        {**call("attrs"), "attributes": "none"},
        "42",
        call("ok2", 0.5),
    )
    report = stream_report(path, [("group",)])
    assert report.total.calls == 2
    assert report.total.cost_usd == 0.75
    assert report.skipped == 10
    assert report.spans == 12
    reasons = "\n".join(report.problems)
    assert f"{path}:2: not a JSON span record" in reasons
    assert f"{path}:3: start_time_ns must be a whole number not below 0, not 'yesterday'" in reasons
    assert f"{path}:4: llm.usage.cost_usd must be a finite number not below 0 (at most 1e+06), not 1e+308" in reasons
    assert f"{path}:6: not a JSON span record" in reasons
    assert f"{path}:7: llm.usage.cost_usd must be a finite number" in reasons
    assert f"{path}:8: llm.usage.cost_usd is not a number: '0.5'" in reasons
    assert f"{path}:9: gen_ai.usage.input_tokens must be a whole number" in reasons
    assert f"{path}:10: attributes is not an object" in reasons
    assert f"{path}:11: not a JSON span record: a int, not an object" in reasons


def test_only_the_first_problems_are_named(tmp_path: Path) -> None:
    path = spans(tmp_path, *(["not json"] * (MAX_PROBLEMS_SHOWN + 5)), call("ok"))
    report = stream_report(path, [("group",)])
    assert report.skipped == MAX_PROBLEMS_SHOWN + 5
    assert len(report.problems) == MAX_PROBLEMS_SHOWN
    assert report.total.calls == 1


def test_a_cut_last_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(call("ok")) + "\n" + json.dumps(call("cut"))[:40])
    report = stream_report(path, [("group",)])
    assert report.total.calls == 1
    assert report.problems == (f"{path}:2: the last line is cut short (its writer stopped mid-line)",)


@pytest.mark.parametrize(
    ("session", "cell"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\\x09x"),  # the formula guard, then the control character escaped for the terminal
        ("plain", "plain"),
    ],
)
def test_csv_cells_are_neutralised(tmp_path: Path, session: str, cell: str) -> None:
    report = stream_report(spans(tmp_path, call("a", **{sc.SESSION_ID: session})), [("session",)])
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert rows[0]["session"] == cell


def test_since_and_until_select_calls_by_start_with_their_attempts(tmp_path: Path) -> None:
    path = spans(
        tmp_path,
        attempt("old"),
        call("old", 1.0, T0 - 2 * DAY),
        attempt("mid", 0),
        attempt("mid", 1, "retry"),
        call("mid", 2.0, T0),
        attempt("new"),
        call("new", 4.0, T0 + 2 * DAY),
    )
    report = stream_report(path, [("group",)], since_ns=T0 - DAY, until_ns=T0 + DAY)
    assert (report.total.calls, report.total.attempts, report.total.retries) == (1, 2, 1)
    assert report.total.cost_usd == 2.0
    assert report.orphan_attempts == 0
    assert stream_report(path, [("group",)], since_ns=T0).total.cost_usd == 6.0


def test_an_attempt_written_after_its_call_still_counts(tmp_path: Path) -> None:
    path = spans(tmp_path, call("a"), attempt("a", 0), attempt("a", 1, "retry"), attempt("ghost"))
    report = stream_report(path, [("session",), ("deployment",)])
    assert report.total.attempts == 2
    assert report.total.retries == 1
    assert report.breakdowns[1].rows[0].attempts == 2
    assert report.orphan_attempts == 1


def test_tag_and_model_breakdowns(tmp_path: Path) -> None:
    path = spans(
        tmp_path,
        call("a", 1.0, **{sc.ROUTER_TAGS: ["search", "beta"], sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini"}),
        call("b", 2.0, **{sc.ROUTER_TAGS: ["search"], sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}),
        call("c", 4.0),
    )
    by_tag, by_model, by_both = stream_report(path, [("tag",), ("model",), ("tag", "model")]).breakdowns
    assert {row.key: row.cost_usd for row in by_tag.rows} == {("search",): 3.0, ("beta",): 1.0, (None,): 4.0}
    assert {row.key: row.calls for row in by_model.rows} == {("gpt-4o-mini",): 1, ("gpt-4o",): 1, (None,): 1}
    assert ("beta", "gpt-4o-mini") in {row.key for row in by_both.rows}


def test_sums_are_exact_whatever_the_order() -> None:
    rng = random.Random(7)
    costs = [rng.uniform(0, 0.01) for _ in range(10_000)]
    rows = []
    for ordered in (costs, sorted(costs), sorted(costs, reverse=True)):
        row = ReportRow(())
        for cost in ordered:
            row.cost_pico += round(cost * 1e12)
        rows.append(row.cost_usd)
    assert rows[0] == rows[1] == rows[2]
    assert rows[0] == pytest.approx(math.fsum(costs), abs=1e-8)


def test_p95_is_exact_for_small_rows_and_within_one_percent_for_large_ones() -> None:
    rng = random.Random(3)
    small, large = ReportRow(()), ReportRow(())
    values = [rng.lognormvariate(5, 1) for _ in range(20_000)]
    for value in values[:100]:
        small.add_latency(value)
    for value in values:
        large.add_latency(value)
    assert small.latency_ms_p95 == sorted(values[:100])[94]
    exact = sorted(values)[math.ceil(0.95 * len(values)) - 1]
    assert large.latency_ms_p95 == pytest.approx(exact, rel=0.01)
    assert large.latencies_ms == []  # the row keeps a histogram, not the values
    assert large.latency_ms_mean == pytest.approx(sum(values) / len(values))


def test_timeline_widens_to_stay_bounded() -> None:
    timeline = Timeline(max_buckets=64)
    for minute in range(10_000):
        timeline.add("fast", T0 + minute * 60 * NS, 1)
    assert len(timeline.buckets) <= 64
    starts, groups = timeline.series(points=20)
    assert len(starts) <= 20
    assert sum(groups["fast"]) == 10_000


def test_parse_instant() -> None:
    assert parse_instant("2026-11-27") == 1_795_737_600 * NS
    assert parse_instant("2026-11-27T01:00:00+01:00") == 1_795_737_600 * NS
    assert parse_instant("2026-11-27T00:00Z") == 1_795_737_600 * NS
    assert parse_instant("24h", now_ns=10 * DAY) == 9 * DAY
    assert parse_instant("7d", now_ns=10 * DAY) == 3 * DAY
    with pytest.raises(ValueError, match="neither an ISO 8601 time"):
        parse_instant("yesterday")


def test_countable_values_of_unusual_types_are_converted_not_skipped(tmp_path: Path) -> None:
    odd = call("odd", **{sc.SESSION_ID: 42, sc.GEN_AI_USAGE_INPUT_TOKENS: 10.0, sc.ROUTER_TAGS: "solo"})
    odd["attributes"][sc.LLM_USAGE_COST_USD] = 1  # an int, not a float
    odd["start_time_ns"], odd["trace_id"] = float(T0), 7
    plain = call("plain", 0.5, **{sc.ROUTER_TAGS: ["a", "b", "a"], sc.LLM_LATENCY_MS: 12})
    path = spans(tmp_path, odd, attempt("plain"), plain, {**call("bare"), "attributes": None})
    report = stream_report(path, [("session",), ("tag",)])
    assert report.skipped == 0
    assert report.total.calls == 3
    assert report.total.cost_usd == 1.5
    assert report.total.input_tokens == 20
    assert report.total.attempts == 1
    assert {row.key: row.calls for row in report.breakdowns[0].rows} == {("42",): 1, (None,): 2}
    assert {row.key: row.calls for row in report.breakdowns[1].rows} == {("solo",): 1, ("a",): 1, ("b",): 1, (None,): 1}


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_left_as_it_was(tmp_path: Path, enabled: bool) -> None:
    path = spans(tmp_path, call("a"), "not json")
    if not enabled:
        gc.disable()
    try:
        stream_report(path, [("group",)])
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


@pytest.mark.parametrize("chunk_bytes", [None, 1_000_000])
def test_a_line_past_the_limit_is_passed_over_named_and_never_held(tmp_path: Path, chunk_bytes: int | None) -> None:
    path = tmp_path / "spans.jsonl"
    with path.open("w") as out:
        out.write(json.dumps(call("before", 0.25)) + "\n")
        out.write(json.dumps(attempt("after")) + "\n")  # an attempt whose call comes after the long line
        filler = "x" * (1 << 20)
        for _ in range(MAX_LINE_BYTES // len(filler) + 1):
            out.write(filler)
        out.write("\n")
        out.write(json.dumps(call("after", 0.5)) + "\n")
    options = {"workers": 1} if chunk_bytes is None else {"workers": 1, "chunk_bytes": chunk_bytes}
    report = stream_report(path, [("group",)], **options)
    assert report.total.calls == 2
    assert report.total.cost_usd == 0.75
    assert report.skipped == 1
    assert f"{path}:3: longer than {MAX_LINE_BYTES:,} bytes: not read" in "\n".join(report.problems)
