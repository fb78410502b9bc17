"""A real OTLP/HTTP receiver on loopback, for tests: what leaves the process, decoded.

It accepts ``POST …/v1/traces``, ``…/v1/metrics`` and ``…/v1/logs`` under any path prefix
(``/api/v1/traces``, ``/otel/v1/traces`` …, kept in :attr:`ReceivedExport.path`), protobuf or
JSON, plain, gzip or deflate; decodes them with ``opentelemetry-proto`` and keeps the spans,
metric data points and log records as plain Python values. Each signal has a queue of scripted behaviours and a
default one, as in :class:`~costrouter.testing.ProviderDouble`: answer (optionally late),
refuse with a status (429 with ``Retry-After``, 500 …), or block until :meth:`release`.
Only accepted exports are decoded into :attr:`OtlpReceiver.spans` / ``data_points``;
every request is kept in :attr:`OtlpReceiver.requests`.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, NumberDataPoint
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = [
    "Accept",
    "Block",
    "OtlpBehaviour",
    "OtlpReceiver",
    "ReceivedDataPoint",
    "ReceivedEvent",
    "ReceivedExport",
    "ReceivedLogRecord",
    "ReceivedSpan",
    "Refuse",
    "Signal",
]

Signal = Literal["traces", "metrics", "logs"]
"""The OTLP signals the receiver serves: ``…/v1/traces``, ``…/v1/metrics`` and ``…/v1/logs``."""

_T = TypeVar("_T")

_PATHS: dict[str, Signal] = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}


def _signal_of(path: str) -> Signal | None:
    for suffix, signal in _PATHS.items():
        if path.endswith(suffix):
            return signal
    return None


@dataclass(frozen=True)
class Accept:
    """Answer 200 with an empty export response, after ``delay`` seconds (a slow collector)."""

    delay: float = 0.0


@dataclass(frozen=True)
class Refuse:
    """Answer ``status`` (500, 429, 503 …) with ``Retry-After`` when given, after ``delay`` s."""

    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Block:
    """Hold the request unanswered until :meth:`OtlpReceiver.release`, then accept it."""


OtlpBehaviour = Accept | Refuse | Block


@dataclass(frozen=True)
class ReceivedEvent:
    """A span event: name, time (ns since the epoch) and attributes."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, decoded. Ids are lowercase hex; ``parent_span_id`` is None at a root."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: int
    start_time_ns: int
    end_time_ns: int
    attributes: dict[str, Any]
    events: list[ReceivedEvent]
    status_code: Literal["UNSET", "OK", "ERROR"]
    status_message: str
    resource: dict[str, Any]
    scope: str


@dataclass(frozen=True)
class ReceivedDataPoint:
    """One exported metric data point, decoded.

    ``kind`` is ``sum`` | ``gauge`` | ``histogram`` | ``exponential_histogram`` | ``summary``.
    ``value`` holds a sum's or gauge's number; ``count`` / ``sum`` / ``bucket_counts`` /
    ``explicit_bounds`` a histogram's.
    """

    metric: str
    unit: str
    description: str
    kind: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    value: float | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    is_monotonic: bool | None = None


@dataclass(frozen=True)
class ReceivedLogRecord:
    """One exported log record, decoded. Ids are lowercase hex, empty when the record had none."""

    body: Any
    severity_text: str
    severity_number: int
    trace_id: str
    span_id: str
    time_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str


@dataclass(frozen=True)
class ReceivedExport:
    """One HTTP request the receiver got, with what it answered (``status`` 0: never answered)."""

    signal: Signal
    headers: dict[str, str]
    body_size: int
    status: int
    received_at: float
    path: str = ""
    """The request's URL path, e.g. ``/api/v1/traces``."""


@dataclass
class _Script:
    default: OtlpBehaviour = field(default_factory=Accept)
    queue: deque[OtlpBehaviour] = field(default_factory=deque)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


_STATUS: dict[int, Literal["UNSET", "OK", "ERROR"]] = {
    Status.STATUS_CODE_UNSET: "UNSET",
    Status.STATUS_CODE_OK: "OK",
    Status.STATUS_CODE_ERROR: "ERROR",
}


def _span(span: Span, resource: dict[str, Any], scope: str) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        kind=int(span.kind),
        start_time_ns=span.start_time_unix_nano,
        end_time_ns=span.end_time_unix_nano,
        attributes=_attributes(span.attributes),
        events=[ReceivedEvent(e.name, e.time_unix_nano, _attributes(e.attributes)) for e in span.events],
        status_code=_STATUS.get(int(span.status.code), "UNSET"),
        status_message=span.status.message,
        resource=resource,
        scope=scope,
    )


def _number(point: NumberDataPoint) -> float:
    return float(point.as_double) if point.WhichOneof("value") == "as_double" else float(point.as_int)


def _points(metric: Metric, resource: dict[str, Any], scope: str) -> list[ReceivedDataPoint]:
    kind = metric.WhichOneof("data") or ""
    base: dict[str, Any] = {
        "metric": metric.name,
        "unit": metric.unit,
        "description": metric.description,
        "kind": kind,
        "resource": resource,
        "scope": scope,
    }
    if kind in ("sum", "gauge"):
        number_points = metric.sum.data_points if kind == "sum" else metric.gauge.data_points
        monotonic = metric.sum.is_monotonic if kind == "sum" else None
        return [
            ReceivedDataPoint(**base, attributes=_attributes(p.attributes), value=_number(p), is_monotonic=monotonic)
            for p in number_points
        ]
    if kind == "histogram":
        return [
            ReceivedDataPoint(
                **base,
                attributes=_attributes(p.attributes),
                count=p.count,
                sum=p.sum,
                bucket_counts=tuple(p.bucket_counts),
                explicit_bounds=tuple(p.explicit_bounds),
            )
            for p in metric.histogram.data_points
        ]
    if kind == "exponential_histogram":
        return [
            ReceivedDataPoint(**base, attributes=_attributes(p.attributes), count=p.count, sum=p.sum)
            for p in metric.exponential_histogram.data_points
        ]
    if kind == "summary":
        return [
            ReceivedDataPoint(**base, attributes=_attributes(p.attributes), count=p.count, sum=p.sum)
            for p in metric.summary.data_points
        ]
    return []


def _decode_body(raw: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    return raw


class OtlpReceiver:
    """An OTLP/HTTP receiver on 127.0.0.1, served from its own threads.

    >>> with OtlpReceiver() as receiver:
    ...     receiver.script("traces", Refuse(429, retry_after=1), Accept())
    ...     endpoint = receiver.endpoint          # "http://127.0.0.1:PORT"
    ...     spans = receiver.wait_for_spans(3)    # after the code under test exported them
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._scripts: dict[Signal, _Script] = defaultdict(_Script)
        self._requests: list[ReceivedExport] = []
        self._spans: list[ReceivedSpan] = []
        self._points: list[ReceivedDataPoint] = []
        self._logs: list[ReceivedLogRecord] = []
        self._blocked = 0
        self._release = threading.Event()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- scripting -------------------------------------------------------------------
    def script(self, signal: Signal, *behaviours: OtlpBehaviour) -> None:
        """Queue behaviours for ``signal``: each request takes the next one."""
        with self._lock:
            self._scripts[signal].queue.extend(behaviours)

    def set_default(self, signal: Signal, behaviour: OtlpBehaviour) -> None:
        """Set what ``signal`` requests get once its queue is empty (by default ``Accept()``)."""
        with self._lock:
            self._scripts[signal].default = behaviour

    def block(self) -> None:
        """Block every later request of both signals until :meth:`release`."""
        with self._lock:
            self._release.clear()
            for signal in ("traces", "metrics", "logs"):
                self._scripts[signal].default = Block()

    def release(self) -> None:
        """Answer every blocked request (200) and stop blocking new ones."""
        with self._lock:
            for script in self._scripts.values():
                if isinstance(script.default, Block):
                    script.default = Accept()
                script.queue = deque(b for b in script.queue if not isinstance(b, Block))
            self._release.set()

    def reset(self) -> None:
        """Forget scripts, requests, spans and data points."""
        with self._lock:
            self._scripts.clear()
            self._requests.clear()
            self._spans.clear()
            self._points.clear()
            self._logs.clear()

    # ---- inspection ------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT``: ``http://host:port``."""
        return f"http://{self._host}:{self._port}"

    @property
    def traces_endpoint(self) -> str:
        """The full traces URL (``…/v1/traces``), for an exporter's ``endpoint`` argument."""
        return f"{self.endpoint}/v1/traces"

    @property
    def metrics_endpoint(self) -> str:
        """The full metrics URL (``…/v1/metrics``)."""
        return f"{self.endpoint}/v1/metrics"

    @property
    def requests(self) -> list[ReceivedExport]:
        """Every request so far (answered or not), in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Spans of every accepted trace export, in arrival order."""
        with self._lock:
            return list(self._spans)

    @property
    def data_points(self) -> list[ReceivedDataPoint]:
        """Data points of every accepted metric export, in arrival order."""
        with self._lock:
            return list(self._points)

    @property
    def log_records(self) -> list[ReceivedLogRecord]:
        """Log records of every accepted logs export, in arrival order."""
        with self._lock:
            return list(self._logs)

    @property
    def blocked_count(self) -> int:
        """Requests being held by :class:`Block` right now."""
        with self._lock:
            return self._blocked

    def metric_names(self) -> set[str]:
        """Names of every metric received."""
        return {point.metric for point in self.data_points}

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Wait until at least ``count`` spans arrived; ``TimeoutError`` otherwise."""
        return self._wait(lambda: len(self._spans) >= count, timeout, f"{count} span(s)", lambda: list(self._spans))

    def wait_for_metrics(self, *names: str, timeout: float = 10.0) -> list[ReceivedDataPoint]:
        """Wait until a data point of each metric in ``names`` arrived (any, if none named)."""

        def done() -> bool:
            seen = {point.metric for point in self._points}
            return bool(self._points) and all(name in seen for name in names)

        return self._wait(done, timeout, f"metrics {names or 'any'}", lambda: list(self._points))

    def wait_for_logs(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedLogRecord]:
        """Wait until at least ``count`` log records arrived; ``TimeoutError`` otherwise."""
        return self._wait(lambda: len(self._logs) >= count, timeout, f"{count} log record(s)", lambda: list(self._logs))

    def wait_for_blocked(self, count: int = 1, timeout: float = 10.0) -> int:
        """Wait until at least ``count`` requests are being held; returns how many are."""
        return self._wait(lambda: self._blocked >= count, timeout, f"{count} blocked request(s)", lambda: self._blocked)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[ReceivedExport]:
        """Wait until at least ``count`` requests were answered."""
        return self._wait(
            lambda: sum(1 for r in self._requests if r.status) >= count,
            timeout,
            f"{count} answered request(s)",
            lambda: list(self._requests),
        )

    def _wait(self, done: Callable[[], bool], timeout: float, what: str, result: Callable[[], _T]) -> _T:
        with self._changed:
            if not self._changed.wait_for(done, timeout):
                raise TimeoutError(f"OTLP receiver: no {what} within {timeout} s")
            return result()

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> OtlpReceiver:
        """Bind the port and serve on a background thread."""
        receiver = self

        class Handler(_Handler):
            owner = receiver

        server = ThreadingHTTPServer((self._host, self._port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="otlp-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release blocked requests, stop serving and join the server thread."""
        self._stopping.set()
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self._server = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- the protocol ----------------------------------------------------------------
    def _next(self, signal: Signal) -> OtlpBehaviour:
        with self._lock:
            script = self._scripts[signal]
            return script.queue.popleft() if script.queue else script.default

    def _record(self, export: ReceivedExport) -> int:
        with self._changed:
            self._requests.append(export)
            self._changed.notify_all()
            return len(self._requests) - 1

    def _answered(self, index: int, status: int) -> None:
        with self._changed:
            old = self._requests[index]
            self._requests[index] = replace(old, status=status)
            self._changed.notify_all()

    def _hold(self) -> None:
        with self._changed:
            self._blocked += 1
            self._changed.notify_all()
        self._release.wait()
        with self._changed:
            self._blocked -= 1
            self._changed.notify_all()

    def _accept(self, signal: Signal, body: bytes, content_type: str) -> bytes:
        json_body = content_type.startswith("application/json")
        if signal == "traces":
            traces = ExportTraceServiceRequest()
            if json_body:
                json_format.Parse(body, traces)
            else:
                traces.ParseFromString(body)
            spans = [
                _span(span, _attributes(rs.resource.attributes), ss.scope.name)
                for rs in traces.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
            ]
            with self._changed:
                self._spans.extend(spans)
                self._changed.notify_all()
            return ExportTraceServiceResponse().SerializeToString()
        if signal == "logs":
            return self._accept_logs(body, json_body)
        metrics_request = ExportMetricsServiceRequest()
        if json_body:
            json_format.Parse(body, metrics_request)
        else:
            metrics_request.ParseFromString(body)
        points = [
            point
            for rm in metrics_request.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            for point in _points(metric, _attributes(rm.resource.attributes), sm.scope.name)
        ]
        with self._changed:
            self._points.extend(points)
            self._changed.notify_all()
        return ExportMetricsServiceResponse().SerializeToString()

    def _accept_logs(self, body: bytes, json_body: bool) -> bytes:
        logs_request = ExportLogsServiceRequest()
        if json_body:
            json_format.Parse(body, logs_request)
        else:
            logs_request.ParseFromString(body)
        records = [
            ReceivedLogRecord(
                body=_value(record.body),
                severity_text=record.severity_text,
                severity_number=int(record.severity_number),
                trace_id=record.trace_id.hex(),
                span_id=record.span_id.hex(),
                time_ns=record.time_unix_nano,
                attributes=_attributes(record.attributes),
                resource=_attributes(rl.resource.attributes),
                scope=sl.scope.name,
            )
            for rl in logs_request.resource_logs
            for sl in rl.scope_logs
            for record in sl.log_records
        ]
        with self._changed:
            self._logs.extend(records)
            self._changed.notify_all()
        return ExportLogsServiceResponse().SerializeToString()


class _Handler(BaseHTTPRequestHandler):
    owner: OtlpReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read requests from the receiver, not from stderr."""

    def do_POST(self) -> None:
        """Answer one OTLP export as scripted."""
        receiver = self.owner
        path = self.path.split("?", 1)[0]
        signal = _signal_of(path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if signal is None:
            self._send(404, b"unknown OTLP path")
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        index = receiver._record(ReceivedExport(signal, headers, len(raw), 0, time.time(), path))
        behaviour = receiver._next(signal)
        if isinstance(behaviour, Block):
            receiver._hold()
        elif behaviour.delay:
            receiver._stopping.wait(behaviour.delay)
        if isinstance(behaviour, Refuse):
            extra = {"Retry-After": f"{behaviour.retry_after:g}"} if behaviour.retry_after is not None else {}
            receiver._answered(index, behaviour.status)
            self._send(behaviour.status, b"scripted refusal", extra)
            return
        try:
            body = _decode_body(raw, headers.get("content-encoding", "").lower())
            answer = receiver._accept(signal, body, headers.get("content-type", "application/x-protobuf"))
        except (OSError, zlib.error, DecodeError, json_format.ParseError) as exc:
            receiver._answered(index, 400)
            self._send(400, f"cannot decode the export: {exc}".encode())
            return
        receiver._answered(index, 200)
        self._send(200, answer, content_type="application/x-protobuf")

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, content_type: str = "text/plain"
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            # The exporter gave up (timeout) and closed the connection: nothing to answer.
            self.close_connection = True
