"""What a process knows of its lease on one budget instance, and when the clock makes the lease need a message.

The background thread of :class:`~costrouter.budget.leases.LeasedStore` wakes at the earliest
time a lease falls due (at most ``flush_seconds`` away, sooner when a call asks), not on a fixed
tick: a lease's settled spend goes out ``flush_seconds`` after its last message, not at the first
tick after that, which could come almost a period later.

The functions read a lease's fields without locking; the caller holds the store's lock.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Final

from costrouter.budget.lease_message import LeaseMessage
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.budgets import LeaseSettings

CLOCK_MARGIN_SECONDS: Final = 1.0
"""A lease is used locally only until this long before its TTL or its window's end."""
SLACK_SHARE: Final = 0.25
"""A lease due within this share of ``flush_seconds`` goes with the messages due now (:func:`wake_slack`)."""


@dataclass
class Lease:
    """What this process knows of its lease on one budget instance."""

    budget: BudgetRef
    window: str = ""
    window_end: float = 0.0
    hold: int = 0
    inflight: int = 0
    settled: int = 0
    entries: list[str] = field(default_factory=list)
    seq: int = 0
    valid_until: float = 0.0
    spent_seen: int = 0
    held_seen: int = 0
    estimate: int = 0
    spare: int = 0
    last_used: float = 0.0
    last_message: float = 0.0
    served: int = 0
    served_at_message: int = 0
    """``served`` when the lease's last message went out: the calls served since are part of its demand."""
    woken: int = 0
    """Coroutines woken when ``io`` was last released (they take from the lease, or wait again): demand too."""
    pool: int = 0
    sending: bool = False
    unacked: tuple[LeaseMessage, list[str]] | None = None
    io: threading.Lock = field(default_factory=threading.Lock)
    keys: tuple[str, list[str]] | None = None
    """The budget instance's hash tag and script keys (:meth:`LeasedStore._script_keys`)."""
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[bool]]] = field(default_factory=list)
    """Coroutines waiting for ``io`` (woken by :meth:`LeasedStore._release_io`, from any thread)."""
    io_loop: asyncio.AbstractEventLoop | None = None
    """The event loop whose coroutine holds ``io`` (``None``: a thread holds it, or nobody)."""
    returning: bool = False
    """A session's lease opened again within ``idle_seconds`` of its closing: the session is one of many
    calls, so this lease waits for ``idle_seconds`` like a shared one instead of closing after one call."""
    parked: bool = False
    """Its last message parked it: idle, one estimate held for ``park_seconds`` (:func:`due_reason`)."""
    lingering: bool = False
    """Its last message lingered (:attr:`LeaseMessage.linger`): a session's lease, quiet, its room held
    ``park_seconds`` longer; idle, it needs no park message, and its next call finds its room."""
    quiet_until: float = 0.0
    """A parked or lingering lease's due time (:func:`due_at`), as the background thread found it after the message of
    ``quiet_since``: until a call takes from the lease or another message goes, nothing else makes it due."""
    quiet_since: float = -1.0
    """``last_message`` when ``quiet_until`` was found (:func:`due_at_remembered`): a later message makes it stale."""

    def used_since_parked(self) -> bool:
        """Whether a call took from the lease after its park message: its spare room is due again."""
        return self.parked and self.last_used > self.last_message

    def kept_for_pause(self) -> bool:
        """Whether its last message kept it ``park_seconds`` longer: parked, or lingering."""
        return self.parked or self.lingering

    def untouched_parked(self) -> bool:
        """Whether the lease is parked or lingering, no call took from it since, and no message of it is out."""
        return (
            self.kept_for_pause() and self.last_used <= self.last_message and not self.sending and self.unacked is None
        )

    def idle_due(self, settings: LeaseSettings) -> float:
        """When, unused until then, it falls due idle: to park, or (parked or lingering) to be given back."""
        waits = settings.idle_seconds + (settings.park_seconds if self.kept_for_pause() else 0)
        return self.last_used + waits

    def room(self) -> int:
        """What a call may still take from the lease without a message."""
        return self.hold - self.inflight - self.settled

    def usable(self, now: float) -> bool:
        """Whether the lease's hold is sure to live, in its window, and no message is out."""
        return not self.sending and self.unacked is None and self.alive(now)

    def alive(self, now: float) -> bool:
        """Whether the lease's hold is sure to live, in its window."""
        if now >= self.valid_until:
            return False
        return self.window_end == 0 or time.time() < self.window_end - CLOCK_MARGIN_SECONDS

    def take(self, amount: int, now: float) -> bool:
        """Take ``amount`` for a call without a message: from the room, or while a message is out from its pool."""
        if self.usable(now) and self.room() >= amount:
            pass
        elif self.sending and self.pool >= amount and self.alive(now):
            self.pool -= amount
        else:
            return False
        self.inflight += amount
        self.served += 1
        return True


def wake_slack(settings: LeaseSettings) -> float:
    """How early a lease's message may go, so that leases due close together share one wake and one pipeline.

    Also the background thread's shortest sleep. Early only: a flush goes at most this long
    before ``flush_seconds`` after the lease's last message, never after.
    """
    return settings.flush_seconds * SLACK_SHARE


def renew_at(lease: Lease, settings: LeaseSettings) -> float:
    """When ``lease``'s hold needs renewing: two thirds of its TTL before it would expire here.

    Never (``inf``) when nothing is in flight and its idle message (park, give back) falls due while a
    third of its TTL is still left: that message renews or ends the hold. A chat's lease used to be
    renewed a second before it parked, a message a turn for nothing.
    """
    if not lease.inflight and lease.idle_due(settings) <= lease.valid_until - settings.ttl_seconds / 3:
        return math.inf
    return lease.valid_until - settings.ttl_seconds * 2 / 3


def closes_when_idle(lease: Lease) -> bool:
    """Whether ``lease`` is a session's that served one call: charged and given back in one message.

    Not a returning session's (:attr:`Lease.returning`): its next call would open it again, a round trip.
    """
    return lease.budget.scope == "session" and lease.served <= 1 and not lease.returning


def lingers(lease: Lease, settings: LeaseSettings) -> bool:
    """Whether ``lease``'s messages, sent with nothing in flight, keep its room ``park_seconds`` longer.

    A session's lease of many calls (a chat): only its own calls use its room, so it keeps it through
    a pause, and the next turn needs no message before it (a parked lease's refill) nor one after
    (its park). Shared instances' leases still park to one estimate: their room is other processes' too.
    """
    return bool(settings.park_seconds) and lease.budget.scope == "session" and not closes_when_idle(lease)


def due_reason(  # noqa: PLR0911 - the reasons in their order, the first that holds returned
    lease: Lease, settings: LeaseSettings, now: float, wall: float, *, degraded: bool, slack: float = 0.0
) -> str | None:
    """Why ``lease`` needs a message at monotonic ``now`` (Unix ``wall``): the first reason that holds, or ``None``.

    A reason the clock brings counts when it holds within ``slack`` seconds (:func:`wake_slack`).
    """
    if lease.sending or (lease.hold == 0 and not lease.settled and lease.unacked is None):
        return None
    if lease.unacked is not None:
        return "resend"
    ahead = now + slack
    flush_age = ahead - lease.last_message >= settings.flush_seconds
    if not lease.inflight:
        # A session's lease that served one call is charged and given back in one message. Leases of
        # shared instances (user, team, tag, global) wait for idle_seconds (the next call uses them),
        # then park: one estimate held for park_seconds, for the next call after a pause; then they
        # are given back. A returning session's lease lingers instead (its last message kept its room
        # for park_seconds more): given back after idle_seconds + park_seconds, no park message.
        if flush_age and closes_when_idle(lease):
            return "close"
        if degraded:
            return "give back"
        if ahead >= lease.idle_due(settings):
            if lease.kept_for_pause():
                return "give back"
            return "park" if settings.park_seconds else "give back"
    if lease.settled and (degraded or flush_age):
        return "flush"
    if ahead >= renew_at(lease, settings):
        return "renew"
    if (lease.spare and lease.room() < lease.spare // 2) or lease.used_since_parked():
        return "refill"
    if lease.window_end and wall + slack >= lease.window_end - CLOCK_MARGIN_SECONDS:
        return "roll over"
    return None


def due_at(lease: Lease, settings: LeaseSettings, now: float, wall: float) -> float:
    """The monotonic time the clock alone makes ``lease`` due (``inf``: only a call or a message's end can).

    A lease with a message out, or one with an unanswered message (retried at every wake),
    has none: the background thread's longest sleep (``flush_seconds``) covers them.
    """
    if lease.sending or lease.unacked is not None or (lease.hold == 0 and not lease.settled):
        return math.inf
    if lease.used_since_parked():
        return now
    at = renew_at(lease, settings)
    flush_at = lease.last_message + settings.flush_seconds
    if flush_at < at and (lease.settled or (not lease.inflight and closes_when_idle(lease))):
        at = flush_at
    idle_until = lease.idle_due(settings)
    if not lease.inflight and idle_until < at:
        at = idle_until
    if lease.window_end and now + (lease.window_end - CLOCK_MARGIN_SECONDS - wall) < at:
        at = now + (lease.window_end - CLOCK_MARGIN_SECONDS - wall)
    return at


def quiet_due(lease: Lease, ahead: float, *, degraded: bool) -> float | None:
    """A parked or lingering lease's remembered due time, when it still holds and lies beyond ``ahead``; else ``None``.

    Spares the background thread's look at each parked lease (:func:`due_reason`, :func:`due_at`) at every
    wake: a process that served many chats in the last ``park_seconds`` holds a parked lease for each.
    """
    remembered = lease.quiet_since == lease.last_message and lease.quiet_until > ahead
    return lease.quiet_until if remembered and not degraded and lease.untouched_parked() else None


def due_at_remembered(lease: Lease, settings: LeaseSettings, now: float, wall: float) -> float:
    """:func:`due_at`, kept for :func:`quiet_due` when ``lease`` is parked or lingering and untouched since."""
    at = due_at(lease, settings, now, wall)
    if lease.untouched_parked():
        lease.quiet_since, lease.quiet_until = lease.last_message, at
    return at


def sleep_seconds(due_times: list[float], settings: LeaseSettings, now: float) -> float:
    """How long the background thread sleeps at monotonic ``now``: until the earliest due time still ahead.

    At most ``flush_seconds`` (a lease whose first settle since its last message came after the
    thread last looked is carried at the next wake, ``flush_seconds`` after that message at the
    latest), at least :func:`wake_slack` (what falls due within it goes at the wake before). Due
    times already passed (a lease whose message could not go now) wait for the longest sleep,
    so a failing store is retried every ``flush_seconds``, not in a loop.
    """
    ahead = [at - now for at in due_times if at > now]
    return max(wake_slack(settings), min([settings.flush_seconds, *ahead]))
