"""The span file's format: one OTLP JSON ``TracesData`` object a line, or one span record a line.

What the ``file`` exporter writes and ``costrouter report`` reads. This module needs only the
standard library, so reading a span file does not load the OpenTelemetry SDK or the settings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any, TypedDict, cast

from costrouter.otel.otlp_json import is_otlp_json, otlp_json_records

__all__ = ["SpanEventRecord", "SpanRecord", "SpanStatusRecord", "read_span_records"]


class SpanStatusRecord(TypedDict):
    """A span's status: ``UNSET`` | ``OK`` | ``ERROR`` and the optional description."""

    code: str
    description: str | None


class SpanEventRecord(TypedDict):
    """One span event: name, time (ns since the epoch) and attributes."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


class SpanRecord(TypedDict):
    """One line of the ``file`` exporter's JSON-lines file.

    Ids are lowercase hex (trace 32 characters, span 16); ``parent_span_id`` is ``None`` for
    a root span; times are nanoseconds since the epoch; sequence attributes are lists.
    """

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    start_time_ns: int
    end_time_ns: int
    status: SpanStatusRecord
    attributes: dict[str, Any]
    events: list[SpanEventRecord]
    resource: dict[str, Any]
    scope: str | None


def read_span_records(path: str | os.PathLike[str]) -> Iterator[SpanRecord]:
    """Yield the spans of a span file, in file order.

    Each line is either an OTLP JSON ``TracesData`` object (what the ``file`` exporter and the
    Collector's ``file`` exporter write) or one span record (the format before OTLP JSON).

    A last line cut short (the process died while writing it) is skipped; any other line
    that is not a JSON object (nested too deep to decode, say) raises ``ValueError`` naming
    the file and line.
    """
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if not line.endswith("\n"):
                    return
                raise ValueError(f"{path}:{number}: not a JSON span record: {exc}") from exc
            except RecursionError:  # json recurses once per level: a hostile line of '[' x 100,000
                raise ValueError(f"{path}:{number}: not a JSON span record: nested too deep") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: not a JSON span record")
            if is_otlp_json(record):
                try:
                    yield from (cast(SpanRecord, span) for span in otlp_json_records(record))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    raise ValueError(f"{path}:{number}: not an OTLP JSON traces object: {exc}") from exc
                continue
            yield cast(SpanRecord, record)
