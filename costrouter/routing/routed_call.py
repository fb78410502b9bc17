"""The state of one routed call while it runs (:class:`RoutedCall`), shared by the planner and its helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span

from costrouter.budget.reserving import Reservation
from costrouter.context import Caller
from costrouter.otel.attempts import CallRecord
from costrouter.otel.models import ModelFacts
from costrouter.routing.operations import CHAT, Operation
from costrouter.routing.wildcards import Resolved


@dataclass
class RoutedCall:
    """The state of one routed call while it runs."""

    call_id: str
    requested_group: str
    group: str
    messages: Sequence[Mapping[str, Any]]
    request: dict[str, Any]
    caller: Caller
    stream: bool
    span: Span
    record: CallRecord
    started: float
    prompt_tokens: int | None = None
    reservation: Reservation | None = None
    finished: bool = False
    extra_attributes: dict[str, Any] = field(default_factory=dict)
    operation: Operation = CHAT
    model: ModelFacts | None = None
    """The model the span's start named (the group's first-priority deployment)."""
    routed_name: str = ""
    """The name LiteLLM is called with: the group's, or the model a caller named for a wildcard group."""
    wildcard: Resolved | None = None
    """How a wildcard group serves this call (the model each of its deployments calls), else ``None``."""
