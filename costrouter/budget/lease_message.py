"""The message a process sends about its lease on one budget instance (``lua/lease.lua``).

Plain data: the arguments of one message and its parsed reply, shared by the lease
holder (:mod:`costrouter.budget.leases`) and the replay of dead processes' settles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from costrouter.budget.store import alert_label, alert_threshold_units, check_amount
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.budgets import LeaseSettings, StoreConfig

FRACTION_SCALE: Final = 1_000_000
"""The lease fraction travels as an integer of millionths."""
BASE_SPARE_CALLS: Final = 16
"""A lease's spare room in estimates (``max_calls`` permitting) until its calls need more (:func:`spare_calls`)."""


@dataclass(frozen=True)
class LeaseMessage:
    """One message: charge ``charge``, keep ``inflight``, ask for ``need`` (and a spare slice)."""

    owner: str
    window: str
    seq: int
    charge: int
    inflight: int
    need: int
    enforce: bool
    estimate: int
    give_back: bool = False
    demand: int = 0
    """The calls the lease served since its last message plus those waiting for it (or woken by its last release)."""
    park: bool = False
    """Keep ``need`` (one estimate) held and nothing spare, for ``park_seconds`` more than a lease lives."""
    linger: bool = False
    """A session's lease going quiet (nothing in flight, nothing asked): its hold, spare room included,
    lives ``park_seconds`` more than a lease does, so no park message follows when it idles."""

    def ttl_seconds(self, settings: LeaseSettings) -> int:
        """How long the hold lives unrenewed: a parked or lingering one ``park_seconds`` longer."""
        return settings.ttl_seconds + settings.park_seconds if self.park or self.linger else settings.ttl_seconds

    def args(self, base: str, budget: BudgetRef, config: StoreConfig) -> list[str]:
        """The script's ARGV (see ``lua/lease.lua``)."""
        lease = config.lease
        extra_max = 0 if self.give_back or self.park else spare_calls(lease, self.demand) * self.estimate
        extra_min = lease.min_calls * self.estimate
        args = [
            base,
            f"l:{self.owner}",
            self.window,
            str(self.seq),
            str(check_amount(self.charge)),
            str(check_amount(self.inflight)),
            str(check_amount(self.need)),
            "1" if self.enforce else "0",
            str(extra_max),
            str(round(lease.fraction * FRACTION_SCALE)),
            str(extra_min),
            str(self.ttl_seconds(lease)),
            budget.window.kind,
            str(budget.window.seconds),
            str(config.hold_ttl_seconds),
            str(config.record_ttl_seconds),
            str(budget.limit_units),
            budget.scope_id,
        ]
        for threshold in budget.alert_at:
            args += [alert_label(threshold), str(alert_threshold_units(budget.limit_units, threshold))]
        return args


@dataclass(frozen=True)
class LeaseReply:
    """What the script answered: the need granted or not, the lease's hold, the window's state."""

    granted: bool
    hold: int
    spent: int
    held: int
    window: str
    window_end: int
    alerts: tuple[float, ...]
    replayed: bool


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_reply(budget: BudgetRef, reply: Sequence[Any]) -> LeaseReply:
    """A lease script's reply."""
    granted, hold, spent, held, window, window_end, alerts, replayed = reply
    labels = set(_text(alerts).split(",")) - {""}
    return LeaseReply(
        granted=bool(granted),
        hold=int(hold),
        spent=int(spent),
        held=int(held),
        window=_text(window),
        window_end=int(window_end),
        alerts=tuple(t for t in budget.alert_at if alert_label(t) in labels),
        replayed=bool(replayed),
    )


def applied_seq(raw: str | None) -> int:
    """The last message seq a lease field (``state|hold|expiry|seq``) says was applied (0: none)."""
    if raw is None:
        return 0
    parts = raw.split("|")
    return int(parts[3]) if len(parts) >= 4 and parts[3] else 0


def spare_calls(settings: LeaseSettings, demand: int) -> int:
    """How many estimates of spare room a lease message asks for.

    :data:`BASE_SPARE_CALLS`, or the lease's ``demand`` when that is more, at most ``max_calls``.

    A lease shared by many concurrent calls (a global or team budget under load) serves more
    calls between two messages than a fixed slice holds: with 16 estimates, 256 concurrent calls
    waited 3.5 times each for the messages of one global lease; sized to its demand, once.
    """
    return min(settings.max_calls, max(BASE_SPARE_CALLS, demand))


def spare_room(settings: LeaseSettings, estimate: int, free: int, demand: int = 0) -> int:
    """The sizing rule in Python (the script's twin, for tests and the documentation).

    ``free`` is what the budget has left after the spend, every hold and the calls
    this process has in flight and asks for now; ``demand`` as in :func:`spare_calls`.
    """
    extra = min(
        spare_calls(settings, demand) * estimate,
        (max(0, free) * round(settings.fraction * FRACTION_SCALE)) // FRACTION_SCALE,
    )
    return extra if extra >= settings.min_calls * estimate and extra > 0 else 0
