"""What is known about a routed call when it ends: the one record spans and metrics are written from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry.util.types import AttributeValue

from costrouter.otel.models import ModelFacts
from costrouter.pricing.cost import CostBreakdown, SettledCost


@dataclass(slots=True)
class Outcome:
    """What is known about a routed call when it ends (success or not).

    A value: derive a changed one with ``dataclasses.replace``. Not frozen, because it is built on every
    call and a frozen dataclass sets each field through ``object.__setattr__``.
    """

    served_group: str | None = None
    deployment_id: str | None = None
    provider: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: tuple[str, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float = 0.0
    cost_units: int | None = None
    """``cost_usd`` in units when known exactly (a computed cost, a hold charged): what settles the budgets."""
    prompt_cost_usd: float | None = None
    completion_cost_usd: float | None = None
    usage_source: str | None = None
    output_text: str | None = None
    error: BaseException | None = None
    extra: Mapping[str, AttributeValue] = field(default_factory=dict)
    breakdown: CostBreakdown | None = None
    settled: SettledCost | None = None
    model: ModelFacts | None = None
    """The serving deployment's model, provider and server, once known."""
    implausible: tuple[str, ...] = ()
    """The figures of the answer that failed a plausibility check (the call was charged its hold)."""
