"""Spans as OTLP JSON (what the Collector's ``file`` exporter writes), and back to span records.

One line is one ``TracesData`` object: ``{"resourceSpans": [{"resource", "scopeSpans": [{"scope",
"spans": [...]}]}]}`` with lowerCamelCase fields, hex trace and span ids, integer enums and
64-bit integers as strings (the OTLP/JSON encoding rules of the OTLP specification). The
encoding itself is the OTLP exporter's public ``encode_spans``; only ids are re-encoded as hex.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Container, Mapping, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

_ID_FIELDS: Final = ("traceId", "spanId", "parentSpanId")
KINDS: Final = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_CODES: Final = {0: "UNSET", 1: "OK", 2: "ERROR"}


def spans_to_otlp_json(spans: Sequence[ReadableSpan]) -> str:
    """One compact ``TracesData`` JSON object holding ``spans`` (no newline)."""
    # Loaded on first use (protobuf and the OTLP encoder: ~0.4 s), so a router that never
    # writes OTLP JSON does not import them.
    encode_spans = import_module("opentelemetry.exporter.otlp.proto.common.trace_encoder").encode_spans
    message_to_dict = import_module("google.protobuf.json_format").MessageToDict
    data: dict[str, Any] = message_to_dict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in _ID_FIELDS:
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
                for link in span.get("links", []):
                    for key in ("traceId", "spanId"):
                        if key in link:
                            link[key] = base64.b64decode(link[key]).hex()
    return json.dumps(data, separators=(",", ":"))


def is_otlp_json(document: Mapping[str, Any]) -> bool:
    """Whether a decoded line is an OTLP JSON ``TracesData`` object (not a costrouter span record)."""
    return "resourceSpans" in document


def hex_id(value: Any) -> str | None:
    """A span or trace id as lowercase hex (OTLP JSON writes hex; protobuf's canonical JSON, base64)."""
    if not value:
        return None
    text = str(value)
    try:
        bytes.fromhex(text)
    except ValueError:  # protobuf's canonical JSON writes bytes as base64
        try:
            return base64.b64decode(text, validate=True).hex()
        except binascii.Error as exc:
            raise ValueError(f"not a hex or base64 id: {text!r}") from exc
    return text.lower()


_SCALARS: Final = {
    "stringValue": str,
    "boolValue": bool,
    "intValue": int,
    "doubleValue": float,
    "bytesValue": str,
}


def any_value(value: Mapping[str, Any]) -> Any:
    """A Python value from an OTLP JSON ``AnyValue``."""
    for key, convert in _SCALARS.items():
        if key in value:
            return convert(value[key])
    if "arrayValue" in value:
        return [any_value(item) for item in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes(value["kvlistValue"].get("values", []))
    return None


def attributes(pairs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A dict from an OTLP JSON list of ``KeyValue``."""
    result: dict[str, Any] = {}
    scalars = _SCALARS
    for pair in pairs:
        key = pair["key"]
        value = pair.get("value", _NO_VALUE)
        # The common case, one scalar (a string most often), without any_value's walk.
        if value.__class__ is dict and len(value) == 1:
            ((kind, item),) = value.items()
            if kind == "stringValue" and item.__class__ is str:
                result[key] = item
                continue
            convert = scalars.get(kind)
            if convert is not None:
                result[key] = convert(item)
                continue
        result[key] = any_value(value)
    return result


_NO_VALUE: Final[Mapping[str, Any]] = {}


def kept_attributes(pairs: Sequence[Mapping[str, Any]], keep: Container[str]) -> dict[str, Any]:
    """:func:`attributes`, of the keys in ``keep`` only: the others are not converted, nor checked."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key = pair["key"]
        if key in keep:
            result[key] = any_value(pair.get("value", _NO_VALUE))
    return result


def enum_name(value: Any, names: Mapping[int, str], prefix: str) -> str:
    """The name of an OTLP enum value given as a number, a numeric string or its full name."""
    if value.__class__ is int:
        return names.get(value, names[0])
    if isinstance(value, str) and not value.isdigit():
        return value.removeprefix(prefix) or names[0]
    return names.get(int(value or 0), names[0])


def span_groups(document: Mapping[str, Any]) -> list[tuple[dict[str, Any], Any, list[Any]]]:
    """``(resource attributes, scope name, spans)`` of each scope of a ``TracesData`` object, in order.

    ``ValueError``, ``TypeError``, ``KeyError`` or ``AttributeError`` for a document whose
    resources, scopes or span lists cannot be read; the spans themselves are not read here.
    """
    groups: list[tuple[dict[str, Any], Any, list[Any]]] = []
    for resource_spans in document.get("resourceSpans", []):
        resource = attributes(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {}).get("name")
            spans = scope_spans.get("spans", [])
            if spans.__class__ is not list:
                raise TypeError(f"spans is not a list: {type(spans).__name__}")
            groups.append((resource, scope, spans))
    return groups


def span_record(
    span: Mapping[str, Any], resource: dict[str, Any], scope: Any, keep: Container[str] | None = None
) -> dict[str, Any]:
    """The span record (``costrouter.span_file.SpanRecord`` shape) of one OTLP JSON span.

    ``keep``: the span attributes to keep (default: all). ``ValueError``, ``TypeError``,
    ``KeyError`` or ``AttributeError`` for a span that is not one.
    """
    status = span.get("status", {})
    pairs = span.get("attributes", [])
    return {
        "name": span.get("name", ""),
        "trace_id": hex_id(span.get("traceId")) or "",
        "span_id": hex_id(span.get("spanId")) or "",
        "parent_span_id": hex_id(span.get("parentSpanId")),
        "kind": enum_name(span.get("kind", 0), KINDS, "SPAN_KIND_"),
        "start_time_ns": int(span.get("startTimeUnixNano", 0)),
        "end_time_ns": int(span.get("endTimeUnixNano", 0)),
        "status": {
            "code": enum_name(status.get("code", 0), STATUS_CODES, "STATUS_CODE_"),
            "description": status.get("message") or None,
        },
        "attributes": attributes(pairs) if keep is None else kept_attributes(pairs, keep),
        "events": [
            {
                "name": event.get("name", ""),
                "time_ns": int(event.get("timeUnixNano", 0)),
                "attributes": attributes(event.get("attributes", [])),
            }
            for event in span.get("events", [])
        ],
        "resource": resource,
        "scope": scope,
    }


def otlp_json_records(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The span records (``costrouter.span_file.SpanRecord`` shape) of one ``TracesData`` object.

    Raises (as :func:`span_groups` and :func:`span_record` do) when any part of it cannot be read.
    """
    return [span_record(span, resource, scope) for resource, scope, spans in span_groups(document) for span in spans]
