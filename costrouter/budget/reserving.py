"""Budget decisions for one routed call: reserve before, settle after, as flows of store ops."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.metrics import Counter
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from costrouter.budget import BudgetRef, ReserveOutcome, SettleOutcome
from costrouter.budget.settling import Journaled, StoreGuard
from costrouter.errors import BudgetExceededError, BudgetStoreError
from costrouter.money import units_to_usd
from costrouter.ops import Flow, StoreOp
from costrouter.otel import semconv as sc

logger = logging.getLogger("costrouter.budget")

BudgetOutcome = Literal["allowed", "rejected", "downgraded", "warned", "store_error", "unbudgeted"]


@dataclass(frozen=True)
class Refusal:
    """The first budget that refused a reservation, and what it saw."""

    budget: BudgetRef
    outcome: ReserveOutcome
    amount_units: int

    def error(self) -> BudgetExceededError:
        """The caller-facing exception for this refusal."""
        return BudgetExceededError(
            scope=self.budget.scope,
            scope_id=self.budget.scope_id,
            budget=self.budget.name,
            limit_usd=units_to_usd(self.budget.limit_units),
            spent_usd=units_to_usd(self.outcome.spent_units),
            held_usd=units_to_usd(self.outcome.held_units),
            estimate_usd=units_to_usd(self.amount_units),
            window=self.budget.window.text,
        )


@dataclass
class Reservation:
    """The holds of one routed call (one per applicable budget)."""

    reservation_id: str
    budgets: list[BudgetRef]
    amount_units: int
    outcomes: list[ReserveOutcome] = field(default_factory=list)
    outcome: BudgetOutcome = "allowed"
    downgraded_to: str | None = None
    store_error: BudgetStoreError | None = None
    journaled: list[Journaled] = field(default_factory=list)

    def attributes(self) -> dict[str, AttributeValue]:
        """The decision as span attributes (tightest budget's limit and spend), every value plain."""
        attributes: dict[str, AttributeValue] = {
            sc.BUDGET_OUTCOME: self.outcome,
            # Tuples, as the SDK keeps sequences: the span takes them as they are (set_attributes).
            sc.BUDGET_SCOPES: tuple(sorted({budget.scope for budget in self.budgets})),
            sc.BUDGET_NAMES: tuple(budget.name for budget in self.budgets),
            sc.BUDGET_ESTIMATE_USD: units_to_usd(self.amount_units),
        }
        if self.downgraded_to is not None:
            attributes[sc.BUDGET_DOWNGRADED_TO] = self.downgraded_to
        if self.store_error is not None:
            attributes[sc.BUDGET_STORE_ERROR] = str(self.store_error)
        tightest = _tightest(self.budgets, self.outcomes)
        if tightest is not None:
            budget, reserved = tightest
            attributes[sc.BUDGET_LIMIT_USD] = units_to_usd(budget.limit_units)
            attributes[sc.BUDGET_SPENT_BEFORE_USD] = units_to_usd(reserved.spent_units)
        return attributes


def _tightest(
    budgets: Sequence[BudgetRef], outcomes: Sequence[ReserveOutcome]
) -> tuple[BudgetRef, ReserveOutcome] | None:
    pairs = list(zip(budgets, outcomes, strict=False))
    if not pairs:
        return None
    return min(pairs, key=lambda pair: pair[0].limit_units - pair[1].spent_units - pair[1].held_units)


def reserve_flow(
    budgets: Sequence[BudgetRef], reservation_id: str, amount_units: int
) -> Flow[list[ReserveOutcome] | Refusal]:
    """Hold ``amount_units`` in every budget, in their fixed order; all or nothing.

    A ``warn`` budget holds even past its limit. When an enforcing budget refuses,
    the holds already taken are released and the refusal is returned, even when a
    release fails (see :func:`_release_after_refusal`).
    """
    enforce = [budget.on_exceeded != "warn" for budget in budgets]
    if len(budgets) == 1:
        outcomes: list[ReserveOutcome] = [
            (yield StoreOp("reserve", (budgets[0], reservation_id, amount_units), {"enforce": enforce[0]}))
        ]
    else:  # one round trip for all of them where the store can (Redis, standalone)
        outcomes = yield StoreOp("reserve_all", (budgets, reservation_id, amount_units, enforce))
    for k, (budget, outcome) in enumerate(zip(budgets, outcomes, strict=False)):
        if enforce[k] and not outcome.granted:
            yield from _release_after_refusal(budgets[:k], reservation_id)
            return Refusal(budget, outcome, amount_units)
    return outcomes


def _release_after_refusal(budgets: Sequence[BudgetRef], reservation_id: str) -> Flow[None]:
    """Release the holds a refused call took; a store failure here never undoes the refusal.

    Whatever ``on_store_error`` says, the call was refused: a hold that cannot be
    released is logged and left to expire by the hold TTL (it only over-reserves).
    """
    for held in budgets:
        try:
            yield StoreOp("release", (held, reservation_id))
        except BudgetStoreError as exc:
            logger.warning(
                "costrouter: call %s was refused; its hold on budget %s (%s %r) could not be released "
                "and expires by its TTL: %s",
                reservation_id,
                held.name,
                held.scope,
                held.scope_id,
                exc,
            )


def settle_flow(
    reservation: Reservation, amount_units: int, guard: StoreGuard | None = None
) -> Flow[list[SettleOutcome]]:
    """Replace every hold by the actual cost (a release when nothing was billed).

    A store failure here never reaches the caller (the provider already answered): with
    a ``guard`` the settle is retried, then journaled for replay; without one it is
    logged and the hold expires by its TTL.
    """
    results: list[SettleOutcome] = []
    for budget in reservation.budgets:
        try:
            if guard is not None:
                retry = not reservation.journaled
                result = yield from guard.settle_flow(budget, reservation.reservation_id, amount_units, retry=retry)
            elif amount_units > 0:
                result = yield StoreOp("settle", (budget, reservation.reservation_id, amount_units))
            else:
                result = yield StoreOp("release", (budget, reservation.reservation_id))
        except BudgetStoreError as exc:
            reservation.store_error = exc
            logger.warning("costrouter: could not settle budget %s: %s", budget.name, exc)
            continue
        if isinstance(result, Journaled):
            reservation.store_error = result.error
            reservation.journaled.append(result)
            continue
        results.append(result)
    return results


def settle_attributes(reservation: Reservation, settled: Sequence[SettleOutcome], amount_units: int) -> dict[str, Any]:
    """Settled cost and the remaining amount of the tightest budget, every value plain."""
    attributes: dict[str, Any] = {sc.BUDGET_SETTLED_USD: units_to_usd(amount_units)}
    remaining = [
        budget.limit_units - result.spent_units - result.held_units
        for budget, result in zip(reservation.budgets, settled, strict=False)
    ]
    if remaining:
        attributes[sc.BUDGET_REMAINING_USD] = units_to_usd(max(0, min(remaining)))
    if reservation.store_error is not None:
        attributes[sc.BUDGET_STORE_ERROR] = str(reservation.store_error)
    if reservation.journaled:
        attributes[sc.BUDGET_SETTLE_JOURNALED] = len(reservation.journaled)
    return attributes


def note_unheld_settle(span: Span, counter: Counter, budget: BudgetRef, settle: SettleOutcome) -> None:
    """Make a charge that found no live hold visible: span event, log line and metric.

    Its hold expired while the call ran (no renewal reached it in time), was reset,
    or was never taken (the store failed at reserve under ``fail_open``): the spend is
    counted, but no hold kept the room for it, so the budget may pass its limit.
    """
    attributes: dict[str, AttributeValue] = {
        "budget": budget.name,
        "scope": budget.scope,
        "scope_id": budget.scope_id,
        "charged_usd": units_to_usd(settle.charged_units),
        "spent_usd": units_to_usd(settle.spent_units),
        "limit_usd": units_to_usd(budget.limit_units),
    }
    span.add_event(sc.EVENT_UNHELD_SETTLE, attributes)
    counter.add(1, {sc.BUDGET_SCOPE: budget.scope})
    logger.warning(
        "costrouter: budget %s for %s %r charged $%.6f with no live hold (expired, reset or never taken); "
        "spent $%.6f of $%.6f",
        budget.name,
        budget.scope,
        budget.scope_id,
        units_to_usd(settle.charged_units),
        units_to_usd(settle.spent_units),
        units_to_usd(budget.limit_units),
    )
