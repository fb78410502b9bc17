"""Send budget alerts from background threads: the routed call only enqueues, never waits or fails.

Each sink has its own queue and its own worker thread, so a sink that is slow, hangs or
drips its answer delays only itself: every other sink gets every alert as soon as it can
take it. Each HTTP request has a total deadline (``timeout_seconds``, over connect, send
and the whole answer, see :mod:`costrouter.config.outbound`), not a per-read timeout.

A sink that times out, is unreachable or answers 408/425/429/5xx is tried again after a
growing wait (``backoff_seconds``, doubled each time, with jitter, at most
``max_backoff_seconds``) up to ``max_attempts`` times; another 4xx is final. Every outcome is
counted (:class:`AlertStats`, per sink with :meth:`AlertDispatcher.stats_of`, and the
``costrouter.alerts`` metric); a failure is logged by alert id and sink name, never by URL
or secret, and never raised.

:meth:`AlertDispatcher.close` is bounded: it waits up to ``shutdown_timeout_seconds`` for the
queues to drain, then cancels what is still in flight or waiting and counts it ``dropped``.

Delivery is at most once per alert and sink from one process; the budget store fires each
threshold of a window once across all processes (the settle script's ``HSETNX``), so a
receiver sees one alert per budget, window and threshold, plus retries that carry the same
``X-Costrouter-Alert-Id``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Final

from opentelemetry import metrics
from opentelemetry.metrics import Counter, MeterProvider

from costrouter import forks
from costrouter._version import __version__
from costrouter.budget.alerts.message import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BudgetAlert,
    header_id,
    sign,
    slack_body,
    webhook_body,
)
from costrouter.config.alerts import AlertSettings, SlackSink, WebhookSink
from costrouter.config.outbound import send
from costrouter.config.redaction import SECRET_PREFIX
from costrouter.errors import OutboundError
from costrouter.otel import semconv as sc

__all__ = ["AlertDispatcher", "AlertStats"]

logger = logging.getLogger("costrouter.alerts")

_STOP: Final = object()
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})
_ANSWER_BYTES: Final = 64 * 1024
"""A sink's answer is read up to this and discarded: only its status matters."""

Sink = WebhookSink | SlackSink


@dataclass
class AlertStats:
    """Deliveries so far (one per alert and sink)."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0


def _resolve(value: str) -> str:
    if not value.startswith(SECRET_PREFIX):
        return value
    name = value.removeprefix(SECRET_PREFIX)
    resolved = os.environ.get(name)
    if resolved is None:
        raise OutboundError(f"environment variable {name} is not set", retryable=False)
    return resolved


def _request(sink: Sink, alert: BudgetAlert) -> tuple[str, bytes, dict[str, str]]:
    """The URL, body and headers of ``alert`` for ``sink``."""
    headers = {"Content-Type": "application/json", "User-Agent": f"costrouter/{__version__}"}
    if isinstance(sink, SlackSink):
        return _resolve(sink.url), slack_body(alert), headers
    body = webhook_body(alert)
    headers[ALERT_ID_HEADER] = header_id(alert.id)
    if sink.secret is not None:
        timestamp = int(time.time())
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(_resolve(sink.secret), timestamp, body)
    return _resolve(sink.url), body, headers


class _SinkWorker:
    """One sink's queue and the thread (with its own event loop) that delivers from it."""

    def __init__(self, sink: Sink, settings: AlertSettings, counter: Counter, lock: threading.Lock) -> None:
        self.sink = sink
        self.settings = settings
        self.stats = AlertStats()
        self.queue: queue.Queue[object] = queue.Queue(maxsize=settings.queue_size)
        self._counter = counter
        self._lock = lock
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._current: asyncio.Task[None] | None = None
        self._stopping = threading.Event()

    def renew_after_fork(self, lock: threading.Lock) -> None:
        """See :meth:`AlertDispatcher.renew_after_fork`."""
        self.queue = queue.Queue(maxsize=self.settings.queue_size)
        self._lock = lock
        self._thread = None
        self._loop = None
        self._current = None
        self._stopping = threading.Event()

    def put(self, alert: BudgetAlert) -> None:
        try:
            self._ensure_thread()
            self.queue.put_nowait(alert)
        except queue.Full:
            self.count("dropped")
            logger.warning("costrouter: alert %s to sink %s dropped: its queue is full", alert.id, self.sink.label)
        except Exception:  # a thread that cannot start must not fail the call
            self.count("dropped")
            logger.exception("costrouter: alert %s to sink %s could not be queued", alert.id, self.sink.label)

    def count(self, outcome: str) -> None:
        with self._lock:
            setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        self._counter.add(1, {"sink": self.sink.label, "outcome": outcome})

    def stop(self, wait: float) -> None:
        """Cancel the delivery in flight, count what still waits as dropped, end the thread."""
        self._stopping.set()
        loop, current = self._loop, self._current
        if loop is not None and current is not None:
            loop.call_soon_threadsafe(current.cancel)
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, BudgetAlert):
                self._drop_at_shutdown(item)
            self.queue.task_done()
        thread = self._thread
        if thread is None:
            return
        self.queue.put(_STOP)
        thread.join(wait)
        self._thread = None

    def _drop_at_shutdown(self, alert: BudgetAlert) -> None:
        self.count("dropped")
        logger.warning("costrouter: alert %s to sink %s dropped: not delivered by shutdown", alert.id, self.sink.label)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                name = f"costrouter-alerts-{self.sink.label}"
                self._thread = threading.Thread(target=self._run, name=name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            while True:
                item = self.queue.get()
                try:
                    if item is _STOP:
                        return
                    if isinstance(item, BudgetAlert) and self._stopping.is_set():
                        self._drop_at_shutdown(item)
                    elif isinstance(item, BudgetAlert):
                        self._current = loop.create_task(self._deliver(item))
                        try:
                            loop.run_until_complete(self._current)
                        except asyncio.CancelledError:
                            self._drop_at_shutdown(item)
                        finally:
                            self._current = None
                finally:
                    self.queue.task_done()
        finally:
            self._loop = None
            loop.close()

    async def _deliver(self, alert: BudgetAlert) -> None:
        settings = self.settings
        reason = ""
        attempt = 0
        for attempt in range(settings.max_attempts):
            if attempt:
                self.count("retried")
                delay = min(settings.max_backoff_seconds, settings.backoff_seconds * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + secrets.randbelow(1000) / 2000))  # jitter: processes not in step
            try:
                url, body, headers = _request(self.sink, alert)
                answer = await send(
                    "POST",
                    url,
                    body=body,
                    headers=headers,
                    total_seconds=settings.timeout_seconds,
                    max_bytes=_ANSWER_BYTES,
                )
            except OutboundError as exc:
                reason = exc.reason
                if exc.retryable:
                    continue
                break
            except Exception as exc:  # a bug here must not end the sink's thread; the message may hold the URL
                reason = f"unexpected {type(exc).__name__}"
                break
            if 200 <= answer.status < 300:
                self.count("sent")
                return
            reason = f"HTTP {answer.status}"
            if not (answer.status >= 500 or answer.status in _RETRYABLE_STATUS):
                break
        self.count("failed")
        logger.warning(
            "costrouter: alert %s to sink %s failed after %d tries: %s", alert.id, self.sink.label, attempt + 1, reason
        )


class AlertDispatcher:
    """One queue and one daemon thread per sink (each started on its first alert)."""

    def __init__(self, settings: AlertSettings, meter_provider: MeterProvider | None = None) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("costrouter", __version__)
        counter = meter.create_counter(sc.METRIC_ALERTS, unit="{alert}", description="Budget alert deliveries.")
        self._workers = [_SinkWorker(sink, settings, counter, self._lock) for sink in settings.sinks]
        forks.renew_in_child(self)

    def renew_after_fork(self) -> None:
        """In a forked child: empty queues and no threads; the alerts the parent queued are the parent's to send."""
        self._lock = threading.Lock()
        for worker in self._workers:
            worker.renew_after_fork(self._lock)

    @property
    def enabled(self) -> bool:
        """Whether any sink is configured."""
        return bool(self._workers)

    @property
    def stats(self) -> AlertStats:
        """Deliveries so far, all sinks together."""
        return self._sum(self._workers)

    def stats_of(self, sink: str) -> AlertStats:
        """Deliveries so far to the sinks labelled ``sink`` (its ``name``, else its type)."""
        return self._sum([worker for worker in self._workers if worker.sink.label == sink])

    def _sum(self, workers: list[_SinkWorker]) -> AlertStats:
        total = AlertStats()
        with self._lock:
            for worker in workers:
                for outcome in ("sent", "failed", "retried", "dropped"):
                    setattr(total, outcome, getattr(total, outcome) + getattr(worker.stats, outcome))
        return total

    def submit(self, alert: BudgetAlert) -> None:
        """Queue ``alert`` for every sink; never blocks, never raises (a full queue drops it, counted)."""
        for worker in self._workers:
            worker.put(alert)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert is delivered or given up; whether that happened in time."""
        deadline = time.monotonic() + timeout
        while any(worker.queue.unfinished_tasks for worker in self._workers):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued within ``timeout`` (default ``shutdown_timeout_seconds``), then stop.

        What is still in flight or queued at the deadline is cancelled and counted ``dropped``.
        """
        limit = self.settings.shutdown_timeout_seconds if timeout is None else timeout
        self.flush(limit)
        for worker in self._workers:
            worker.stop(wait=1.0)
