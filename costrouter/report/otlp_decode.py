"""OTLP JSON ``TracesData`` lines → span records, fast: typed structs, one span at a time.

:func:`costrouter.otlp_json.otlp_json_records` over ``orjson.loads`` builds a dict for every
attribute and every attribute value of a whole line (a batch of 512 spans) before a record is
made. Here msgspec reads a line's resources and scopes, and keeps each span as the raw bytes
it spans (:func:`decode_groups`); :func:`decode_span` then decodes one span straight into
structs of the fields a record holds (unknown fields are passed over) and builds its record,
so a span is counted while its objects are still in the processor's cache.

The records are the same, field for field and type for type, as the checked path gives. What
this decoder does not take goes back to that path, which converts what it can and names what
it cannot: a line that does not start as a ``TracesData`` object does, is not JSON or UTF-8,
or has resources or scopes of other types (:func:`decode_groups` gives ``None``), and a span
whose fields do not have the types an exporter writes (:func:`decode_span` raises one of
:data:`NOT_DECODED`).

One difference, on purpose: a field no record holds (``flags``, ``links``, ``traceState``, an
unknown field) is checked only for being JSON, not for holding a number a double can hold.
"""

from __future__ import annotations

import re
from collections.abc import Container
from typing import Annotated, Any, Final

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from costrouter.otel.otlp_json import KINDS, STATUS_CODES, enum_name, hex_id

__all__ = ["NOT_DECODED", "SpanGroup", "decode_groups", "decode_span"]

_Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
"""A larger integer is left to the checked path: orjson reads one beyond 64 bits as a float."""


class _ArrayValue(Struct, frozen=True, gc=False, rename="camel"):
    values: list[_AnyValue] = []


class _KeyValueList(Struct, frozen=True, gc=False, rename="camel"):
    values: list[_KeyValue] = []


class _AnyValue(Struct, frozen=True, gc=False, rename="camel"):
    string_value: str | UnsetType = UNSET
    bool_value: bool | UnsetType = UNSET
    int_value: _Int64 | str | UnsetType = UNSET
    double_value: float | str | UnsetType = UNSET
    bytes_value: str | UnsetType = UNSET
    array_value: _ArrayValue | UnsetType = UNSET
    kvlist_value: _KeyValueList | UnsetType = UNSET


_NO_VALUE: Final = _AnyValue()


class _KeyValue(Struct, frozen=True, gc=False, rename="camel"):
    key: str
    value: _AnyValue = _NO_VALUE


class _Status(Struct, frozen=True, gc=False, rename="camel"):
    code: _Int64 | str = 0
    message: str = ""


class _Event(Struct, frozen=True, gc=False, rename="camel"):
    name: str = ""
    time_unix_nano: _Int64 | str = 0
    attributes: list[_KeyValue] = []


_NO_STATUS: Final = _Status()


class _Span(Struct, frozen=True, gc=False, rename="camel"):
    trace_id: str = ""
    span_id: str = ""
    parent_span_id: str = ""
    name: str = ""
    kind: _Int64 | str = 0
    start_time_unix_nano: _Int64 | str = 0
    end_time_unix_nano: _Int64 | str = 0
    attributes: list[_KeyValue] = []
    events: list[_Event] = []
    status: _Status = _NO_STATUS


class _Scope(Struct, frozen=True, gc=False, rename="camel"):
    name: str | None = None


class _Resource(Struct, frozen=True, gc=False, rename="camel"):
    attributes: list[_KeyValue] = []


_NO_SCOPE: Final = _Scope()
_NO_RESOURCE: Final = _Resource()


class _ScopeSpans(Struct, frozen=True, gc=False, rename="camel"):
    scope: _Scope = _NO_SCOPE
    spans: list[msgspec.Raw] = []


class _ResourceSpans(Struct, frozen=True, gc=False, rename="camel"):
    resource: _Resource = _NO_RESOURCE
    scope_spans: list[_ScopeSpans] = []


class _TracesData(Struct, frozen=True, gc=False, rename="camel"):
    resource_spans: list[_ResourceSpans] = []


_decode_line = msgspec.json.Decoder(_TracesData).decode
_decode_span = msgspec.json.Decoder(_Span).decode
_TRACES_DATA: Final = re.compile(rb'\s*\{\s*"resourceSpans"\s*:')
"""How a ``TracesData`` line starts: costrouter's and the Collector's ``file`` exporters write it first."""
NOT_DECODED: Final = (msgspec.DecodeError, ValueError, TypeError, KeyError, RecursionError)
"""What :func:`decode_span` raises for a span the checked path must read: DecodeError (ValidationError
is one) for JSON of another type, ValueError for an id or a time the checked path will name,
RecursionError for nesting deeper than msgspec goes (orjson's own limit names it)."""

SpanGroup = tuple[dict[str, Any], str | None, list[msgspec.Raw]]
"""``(resource attributes, scope name, the raw spans)`` of one scope of a line."""


def _value(value: _AnyValue) -> Any:  # noqa: PLR0911 - a return per kind of value, in any_value's order
    """What :func:`costrouter.otlp_json.any_value` gives for the same ``AnyValue`` (the same precedence)."""
    if value.string_value is not UNSET:
        return value.string_value
    if value.bool_value is not UNSET:
        return value.bool_value
    if value.int_value is not UNSET:
        return int(value.int_value)
    if value.double_value is not UNSET:
        return float(value.double_value)
    if value.bytes_value is not UNSET:
        return value.bytes_value
    if value.array_value is not UNSET:
        return [_value(item) for item in value.array_value.values]
    if value.kvlist_value is not UNSET:
        return _attributes(value.kvlist_value.values)
    return None


def _attributes(pairs: list[_KeyValue]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs:
        value = pair.value
        text = value.string_value
        result[pair.key] = text if text is not UNSET else _value(value)
    return result


def _kept_attributes(pairs: list[_KeyValue], keep: Container[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs:
        key = pair.key
        if key in keep:
            value = pair.value
            text = value.string_value
            result[key] = text if text is not UNSET else _value(value)
    return result


def decode_span(
    raw: msgspec.Raw, resource: dict[str, Any], scope: str | None, keep: Container[str] | None = None
) -> dict[str, Any]:
    """The record of one raw span of a :func:`decode_groups` group; one of :data:`NOT_DECODED` when not read here.

    ``keep``: the span attributes to keep (default: all), as
    :func:`~costrouter.otlp_json.span_record` keeps them.
    """
    span = _decode_span(raw)
    pairs = span.attributes
    status = span.status
    events = span.events
    return {
        "name": span.name,
        "trace_id": hex_id(span.trace_id) or "",
        "span_id": hex_id(span.span_id) or "",
        "parent_span_id": hex_id(span.parent_span_id),
        "kind": enum_name(span.kind, KINDS, "SPAN_KIND_"),
        "start_time_ns": int(span.start_time_unix_nano),
        "end_time_ns": int(span.end_time_unix_nano),
        "status": {
            "code": enum_name(status.code, STATUS_CODES, "STATUS_CODE_"),
            "description": status.message or None,
        },
        "attributes": _attributes(pairs) if keep is None else _kept_attributes(pairs, keep),
        "events": [
            {"name": event.name, "time_ns": int(event.time_unix_nano), "attributes": _attributes(event.attributes)}
            for event in events
        ]
        if events
        else [],
        "resource": resource,
        "scope": scope,
    }


def decode_groups(line: bytes) -> list[SpanGroup] | None:
    """The scopes of one OTLP JSON line, each with its spans undecoded; ``None`` when the checked path must read it.

    ``None`` for a line that does not start as a ``TracesData`` object does (its
    ``resourceSpans`` first, as the ``file`` exporters write it), that is not valid JSON or
    UTF-8, or whose resources or scopes hold a field of a type this decoder does not take.
    """
    if _TRACES_DATA.match(line) is None:
        return None
    try:
        if not line.isascii():
            line.decode()  # msgspec does not check the UTF-8 of strings it passes over
        data = _decode_line(line)
        groups: list[SpanGroup] = []
        for resource_spans in data.resource_spans:
            # Read even when it has no scope, as the checked path reads it: a bad value refuses the line there.
            resource = _attributes(resource_spans.resource.attributes)
            groups += [(resource, scope.scope.name, scope.spans) for scope in resource_spans.scope_spans]
        return groups
    except NOT_DECODED:
        return None
