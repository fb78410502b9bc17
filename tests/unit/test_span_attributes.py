"""The direct attribute write leaves a span exactly as the SDK's ``set_attributes`` would, or takes that path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext

from costrouter.context import Caller, resolve_caller
from costrouter.otel import semconv as sc
from costrouter.otel import span_attributes
from costrouter.otel.models import ModelFacts
from costrouter.otel.span_attributes import BareStart, plain, samples_without_attributes, set_attributes
from costrouter.otel.telemetry import Telemetry

VALUES: dict[str, Any] = {
    "router.group": "bench",
    "router.stream": False,
    "router.attempts": 1,
    "llm.usage.cost_usd": 5e-05,
    "gen_ai.response.finish_reasons": ("stop",),
}


def _spans(limits: SpanLimits | None = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _written(attributes: dict[str, Any], *, direct: bool, limits: SpanLimits | None = None) -> ReadableSpan:
    provider, exporter = _spans(limits)
    span = provider.get_tracer("t").start_span("call", attributes={"router.call_id": "c1"})
    if direct:
        set_attributes(span, attributes)
    else:
        span.set_attributes(attributes)
    span.end()
    (finished,) = exporter.get_finished_spans()
    return finished


def test_this_sdk_takes_the_direct_write() -> None:
    provider, _ = _spans()
    span = provider.get_tracer("t").start_span("call")
    assert span_attributes._FAST
    assert span_attributes._target(span, len(VALUES)) is not None


def test_the_direct_write_leaves_what_set_attributes_leaves() -> None:
    direct = _written(dict(VALUES), direct=True)
    sdk = _written(dict(VALUES), direct=False)
    assert dict(direct.attributes or {}) == dict(sdk.attributes or {})
    assert list(direct.attributes or {}) == list(sdk.attributes or {})
    assert direct.dropped_attributes == sdk.dropped_attributes == 0


@pytest.mark.parametrize(
    "value",
    [["stop"], {"nested": 1}, b"raw", True.__class__, ("a", ["b"])],
    ids=["list", "mapping", "bytes", "type", "nested-list"],
)
def test_a_value_of_another_type_goes_through_the_sdk(value: Any) -> None:
    attributes = {**VALUES, "odd": value}
    assert not plain(attributes)
    assert dict(_written(dict(attributes), direct=True).attributes or {}) == dict(
        _written(dict(attributes), direct=False).attributes or {}
    )


def test_a_value_length_limit_is_applied_by_the_sdk() -> None:
    limits = SpanLimits(max_span_attribute_length=3)
    span = _written(dict(VALUES), direct=True, limits=limits)
    assert (span.attributes or {})["router.group"] == "ben"


def test_a_span_without_room_for_every_key_drops_them_as_the_sdk_does() -> None:
    limits = SpanLimits(max_span_attributes=3)
    direct = _written(dict(VALUES), direct=True, limits=limits)
    sdk = _written(dict(VALUES), direct=False, limits=limits)
    assert dict(direct.attributes or {}) == dict(sdk.attributes or {})
    assert direct.dropped_attributes == sdk.dropped_attributes > 0


def test_an_ended_span_takes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    provider, exporter = _spans()
    span = provider.get_tracer("t").start_span("call")
    span.end()
    set_attributes(span, dict(VALUES))
    (finished,) = exporter.get_finished_spans()
    assert not finished.attributes
    assert "ended span" in caplog.text


def test_a_span_of_another_kind_takes_the_public_path() -> None:
    span = NonRecordingSpan(SpanContext(1, 2, is_remote=False))
    set_attributes(span, dict(VALUES))  # the API's no-op span: no error, nothing kept
    assert not span.is_recording()


class _ModelSampler(Sampler):
    """A sampler that keeps only calls to one model: it reads the start attributes."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> SamplingResult:
        attributes = dict(kwargs.get("attributes") or (args[1] if len(args) > 1 else None) or {})
        self.seen.append(attributes)
        keep = attributes.get(sc.GEN_AI_REQUEST_MODEL) == "fast-model"
        return SamplingResult(Decision.RECORD_AND_SAMPLE if keep else Decision.DROP, attributes)

    def get_description(self) -> str:
        return "model sampler"


@pytest.mark.parametrize(
    "sampler",
    [ALWAYS_ON, ALWAYS_OFF, ParentBased(ALWAYS_ON), TraceIdRatioBased(0.5), ParentBasedTraceIdRatio(0.25)],
    ids=["always-on", "always-off", "parent-based", "ratio", "parent-based-ratio"],
)
def test_the_sdks_own_samplers_read_no_start_attributes(sampler: Sampler) -> None:
    assert samples_without_attributes(TracerProvider(sampler=sampler).get_tracer("t"))


def test_a_sampler_that_reads_attributes_gets_them_at_start() -> None:
    sampler = _ModelSampler()
    provider = TracerProvider(sampler=sampler)
    assert not samples_without_attributes(provider.get_tracer("t"))
    assert not samples_without_attributes(TracerProvider(sampler=ParentBased(sampler)).get_tracer("t"))
    telemetry = Telemetry(provider, MeterProvider())
    caller = Caller(session_id="s-1")
    model = ModelFacts("fast-model", "openai", None, None)
    span = telemetry.start_call_span(
        "fast", [{"role": "user", "content": "hi"}], caller, {}, "c1", stream=False, model=model
    )
    assert span.is_recording()
    assert sampler.seen[-1][sc.GEN_AI_REQUEST_MODEL] == "fast-model"
    assert sampler.seen[-1][sc.SESSION_ID] == "s-1"
    span.end()


class _StartReader(SpanProcessor):
    """A processor of the user's that reads a span's attributes when it starts."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(dict(span.attributes or {}))


def _call_span(provider: TracerProvider, exporter: InMemorySpanExporter) -> ReadableSpan:
    telemetry = Telemetry(provider, MeterProvider())
    caller = Caller(session_id="s-1", tags=("a", "b"), metadata={"team": "x"})
    model = ModelFacts("fast-model", "openai", "api.example", 443)
    request = {"max_tokens": 20, "temperature": 0.5}
    span = telemetry.start_call_span(
        "fast", [{"role": "user", "content": "hi"}], caller, request, "c1", stream=False, model=model
    )
    span.end()
    (finished,) = exporter.get_finished_spans()
    return finished


def test_a_call_span_starts_bare_only_while_no_processor_reads_it_at_start() -> None:
    provider, exporter = _spans()
    bare = BareStart(provider.get_tracer("t"))
    assert bare()
    quiet = _call_span(provider, exporter)
    exporter.clear()
    reader = _StartReader()
    provider.add_span_processor(reader)
    assert not bare()
    read = _call_span(provider, exporter)
    assert reader.started[-1] == dict(read.attributes or {})  # the whole start set, at start
    assert dict(quiet.attributes or {}) == dict(read.attributes or {})


_IDS = st.none() | st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=20
)
_METADATA = st.dictionaries(
    st.text(max_size=8),
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.lists(st.integers(), max_size=3),
    max_size=4,
)


@given(
    session=_IDS,
    user=_IDS,
    tags=st.lists(st.text(alphabet="abc-", min_size=1, max_size=5), max_size=3),
    metadata=_METADATA,
    request=st.fixed_dictionaries(
        {},
        optional={
            "max_tokens": st.integers() | st.booleans() | st.text(max_size=3),
            "temperature": st.floats() | st.integers() | st.none() | st.text(max_size=3),
        },
    ),
)
def test_a_call_span_starts_with_plain_values_by_construction(
    session: str | None, user: str | None, tags: list[str], metadata: dict[str, Any], request: dict[str, Any]
) -> None:
    # start_call_span skips the plain() scan without a backend: whatever the caller passed, it must hold.
    provider, _ = _spans()
    telemetry = Telemetry(provider, MeterProvider())
    caller = resolve_caller(
        session if session and session.strip() else None, user if user and user.strip() else None, None, tags, metadata
    )
    span = telemetry.start_call_span(
        "bench",
        [{"role": "user", "content": "hi"}],
        caller,
        request,
        "c1",
        stream=False,
        model=ModelFacts("m", "p", "h", 1),
    )
    started = dict(span.attributes or {})  # type: ignore[attr-defined]
    span.end()
    assert plain(started)
    assert started[sc.ROUTER_CALL_ID] == "c1"
