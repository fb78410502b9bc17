"""Writing a call span's attributes without the SDK's per-value checks, where that changes nothing.

The SDK's ``Span.set_attributes`` passes the whole mapping through ``_clean_attribute_value``
and then inserts each pair under a lock (``BoundedAttributes._set_items``): about 3.5 k
instructions an attribute under callgrind, and a routed call writes 77. The values costrouter builds are
of the types that check returns unchanged (``str``, ``bool``, ``int``, ``float``, tuples of
those), so when the span is the SDK's own recording span, with no value-length limit and room
for every key, they go into its attribute dict directly, under the span's lock and the
dict's, as ``_set_items`` would leave them. Anything else goes through ``set_attributes``: a
span of another SDK or a proxy, a span limit on value length, a value of another type (a list,
a mapping, a subclass), a span that would drop keys, an ended span (the SDK warns), and an SDK
whose internals are not the ones checked below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.sdk.trace import SpanProcessor, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Span, Tracer
from opentelemetry.util.types import AttributeValue

from costrouter.otel.span_queue import QueuedSpanProcessor

_PLAIN: Final = frozenset({str, bool, int, float})
_PLAIN_OR_TUPLE: Final = _PLAIN | {tuple}
_STR: Final = frozenset({str})

try:
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.trace import _Span as _SdkSpan
except ImportError:  # pragma: no cover - the SDK is a dependency; another SDK takes the public path
    BoundedAttributes = None  # type: ignore[assignment,misc]
    _SdkSpan = None  # type: ignore[assignment,misc]


def _internals_known() -> bool:
    """Whether this SDK keeps span attributes the way :func:`set_attributes` writes them."""
    if BoundedAttributes is None or _SdkSpan is None:
        return False
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415 - the probe only
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    provider = TracerProvider(sampling.ALWAYS_ON, Resource.get_empty(), shutdown_on_exit=False)
    span = provider.get_tracer("probe").start_span("probe")
    span_state = getattr(span, "__dict__", {})
    state = getattr(span_state.get("_attributes"), "__dict__", {})
    return (
        type(span) is _SdkSpan
        and hasattr(span_state.get("_lock"), "__enter__")
        and span_state.get("_end_time", 0) is None
        and type(span_state.get("_attributes")) is BoundedAttributes
        and type(state.get("_dict")) is dict
        and state.get("_immutable") is False
        and "maxlen" in state
        and "max_value_len" in state
        and hasattr(state.get("_lock"), "__enter__")
        and hasattr(BoundedAttributes, "_set_items")
    )


_FAST: Final = _internals_known()


def plain(attributes: Mapping[str, AttributeValue]) -> bool:
    """Whether every key is a non-empty ``str`` and every value one the SDK would store unchanged."""
    if "" in attributes or not set(map(type, attributes)) <= _STR:
        return False
    values = attributes.values()
    kinds = set(map(type, values))
    if kinds <= _PLAIN:
        return True
    if not kinds <= _PLAIN_OR_TUPLE:
        return False
    items: set[type] = set()
    for value in values:
        if value.__class__ is tuple:
            items.update(map(type, value))
    return items <= _PLAIN


def _target(span: Any, count: int) -> dict[str, Any] | None:
    """The SDK span's attribute dict when ``count`` plain values can go into it directly."""
    if not _FAST or type(span) is not _SdkSpan:
        return None
    bounded = span.__dict__.get("_attributes")
    if type(bounded) is not BoundedAttributes or bounded.max_value_len is not None or bounded._immutable:
        return None
    store = bounded.__dict__.get("_dict")
    if type(store) is not dict:
        return None
    if bounded.maxlen is not None and len(store) + count > bounded.maxlen:
        return None  # the SDK evicts the oldest keys and counts them: its own path does that
    return store


_BLIND_SAMPLERS: Final = (sampling.StaticSampler, sampling.TraceIdRatioBased)
_PARENT_DELEGATES: Final = (
    "_root",
    "_remote_parent_sampled",
    "_remote_parent_not_sampled",
    "_local_parent_sampled",
    "_local_parent_not_sampled",
)


def _ignores_attributes(sampler: object, depth: int = 0) -> bool:
    if isinstance(sampler, _BLIND_SAMPLERS) and type(sampler).should_sample in (
        sampling.StaticSampler.should_sample,
        sampling.TraceIdRatioBased.should_sample,
    ):
        return True
    if isinstance(sampler, sampling.ParentBased) and type(sampler).should_sample is sampling.ParentBased.should_sample:
        delegates = [getattr(sampler, name, None) for name in _PARENT_DELEGATES]
        return depth < 4 and all(_ignores_attributes(delegate, depth + 1) for delegate in delegates)
    return False


def samples_without_attributes(tracer: Tracer) -> bool:
    """Whether ``tracer`` is the SDK's and its sampler decides without reading a span's start attributes.

    The SDK's own samplers (always on/off, trace-id ratio, parent-based over those) never read
    them; then a span can start bare and take its attributes through :func:`set_attributes`.
    Any other sampler gets them at ``start_span``, as the API promises.
    """
    return _FAST and _ignores_attributes(getattr(tracer, "sampler", None))


_QUIET_ON_START: Final = frozenset(
    {
        SpanProcessor.on_start,
        BatchSpanProcessor.on_start,
        SimpleSpanProcessor.on_start,
        QueuedSpanProcessor.on_start,
    }
)
"""``on_start`` of the processors known to read nothing of a span when it starts."""


class BareStart:
    """Whether a tracer's call span can start without attributes and take them in one direct write.

    Only when the sampler reads no start attributes (:func:`samples_without_attributes`) and every
    span processor's ``on_start`` is one known to read nothing: a processor of the user's gets the
    attributes when the span starts, as the API promises. Processors can be added to a provider
    at any time: the check runs again whenever its list changes.
    """

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer
        self._sampler_blind = samples_without_attributes(tracer)
        self._seen: object = None
        self._quiet = False

    def __call__(self) -> bool:
        """Whether the next call span may start bare."""
        if not self._sampler_blind:
            return False
        processors = getattr(getattr(self._tracer, "span_processor", None), "_span_processors", None)
        if processors is not self._seen:
            self._seen = processors
            self._quiet = type(processors) is tuple and all(
                type(processor).on_start in _QUIET_ON_START for processor in processors
            )
        return self._quiet


def set_attributes(span: Span, attributes: Mapping[str, AttributeValue], *, plain_values: bool = False) -> None:
    """``span.set_attributes(attributes)``, without the SDK's per-value checks where they change nothing.

    ``plain_values``: the caller built every key and value plain (:func:`plain` holds by construction),
    so the scan is skipped.
    """
    store = _target(span, len(attributes)) if plain_values or plain(attributes) else None
    if store is None:
        span.set_attributes(attributes)
        return
    written = False
    sdk_span: Any = span
    with sdk_span._lock:
        if sdk_span._end_time is None:
            with sdk_span._attributes._lock:
                store.update(attributes)
            written = True
    if not written:
        span.set_attributes(attributes)  # ended: the SDK's warning, and nothing written
