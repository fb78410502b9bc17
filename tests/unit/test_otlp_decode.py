"""The typed OTLP JSON decoder gives the checked path's records exactly, or hands the line back to it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from costrouter.otlp_decode import otlp_line_records
from costrouter.otlp_json import otlp_json_records, spans_to_otlp_json
from costrouter.report_read import stream_report

REFUSED = "refused"
"""What the checked path gives for a line it cannot read (the report skips it, naming the reason)."""


def checked(line: bytes) -> list[dict[str, Any]] | str:
    """The records of the checked path (orjson, then otlp_json_records), or REFUSED."""
    try:
        return otlp_json_records(orjson.loads(line))
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, AttributeError):
        return REFUSED


def assert_identical(left: Any, right: Any, where: str = "$") -> None:
    """Equal, and of the same types all the way down (``1 == 1.0 == True`` would hide a difference)."""
    assert type(left) is type(right), f"{where}: {left!r} vs {right!r}"
    if isinstance(left, dict):
        assert list(left) == list(right), where
        for key in left:
            assert_identical(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_identical(a, b, f"{where}[{index}]")
    else:
        both_nan = isinstance(left, float) and math.isnan(left) and math.isnan(right)
        assert left == right or both_nan, f"{where}: {left!r} vs {right!r}"


# ---- documents: mostly what exporters write, with every field now and then of another type ----
odd = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3), st.just([]), st.just({}))


def rarely(strategy: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``strategy``, and one time in 25 ``other``: most lines stay readable, and each field is sometimes not."""
    return st.integers(0, 24).flatmap(lambda n: other if n == 0 else strategy)


number_text = st.sampled_from(["0", "12", "-3", "+4", " 5", "1_0", "1e3", "1.0", "0x10", "abc", "", "٣", "9" * 25])
ints = st.one_of(st.integers(-(2**70), 2**70).map(str), st.integers(-(2**70), 2**70), number_text)
ids = rarely(
    st.one_of(
        st.binary(min_size=8, max_size=16).map(bytes.hex),
        st.binary(min_size=8, max_size=8).map(lambda raw: raw.hex().upper()),
        st.sampled_from(["", "zz", "abc", "AAECAwQFBgc=", "ab cd", "0x12"]),
    ),
    odd,
)
texts = rarely(st.text(max_size=8), odd)


def any_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.builds(lambda v: {"stringValue": v}, texts),
        st.builds(lambda v: {"boolValue": v}, rarely(st.booleans(), odd)),
        st.builds(lambda v: {"intValue": v}, rarely(ints, odd)),
        st.builds(
            lambda v: {"doubleValue": v},
            rarely(st.one_of(st.floats(allow_nan=False, allow_infinity=False), number_text, st.just("NaN")), odd),
        ),
        st.builds(lambda v: {"bytesValue": v}, rarely(st.just("AAEC"), odd)),
        rarely(
            st.just({}),
            st.sampled_from(
                [{"fooValue": 1}, {"stringValue": "a", "intValue": "3"}, {"boolValue": True, "intValue": 1}]
            ),
        ),
        rarely(st.just({"stringValue": "x"}), odd),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.builds(lambda vs: {"arrayValue": {"values": vs}}, st.lists(inner, max_size=3)),
            st.builds(
                lambda vs: {"kvlistValue": {"values": vs}},
                st.lists(st.fixed_dictionaries({"key": st.text(max_size=4), "value": inner}), max_size=3),
            ),
            rarely(st.just({"arrayValue": {}}), st.builds(lambda v: {"arrayValue": v}, odd)),
        ),
        max_leaves=6,
    )


def optional(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


key_values = st.lists(
    rarely(
        st.fixed_dictionaries(
            {
                "key": st.one_of(
                    st.sampled_from(["session.id", "llm.usage.cost_usd", "router.tags"]), st.text(max_size=6)
                )
            },
            optional={"value": any_values()},
        ),
        st.one_of(optional({"key": odd, "value": any_values()}), odd),
    ),
    max_size=5,
)
times = rarely(ints, st.one_of(st.floats(0, 2e18, allow_nan=False), odd))
spans = optional(
    {
        "traceId": ids,
        "spanId": ids,
        "parentSpanId": ids,
        "name": rarely(st.sampled_from(["router.completion/fast", "router.attempt/fast-a", ""]), odd),
        "kind": rarely(
            st.integers(0, 5), st.one_of(st.integers(-1, 9), st.sampled_from(["SPAN_KIND_CLIENT", "3", "x"]), odd)
        ),
        "startTimeUnixNano": times,
        "endTimeUnixNano": times,
        "attributes": rarely(key_values, odd),
        "events": rarely(
            st.lists(optional({"name": texts, "timeUnixNano": times, "attributes": key_values}), max_size=2), odd
        ),
        "status": rarely(
            optional(
                {
                    "code": rarely(
                        st.integers(0, 2), st.one_of(st.sampled_from(["STATUS_CODE_ERROR", "2", "OK"]), odd)
                    ),
                    "message": texts,
                }
            ),
            odd,
        ),
        # Fields no record holds: passed over, whatever they are.
        "flags": st.one_of(st.just(256), odd),
        "links": st.lists(st.fixed_dictionaries({"traceId": ids, "spanId": ids}), max_size=1),
        "traceState": st.text(max_size=3),
    }
)
documents = st.fixed_dictionaries(
    {
        "resourceSpans": rarely(
            st.lists(
                optional(
                    {
                        "resource": rarely(optional({"attributes": rarely(key_values, odd)}), odd),
                        "scopeSpans": rarely(
                            st.lists(
                                optional(
                                    {
                                        "scope": rarely(optional({"name": rarely(st.text(max_size=4), odd)}), odd),
                                        "spans": rarely(st.lists(spans, max_size=4), odd),
                                    }
                                ),
                                max_size=2,
                            ),
                            odd,
                        ),
                    }
                ),
                max_size=2,
            ),
            odd,
        )
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents, compact=st.booleans())
def test_the_decoder_gives_the_checked_records_or_hands_the_line_back(document: dict[str, Any], compact: bool) -> None:
    line = json.dumps(document, separators=(",", ":") if compact else None).encode() + b"\n"
    fast = otlp_line_records(line)
    event("handed back" if fast is None else "decoded here")
    if fast is None:
        return  # the checked path reads it, and says what is wrong with it, if anything
    slow = checked(line)
    assert slow != REFUSED, f"the decoder read a line the checked path refuses: {line!r}"
    assert_identical(fast, slow)


def exporter_spans() -> list[ReadableSpan]:
    """Real SDK spans of every attribute type, with events, links, a parent and an error status."""

    def context(trace_id: int, span_id: int) -> SpanContext:
        return SpanContext(trace_id, span_id, False, TraceFlags(TraceFlags.SAMPLED))

    call = ReadableSpan(
        name="router.completion/fast",
        context=context(0xABC, 0x1),
        resource=Resource({"service.name": "svc", "service.instance.id": "é-1"}),
        attributes={
            "router.model_group": "fast",
            "session.id": "s-✓",
            "router.tags": ("a", "b"),
            "gen_ai.usage.input_tokens": 12,
            "llm.usage.cost_usd": 0.0125,
            "budget.enforced": True,
            "retry.counts": (1, 2),
            "ratios": (0.5, 1.5),
            "flags": (True, False),
        },
        events=[Event("router.retry", {"attempt": 2, "reason": "429"}, timestamp=1_790_000_000_000_000_001)],
        links=[Link(context(0xDEF, 0x2), {"why": "fallback"})],
        kind=SpanKind.CLIENT,
        start_time=1_790_000_000_000_000_000,
        end_time=1_790_000_000_500_000_000,
        status=Status(StatusCode.ERROR, "provider down"),
        instrumentation_scope=InstrumentationScope("costrouter"),
    )
    attempt = ReadableSpan(
        name="router.attempt/fast-a",
        context=context(0xABC, 0x3),
        parent=context(0xABC, 0x1),
        resource=Resource({"service.name": "svc"}),
        attributes={"router.attempt.index": 0, "router.attempt.outcome": "failure"},
        kind=SpanKind.INTERNAL,
        start_time=1_790_000_000_000_000_000,
        end_time=1_790_000_000_400_000_000,
        status=Status(StatusCode.OK),
        instrumentation_scope=InstrumentationScope("costrouter"),
    )
    return [attempt, call]


def test_what_the_file_exporter_writes_is_decoded_here_and_matches_the_checked_path() -> None:
    line = (spans_to_otlp_json(exporter_spans()) + "\n").encode()
    fast = otlp_line_records(line)
    assert fast is not None
    assert_identical(fast, checked(line))
    assert [record["name"] for record in fast] == ["router.attempt/fast-a", "router.completion/fast"]
    assert fast[1]["attributes"]["router.tags"] == ["a", "b"]
    assert fast[1]["events"][0]["attributes"] == {"attempt": 2, "reason": "429"}
    assert fast[1]["status"] == {"code": "ERROR", "description": "provider down"}


@pytest.mark.parametrize(
    "line",
    [
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x","traceId":5}]}]}]}\n',  # an id of another type
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}\n',  # int() refuses
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":1180591620717411303424}]}]}]}\n',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\xff"}]}]}]}\n',  # not UTF-8
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"flags":"\xff"}]}]}]}\n',  # not UTF-8, in a field passed over
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"}]}]}]} trailing\n',
        b'{"resourceSpans":' + b"[" * 5000 + b"]" * 5000 + b"}\n",
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"cut',
    ],
)
def test_a_line_the_decoder_does_not_take_goes_back_to_the_checked_path(line: bytes) -> None:
    assert otlp_line_records(line) is None


def test_a_record_line_is_left_to_the_checked_path() -> None:
    assert otlp_line_records(b'{"name":"router.completion/fast","attributes":{}}\n') is None


def test_a_number_beyond_a_double_in_a_field_no_record_holds_does_not_cost_the_line(tmp_path: Path) -> None:
    """orjson refuses 1e400 anywhere in a line; the decoder passes over fields a report never reads."""
    span = (
        '{"traceId":"0a","spanId":"0b","name":"router.completion/fast","startTimeUnixNano":"1",'
        '"attributes":[{"key":"llm.usage.cost_usd","value":{"doubleValue":0.5}}],"flags":1e400}'
    )
    line = ('{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + "]}]}]}\n").encode()
    assert checked(line) == REFUSED
    records = otlp_line_records(line)
    assert records is not None
    assert records[0]["attributes"] == {"llm.usage.cost_usd": 0.5}
    path = tmp_path / "spans.jsonl"
    path.write_bytes(line)
    report = stream_report(path, [])
    assert (report.spans, report.skipped, report.total.calls, report.total.cost_usd) == (1, 0, 1, 0.5)
    # In a field a record holds, the same number still costs the line, as the checked path says.
    path.write_bytes(line.replace(b'"doubleValue":0.5', b'"doubleValue":1e400'))
    report = stream_report(path, [])
    assert (report.spans, report.skipped) == (1, 1)
    assert "not a JSON span record" in report.problems[0]
