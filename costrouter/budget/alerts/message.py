"""What an alert says, and how each sink's request is built (JSON body, signature, Slack text)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from costrouter.config.budget_ref import BudgetRef
from costrouter.money import units_to_usd

__all__ = [
    "ALERT_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "BudgetAlert",
    "budget_alert",
    "header_id",
    "sign",
    "slack_body",
    "webhook_body",
]

SIGNATURE_HEADER: Final = "X-Costrouter-Signature"
"""``sha256=<hex>``: HMAC-SHA256 of ``{timestamp}.{body}`` with the sink's secret."""
TIMESTAMP_HEADER: Final = "X-Costrouter-Timestamp"
"""Unix seconds when the request was signed (a receiver rejects old ones against replays)."""
ALERT_ID_HEADER: Final = "X-Costrouter-Alert-Id"
"""The alert's id, percent-encoded (UTF-8), the same on every retry, so a receiver can drop a duplicate.

``urllib.parse.unquote`` of the header is the body's ``id``.
"""

_HEADER_SAFE: Final = ":/@"
"""Kept as they are in :data:`ALERT_ID_HEADER` besides letters, digits and ``_.-~``."""


@dataclass(frozen=True)
class BudgetAlert:
    """A budget instance crossed one of its thresholds in one window (sent once per window)."""

    budget: str
    scope: str
    scope_id: str
    window_id: str
    threshold: float
    spent_usd: float
    limit_usd: float
    at: str

    @property
    def id(self) -> str:
        """Stable across retries and processes: budget, scope id, window and threshold."""
        return f"{self.budget}:{self.scope}:{self.scope_id}:{self.window_id}:{self.threshold:g}"

    @property
    def exceeded(self) -> bool:
        """Whether the whole limit is spent."""
        return self.threshold >= 1.0


def header_id(alert_id: str) -> str:
    """``alert_id`` as an HTTP header value: percent-encoded UTF-8, so any id (emoji, CJK, CR/LF) fits.

    An ASCII id of letters, digits and ``_.-~:/@`` is unchanged.
    """
    return quote(alert_id, safe=_HEADER_SAFE)


def webhook_body(alert: BudgetAlert) -> bytes:
    """The generic webhook's JSON body."""
    document = {"type": "budget.threshold", "id": alert.id, "exceeded": alert.exceeded, **asdict(alert)}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``{timestamp}.{body}``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def slack_body(alert: BudgetAlert) -> bytes:
    """A Slack incoming-webhook message."""
    icon = ":rotating_light:" if alert.exceeded else ":warning:"
    scope = "global" if alert.scope == "global" else f"{alert.scope} `{_slack_escaped(alert.scope_id)}`"
    text = (
        f"{icon} costrouter budget *{alert.budget}* for {scope} reached {alert.threshold:.0%} of its limit: "
        f"${alert.spent_usd:,.6f} of ${alert.limit_usd:,.6f} (window {alert.window_id})"
    )
    return json.dumps({"text": text}).encode()


def _slack_escaped(text: str) -> str:
    """Slack's three control characters escaped, so an id cannot mention ``<!channel>`` or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def budget_alert(budget: BudgetRef, threshold: float, spent_units: int, window_id: str) -> BudgetAlert:
    """The alert of ``budget`` crossing ``threshold`` in ``window_id``."""
    return BudgetAlert(
        budget=budget.name,
        scope=budget.scope,
        scope_id=budget.scope_id,
        window_id=window_id,
        threshold=threshold,
        spent_usd=units_to_usd(spent_units),
        limit_usd=units_to_usd(budget.limit_units),
        at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
