"""One line of a span file → its span records, each one or the reason it cannot be read.

A line is one span record (the format before OTLP JSON) or one OTLP JSON ``TracesData``
object holding a batch of spans (what the ``file`` exporters write). A line that is not JSON,
not an object, or whose resources and scopes cannot be read holds nothing to count:
:func:`line_spans` raises :class:`~costrouter.report_records.BadRecordError`. In a batch, each
span stands alone: one that cannot be read is a :class:`BadRecordError` in its place, and the
others are read. A batch span's record keeps only the attributes a report reads
(:data:`~costrouter.report_records.REPORT_ATTRIBUTES`); the others are neither converted nor
checked.

Batches are decoded by :mod:`costrouter.otlp_decode` where they have the types an exporter
writes, and by orjson with :mod:`costrouter.otlp_json` (the checked path, which names what is
wrong) where they do not; both give the same records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

import msgspec
import orjson

from costrouter.otel.otlp_json import span_groups, span_record
from costrouter.report.otlp_decode import NOT_DECODED, SpanGroup, decode_groups, decode_span
from costrouter.report.records import REPORT_ATTRIBUTES, BadRecordError

__all__ = ["SpanOrProblem", "checked_line_spans", "line_spans"]

SpanOrProblem = dict[str, Any] | BadRecordError
_NOT_A_SPAN: Final = (ValueError, TypeError, KeyError, AttributeError)
"""What :mod:`costrouter.otlp_json` raises for a part of a document that is not what OTLP JSON says."""


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if not data.endswith(b"\n"):
            raise BadRecordError("the last line is cut short (its writer stopped mid-line)") from exc
        raise BadRecordError(f"not a JSON span record: {exc}") from exc


def _checked_span(span: Any, resource: dict[str, Any], scope: Any) -> SpanOrProblem:
    try:
        return span_record(span, resource, scope, REPORT_ATTRIBUTES)
    except _NOT_A_SPAN as exc:
        return BadRecordError(f"not an OTLP JSON span: {exc}")


def _checked_spans(groups: list[tuple[dict[str, Any], Any, list[Any]]]) -> Iterator[SpanOrProblem]:
    for resource, scope, spans in groups:
        for span in spans:
            yield _checked_span(span, resource, scope)


def _decoded_spans(groups: list[SpanGroup]) -> Iterator[SpanOrProblem]:
    for resource, scope, raws in groups:
        for raw in raws:
            try:
                yield decode_span(raw, resource, scope, REPORT_ATTRIBUTES)
            except NOT_DECODED:
                yield _raw_span(raw, resource, scope)


def _raw_span(raw: msgspec.Raw, resource: dict[str, Any], scope: Any) -> SpanOrProblem:
    """A span the decoder did not take, read by the checked path."""
    try:
        span = orjson.loads(bytes(raw))
    except orjson.JSONDecodeError as exc:  # a number beyond a double, in a field a record holds
        return BadRecordError(f"not a JSON span record: {exc}")
    return _checked_span(span, resource, scope)


def checked_line_spans(line: bytes) -> tuple[bool, Iterable[SpanOrProblem]]:
    """:func:`line_spans` on the checked path alone (orjson and :mod:`costrouter.otlp_json`)."""
    document = _json(line)
    if document.__class__ is not dict:
        raise BadRecordError(f"not a JSON span record: a {type(document).__name__}, not an object")
    if "resourceSpans" not in document:
        return False, (document,)
    try:
        groups = span_groups(document)
    except _NOT_A_SPAN as exc:
        raise BadRecordError(f"not an OTLP JSON traces object: {exc}") from exc
    return True, _checked_spans(groups)


def line_spans(line: bytes) -> tuple[bool, Iterable[SpanOrProblem]]:
    """``(whether the line is a batch, its span records in order)``; a span that cannot be read is its problem.

    :class:`BadRecordError` when the line holds nothing to read. The records come one at a
    time: count each before the next is made.
    """
    groups = decode_groups(line)
    if groups is None:
        return checked_line_spans(line)
    return True, _decoded_spans(groups)
