"""Helpers for testing code that uses costrouter: a provider double, span capture and an OTLP receiver.

Layer 5, public: imports the foundation and :mod:`costrouter.otel`, never routing or budgets.
"""

from __future__ import annotations

from costrouter.testing.capture import TelemetryCapture
from costrouter.testing.otlp import (
    Accept,
    Block,
    OtlpReceiver,
    ReceivedDataPoint,
    ReceivedEvent,
    ReceivedExport,
    ReceivedLogRecord,
    ReceivedSpan,
    Refuse,
)
from costrouter.testing.provider import Answer, Fail, ProviderDouble, ReceivedRequest, Reply
from costrouter.testing.redis_server import RedisServer
from costrouter.testing.webhook import ReceivedWebhook, WebhookReceiver

__all__ = [
    "Accept",
    "Answer",
    "Block",
    "Fail",
    "OtlpReceiver",
    "ProviderDouble",
    "ReceivedDataPoint",
    "ReceivedEvent",
    "ReceivedExport",
    "ReceivedLogRecord",
    "ReceivedRequest",
    "ReceivedSpan",
    "ReceivedWebhook",
    "RedisServer",
    "Refuse",
    "Reply",
    "TelemetryCapture",
    "WebhookReceiver",
]
