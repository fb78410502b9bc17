"""Budget alerts that reach a person: a generic signed webhook and Slack, sent off the call path."""

from __future__ import annotations

from costrouter.budget.alerts.dispatch import AlertDispatcher, AlertStats
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
