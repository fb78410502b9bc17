"""Budget alerts that reach a person: a generic signed webhook and Slack, sent off the call path."""

from __future__ import annotations

from costrouter.alerts.config import AlertSettings, SlackSink, WebhookSink
from costrouter.alerts.dispatch import AlertDispatcher, AlertStats
from costrouter.alerts.message import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BudgetAlert,
    sign,
    slack_body,
    webhook_body,
)

__all__ = [
    "ALERT_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AlertDispatcher",
    "AlertSettings",
    "AlertStats",
    "BudgetAlert",
    "SlackSink",
    "WebhookSink",
    "sign",
    "slack_body",
    "webhook_body",
]
