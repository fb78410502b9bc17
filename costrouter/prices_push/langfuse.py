"""Langfuse: nothing to push, because the span's own cost wins over Langfuse's price table.

Langfuse's OTel ingest takes ``gen_ai.usage.cost`` as the observation's provided cost
(``OtelIngestionProcessor.extractCostDetails`` in langfuse/langfuse,
``packages/shared/src/server/otel/``) and infers a cost from its model prices only when none
is provided (docs: "Ingested usage and cost are prioritized"). costrouter writes that
attribute on every routed call, so Langfuse shows costrouter's cost without a model definition.
"""

from __future__ import annotations

from costrouter.prices_push.plan import ModelPrice, PushPlan

REASON = (
    "nothing to push: Langfuse takes each span's gen_ai.usage.cost as the generation's provided cost, "
    "which wins over its model prices (OtelIngestionProcessor.extractCostDetails)"
)


class LangfuseTarget:
    """A target that explains why Langfuse needs no price push."""

    name = "langfuse"

    def __init__(self, url: str) -> None:
        self.url = url

    def close(self) -> None:
        """Nothing to close."""

    def plan(self, prices: list[ModelPrice], plan: PushPlan) -> None:
        """Add the reason as a note; no change."""
        del prices
        plan.notes.append(REASON)

    def apply(self, plan: PushPlan) -> None:
        """Nothing to write."""
        del plan
