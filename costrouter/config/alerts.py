"""The ``alerts:`` section of the budget policy: where threshold alerts go, and how hard to try.

::

    alerts:
      sinks:
        - type: webhook
          url: https://ops.example.com/hooks/costrouter
          secret: os.environ/COSTROUTER_ALERT_SECRET   # HMAC-SHA256 key of the signature header
        - type: slack
          url: os.environ/SLACK_WEBHOOK_URL             # an incoming-webhook URL is itself a secret
      max_attempts: 5
      backoff_seconds: 1.0

A literal URL is checked when the policy loads (http or https, a host, no space or control
character); the error names the field and the reason, never the URL. A URL with
``user:password@`` sends them as HTTP basic auth. An ``os.environ/NAME`` URL is checked the
same way when an alert is sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from costrouter.config.outbound import url_problem
from costrouter.config.redaction import MASK, SECRET_PREFIX, masked_repr_args

__all__ = ["AlertSettings", "SlackSink", "WebhookSink"]


class _Sink(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1,
        description="Where to POST; a literal or `os.environ/NAME`; `user:password@` goes as HTTP basic auth.",
    )
    name: str | None = Field(default=None, description="How logs and metrics name this sink (default: its type).")

    @field_validator("url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        if value.startswith(SECRET_PREFIX):
            return value
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def __repr_args__(self) -> list[tuple[str | None, Any]]:
        return [
            (name, MASK if name == "url" and not str(value).startswith(SECRET_PREFIX) else value)
            for name, value in masked_repr_args(super().__repr_args__())
        ]

    @property
    def label(self) -> str:
        """The sink's name in logs and metrics (never its URL)."""
        return self.name or str(getattr(self, "type", "sink"))


class WebhookSink(_Sink):
    """A JSON POST signed with HMAC-SHA256 (``X-Costrouter-Signature: sha256=<hex>``)."""

    type: Literal["webhook"]
    secret: str | None = Field(
        default=None,
        description="HMAC key (`os.environ/NAME`); none: the request is not signed.",
    )


class SlackSink(_Sink):
    """Slack's incoming-webhook format: ``{"text": ...}``."""

    type: Literal["slack"]


Sink = Annotated[WebhookSink | SlackSink, Field(discriminator="type")]


class AlertSettings(BaseModel):
    """Alert sinks and their delivery: off the call path, retried with backoff, failures counted."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    sinks: tuple[Sink, ...] = ()
    max_attempts: int = Field(default=5, ge=1, le=20, description="Tries per alert and sink.")
    backoff_seconds: float = Field(default=1.0, ge=0, description="Wait before the first retry; doubles each time.")
    max_backoff_seconds: float = Field(default=60.0, ge=0, description="The longest wait between tries.")
    timeout_seconds: float = Field(
        default=5.0, gt=0, description="One HTTP request's total time: connect, send and the whole answer."
    )
    shutdown_timeout_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long shutdown waits for queued alerts; what is left is cancelled and counted dropped.",
    )
    queue_size: int = Field(default=1000, ge=1, description="Alerts waiting to be sent; past it, new ones are dropped.")
