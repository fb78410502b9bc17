"""The budget store interface, its results, and the factory that builds a store from the policy.

A store keeps, per budget instance (one budget for one scope id) and window, the
settled spend and the live holds, all in integer units (nano-dollars, :mod:`costrouter.money`). Every operation is
atomic and idempotent by call id; see :class:`BudgetStore` for the contract. The store
never decides between fail-open and fail-closed: it raises
:class:`~costrouter.errors.BudgetStoreError` and the caller applies the policy.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Self

from costrouter.config.budget_ref import BudgetRef, key_part, layout_prefix
from costrouter.money import MAX_COUNTER_UNITS
from costrouter.pricing.ratio_rule import LearnedRatio, RatioRule

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType


@dataclass(slots=True)
class ReserveOutcome:
    """The decision of a reserve; amounts are the window's state before this hold.

    A value: derive a changed one with ``dataclasses.replace``. Not frozen, because every budget of
    every call builds one and a frozen dataclass sets each field through ``object.__setattr__``.
    """

    granted: bool
    spent_units: int
    held_units: int
    window_id: str
    replayed: bool


@dataclass(slots=True)
class SettleOutcome:
    """The result of a settle or release; amounts are the window's state after it.

    A value, not frozen, as :class:`ReserveOutcome`.
    """

    state: Literal["settled", "released"]
    charged_units: int
    spent_units: int
    held_units: int
    window_id: str
    alerts: tuple[float, ...]
    replayed: bool
    unheld: bool = False
    """A charge that found no live hold (it expired, was reset, or was never taken)."""
    journal_fault: str | None = None
    """A leased settle the journal refused: why (the store's leases fell back to per-call budgets)."""


@dataclass(frozen=True)
class BudgetStatus:
    """A budget instance in its current window."""

    budget: str
    scope: str
    scope_id: str
    window_id: str
    limit_units: int
    spent_units: int
    held_units: int
    active_holds: int
    remaining_units: int
    unheld_settles: int = 0
    """Charges of this window that found no live hold (expired, reset, never taken)."""


@dataclass(frozen=True)
class EpochState:
    """The store's epoch (a random id written at first use) and whether it marks a loss of data."""

    epoch: str
    lost: bool


def make_status(budget: BudgetRef, window_id: str, spent: int, held: int, holds: int) -> BudgetStatus:
    """A :class:`BudgetStatus`, with ``remaining = max(0, limit - spent - held)``."""
    return BudgetStatus(
        budget=budget.name,
        scope=budget.scope,
        scope_id=budget.scope_id,
        window_id=window_id,
        limit_units=budget.limit_units,
        spent_units=spent,
        held_units=held,
        active_holds=holds,
        remaining_units=max(0, budget.limit_units - spent - held),
    )


def top_key(prefix: str, budget: BudgetRef) -> str:
    """The hash tag of the largest-spender index of a budget: ``{prefix:v2:top:name}``."""
    return "{" + f"{layout_prefix(prefix)}:top:{key_part(budget.name)}" + "}"


def token_ratio_key(prefix: str) -> str:
    """The hash of learned prompt-token ratios by deployment id: ``{prefix:v2:token-ratios}``."""
    return "{" + f"{layout_prefix(prefix)}:token-ratios" + "}"


def check_ratio(ratio: float, rule: RatioRule) -> None:
    """Reject a ratio or a rule that would poison every later estimate."""
    steps = (rule.prior, rule.step, rule.cap, rule.half_life_seconds or 1.0)
    if not (0 < ratio < math.inf) or not (0 <= rule.decay <= 1) or not all(0 < x < math.inf for x in steps):
        message = f"a token ratio is positive and finite, and a decay in [0, 1], not {ratio!r} and {rule!r}"
        raise ValueError(message)


def ratio_record(ratio: float, observations: int, at: float) -> str:
    """A learned ratio as the stores keep it: ``ratio|observations|updated at`` (as ``token_ratio.lua``)."""
    return f"{ratio!r}|{observations}|{at!r}"


def parse_ratio_record(raw: str, now: float) -> LearnedRatio | None:
    """A stored ratio record read at ``now`` (a bare number: a ratio an earlier version wrote); ``None`` if garbled."""
    parts = raw.split("|")
    try:
        ratio = float(parts[0])
        observations = int(parts[1]) if len(parts) > 1 else 0
        at = float(parts[2]) if len(parts) > 2 else now
    except ValueError:
        return None
    if not (0 < ratio < math.inf) or not math.isfinite(at):
        return None
    return LearnedRatio(ratio, max(observations, 0), max(now - at, 0.0))


def epoch_keys(prefix: str) -> list[str]:
    """The epoch key, its lost flag and its accepted epoch: one hash tag, no budget's (``{prefix:v2:epoch}``)."""
    base = "{" + f"{layout_prefix(prefix)}:epoch" + "}"
    return [base, f"{base}:lost", f"{base}:accepted"]


def alert_label(threshold: float) -> str:
    """The text form of an alert threshold, as stored in the window's alert flags."""
    return format(threshold, "g")


def alert_threshold_units(limit_units: int, threshold: float) -> int:
    """The spend at which ``threshold`` (a fraction of the limit) is crossed, rounded up."""
    return math.ceil(Decimal(repr(threshold)) * limit_units)


def check_amount(amount_units: int) -> int:
    """Reject negative or non-integer amounts before they reach a store; saturate large ones.

    An amount past :data:`~costrouter.money.MAX_COUNTER_UNITS` is that ceiling: no counter
    holds more, and every store keeps it exactly (a Lua number is a double).
    """
    if isinstance(amount_units, bool) or not isinstance(amount_units, int) or amount_units < 0:
        message = f"amounts are non-negative integers of units (nano-dollars), not {amount_units!r}"
        raise ValueError(message)
    return min(amount_units, MAX_COUNTER_UNITS)


def saturating_add(counter: int, amount: int) -> int:
    """``counter + amount``, held at :data:`~costrouter.money.MAX_COUNTER_UNITS` (as the Lua scripts' ``sat``)."""
    return min(counter + amount, MAX_COUNTER_UNITS)


class BudgetStore(ABC):
    """Atomic, idempotent budget counters with holds.

    * ``reserve`` grants iff ``spent + held + amount <= limit`` (always holds when
      ``enforce`` is false) and holds ``amount`` under ``call_id`` for the hold TTL.
      A repeated reserve with the same call id replays the stored decision.
    * ``settle`` replaces the hold with the actual amount, even past the limit;
      ``release`` drops the hold and charges nothing. Both are idempotent by call id.
    * ``renew`` keeps a live hold from expiring while its call runs (idempotent).
    * ``status``, ``reset`` and ``top`` look at the budget's current window.

    Every method has an ``a``-prefixed coroutine twin. Backend failures raise
    :class:`~costrouter.errors.BudgetStoreError`.
    """

    @abstractmethod
    def reserve(self, budget: BudgetRef, call_id: str, amount_units: int, *, enforce: bool) -> ReserveOutcome:
        """Check and hold ``amount_units`` against ``budget`` for ``call_id``."""

    @abstractmethod
    def settle(self, budget: BudgetRef, call_id: str, amount_units: int) -> SettleOutcome:
        """Charge the actual ``amount_units`` of ``call_id``, replacing its hold."""

    @abstractmethod
    def release(self, budget: BudgetRef, call_id: str) -> SettleOutcome:
        """Drop the hold of ``call_id`` without charging anything."""

    @abstractmethod
    def renew(self, budget: BudgetRef, call_id: str) -> bool:
        """Push the expiry of ``call_id``'s live hold to now + the hold TTL; ``False`` if none is live."""

    @abstractmethod
    def status(self, budget: BudgetRef) -> BudgetStatus:
        """The budget instance in its current window."""

    @abstractmethod
    def reset(self, budget: BudgetRef) -> None:
        """Clear the spend, holds and alert flags of the current window."""

    @abstractmethod
    def top(self, budget: BudgetRef, n: int) -> list[tuple[str, int]]:
        """The ``n`` largest ``(scope_id, spent_units)`` of the budget in its current window."""

    @abstractmethod
    def token_ratios(self) -> dict[str, LearnedRatio]:
        """The learned prompt-token ratio (provider ÷ counted) of every deployment seen, with its age."""

    @abstractmethod
    def observe_token_ratio(self, deployment_id: str, ratio: float, rule: RatioRule) -> float:
        """Teach ``deployment_id``'s ratio an observation (see :func:`~costrouter.pricing.ratio_rule.next_token_ratio`).

        Returns the new ratio.
        """

    @abstractmethod
    def reset_token_ratios(self, deployment_id: str | None = None) -> list[str]:
        """Forget the learned ratio of ``deployment_id`` (``None``: of every deployment); the ids forgotten."""

    @abstractmethod
    def close(self) -> None:
        """Release the store's resources (connections)."""

    @abstractmethod
    async def areserve(self, budget: BudgetRef, call_id: str, amount_units: int, *, enforce: bool) -> ReserveOutcome:
        """Coroutine twin of :meth:`reserve`."""

    @abstractmethod
    async def asettle(self, budget: BudgetRef, call_id: str, amount_units: int) -> SettleOutcome:
        """Coroutine twin of :meth:`settle`."""

    @abstractmethod
    async def arelease(self, budget: BudgetRef, call_id: str) -> SettleOutcome:
        """Coroutine twin of :meth:`release`."""

    @abstractmethod
    async def arenew(self, budget: BudgetRef, call_id: str) -> bool:
        """Coroutine twin of :meth:`renew`."""

    @abstractmethod
    async def astatus(self, budget: BudgetRef) -> BudgetStatus:
        """Coroutine twin of :meth:`status`."""

    @abstractmethod
    async def areset(self, budget: BudgetRef) -> None:
        """Coroutine twin of :meth:`reset`."""

    @abstractmethod
    async def atop(self, budget: BudgetRef, n: int) -> list[tuple[str, int]]:
        """Coroutine twin of :meth:`top`."""

    @abstractmethod
    async def atoken_ratios(self) -> dict[str, LearnedRatio]:
        """Coroutine twin of :meth:`token_ratios`."""

    @abstractmethod
    async def aobserve_token_ratio(self, deployment_id: str, ratio: float, rule: RatioRule) -> float:
        """Coroutine twin of :meth:`observe_token_ratio`."""

    @abstractmethod
    async def aclose(self) -> None:
        """Coroutine twin of :meth:`close`."""

    def reserve_all(
        self, budgets: Sequence[BudgetRef], call_id: str, amount_units: int, enforce: Sequence[bool]
    ) -> list[ReserveOutcome]:
        """:meth:`reserve` in each budget in order, stopping after the first enforced refusal.

        Returns the outcomes of the budgets tried (the last one refused when fewer than
        ``budgets``); the caller releases the holds taken before a refusal. A store may
        do it in one round trip (Redis, standalone).
        """
        outcomes: list[ReserveOutcome] = []
        for budget, enforcing in zip(budgets, enforce, strict=True):
            outcome = self.reserve(budget, call_id, amount_units, enforce=enforcing)
            outcomes.append(outcome)
            if enforcing and not outcome.granted:
                break
        return outcomes

    async def areserve_all(
        self, budgets: Sequence[BudgetRef], call_id: str, amount_units: int, enforce: Sequence[bool]
    ) -> list[ReserveOutcome]:
        """Coroutine twin of :meth:`reserve_all`."""
        outcomes: list[ReserveOutcome] = []
        for budget, enforcing in zip(budgets, enforce, strict=True):
            outcome = await self.areserve(budget, call_id, amount_units, enforce=enforcing)
            outcomes.append(outcome)
            if enforcing and not outcome.granted:
                break
        return outcomes

    def epoch(self, candidate: str, known: str | None) -> EpochState | None:
        """The store's epoch, written as ``candidate`` when it has none (``None``: no epoch kept).

        ``known`` is the epoch this client saw before; a store whose epoch differs lost its data.
        """
        del candidate, known
        return None

    async def aepoch(self, candidate: str, known: str | None) -> EpochState | None:
        """Coroutine twin of :meth:`epoch`."""
        return self.epoch(candidate, known)

    @property
    def connections(self) -> int:
        """How many connections the store has opened so far (a change means a reconnect)."""
        return 0

    def __enter__(self) -> Self:
        """Use the store as a context manager that closes it."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the store."""
        self.close()

    async def __aenter__(self) -> Self:
        """Use the store as an async context manager that closes it."""
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the store."""
        await self.aclose()
