"""Send budget alerts from a background thread: the routed call only enqueues, never waits or fails.

Each alert goes to every sink; a sink that times out, is unreachable or answers 429/5xx is
tried again after a growing wait (``backoff_seconds``, doubled each time, with jitter, at
most ``max_backoff_seconds``) up to ``max_attempts`` times; another 4xx is final. Every
outcome is counted (:class:`AlertStats`, and the ``costrouter.alerts`` metric); a failure
is logged by alert id and sink name, never by URL or secret, and never raised.

Delivery is at most once per alert and sink from one process; the budget store fires each
threshold of a window once across all processes (the settle script's ``HSETNX``), so a
receiver sees one alert per budget, window and threshold, plus retries that carry the same
``X-Costrouter-Alert-Id``.
"""

from __future__ import annotations

import http.client
import logging
import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider

from costrouter._version import __version__
from costrouter.budget.alerts.message import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BudgetAlert,
    sign,
    slack_body,
    webhook_body,
)
from costrouter.config.alerts import AlertSettings, SlackSink, WebhookSink
from costrouter.config.redaction import SECRET_PREFIX
from costrouter.otel import semconv as sc

__all__ = ["AlertDispatcher", "AlertStats"]

logger = logging.getLogger("costrouter.alerts")

_STOP: Final = object()
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})


@dataclass
class AlertStats:
    """Deliveries so far (one per alert and sink)."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0


class _FinalError(Exception):
    """A delivery failure that another try will not fix."""


class _RetryError(Exception):
    """A receiver's answer that asks for another try (429, 5xx …)."""


def _resolve(value: str) -> str:
    if not value.startswith(SECRET_PREFIX):
        return value
    name = value.removeprefix(SECRET_PREFIX)
    resolved = os.environ.get(name)
    if resolved is None:
        raise _FinalError(f"environment variable {name} is not set")
    return resolved


def _http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to an http(s) URL; the response status (redirects are not followed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _FinalError(f"not an http(s) URL (scheme {parts.scheme!r})")
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path or "/"
        connection.request("POST", f"{path}?{parts.query}" if parts.query else path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class AlertDispatcher:
    """A queue of alerts and the daemon thread that delivers them (started on the first alert)."""

    def __init__(self, settings: AlertSettings, meter_provider: MeterProvider | None = None) -> None:
        self.settings = settings
        self.stats = AlertStats()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=settings.queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("costrouter", __version__)
        self._counter = meter.create_counter(sc.METRIC_ALERTS, unit="{alert}", description="Budget alert deliveries.")

    @property
    def enabled(self) -> bool:
        """Whether any sink is configured."""
        return bool(self.settings.sinks)

    def submit(self, alert: BudgetAlert) -> None:
        """Queue ``alert`` for every sink; never blocks, never raises (a full queue drops it, counted)."""
        if not self.enabled:
            return
        try:
            self._ensure_thread()
            self._queue.put_nowait(alert)
        except queue.Full:
            for sink in self.settings.sinks:
                self._count(sink.label, "dropped")
            logger.warning("costrouter: alert %s dropped: the alert queue is full", alert.id)
        except Exception:  # a thread that cannot start must not fail the call
            logger.exception("costrouter: alert %s could not be queued", alert.id)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert is delivered or given up; whether that happened in time."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        self.flush(timeout)
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            return
        thread.join(timeout)
        self._thread = None

    # ---- the worker -------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="costrouter-alerts", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if isinstance(item, BudgetAlert):
                    for sink in self.settings.sinks:
                        self._deliver(sink, item)
            finally:
                self._queue.task_done()

    def _deliver(self, sink: WebhookSink | SlackSink, alert: BudgetAlert) -> None:
        settings = self.settings
        reason = ""
        for attempt in range(settings.max_attempts):
            if attempt:
                self._count(sink.label, "retried")
                delay = min(settings.max_backoff_seconds, settings.backoff_seconds * 2 ** (attempt - 1))
                time.sleep(delay * (0.5 + secrets.randbelow(1000) / 2000))  # jitter: processes do not retry in step
            try:
                self._post(sink, alert)
            except _FinalError as exc:
                reason = str(exc)
                break
            except _RetryError as exc:
                reason = str(exc)
                continue
            except (OSError, ValueError, http.client.HTTPException) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                continue
            self._count(sink.label, "sent")
            return
        self._count(sink.label, "failed")
        logger.warning(
            "costrouter: alert %s to sink %s failed after %d tries: %s", alert.id, sink.label, attempt + 1, reason
        )

    def _post(self, sink: WebhookSink | SlackSink, alert: BudgetAlert) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": f"costrouter/{__version__}"}
        if isinstance(sink, SlackSink):
            body = slack_body(alert)
        else:
            body = webhook_body(alert)
            headers[ALERT_ID_HEADER] = alert.id
            if sink.secret is not None:
                timestamp = int(time.time())
                headers[TIMESTAMP_HEADER] = str(timestamp)
                headers[SIGNATURE_HEADER] = sign(_resolve(sink.secret), timestamp, body)
        status = _http_post(_resolve(sink.url), body, headers, self.settings.timeout_seconds)
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise _RetryError(f"HTTP {status}")
        if status >= 300:
            raise _FinalError(f"HTTP {status}")

    def _count(self, sink: str, outcome: str) -> None:
        with self._lock:
            setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        self._counter.add(1, {"sink": sink, "outcome": outcome})
