"""When the clock makes a lease need a message, and how long the background thread sleeps."""

from __future__ import annotations

import math

from costrouter.budget.lease_state import (
    CLOCK_MARGIN_SECONDS,
    Lease,
    due_at,
    due_at_remembered,
    due_reason,
    lingers,
    quiet_due,
    sleep_seconds,
    wake_slack,
)
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.budgets import LeaseSettings
from costrouter.config.windows import parse_window

SETTINGS = LeaseSettings(flush_seconds=1.0, idle_seconds=10, ttl_seconds=30)
NOW = 1000.0
WALL = 1_800_000_000.0


def _lease(scope: str = "user", **fields: object) -> Lease:
    budget = BudgetRef("b", scope, "id", parse_window("total"), 10**12)
    lease = Lease(budget, hold=500, valid_until=NOW + 29, last_message=NOW - 0.2, last_used=NOW - 0.1, served=5)
    for name, value in fields.items():
        setattr(lease, name, value)
    return lease


def test_the_default_carries_settled_spend_within_a_second() -> None:
    assert LeaseSettings().flush_seconds == 1.0


def test_settled_spend_falls_due_a_flush_period_after_the_last_message() -> None:
    lease = _lease(settled=40)
    assert due_at(lease, SETTINGS, NOW, WALL) == NOW - 0.2 + 1.0
    assert due_reason(lease, SETTINGS, NOW, WALL, degraded=False) is None
    assert due_reason(lease, SETTINGS, NOW + 0.8, WALL, degraded=False) == "flush"


def test_a_lease_with_nothing_settled_is_due_only_to_renew_or_park() -> None:
    lease = _lease(inflight=100)  # a call in flight: not idle, so no park
    assert due_at(lease, SETTINGS, NOW, WALL) == NOW + 29 - 20  # a third of the TTL before it expires
    idle = _lease()
    assert due_at(idle, SETTINGS, NOW, WALL) == NOW - 0.1 + 10  # the park: no renewal a second before it
    assert due_reason(idle, SETTINGS, NOW + 9.5, WALL, degraded=False) is None
    assert due_reason(idle, SETTINGS, NOW + 9.9, WALL, degraded=False) == "park"
    unparked = LeaseSettings(flush_seconds=1.0, idle_seconds=10, ttl_seconds=30, park_seconds=0)
    assert due_reason(idle, unparked, NOW + 9.9, WALL, degraded=False) == "give back"


def test_a_parked_lease_waits_park_seconds_for_a_call_then_goes_back() -> None:
    assert LeaseSettings().park_seconds == 300
    parked_at = NOW + 10
    # The park message's reply: one estimate held, nothing spare, alive park_seconds + ttl_seconds.
    parked = _lease(hold=50, spare=0, parked=True, last_message=parked_at, valid_until=parked_at + 330 - 1)
    assert due_reason(parked, SETTINGS, parked_at + 1, WALL, degraded=False) is None
    assert due_at(parked, SETTINGS, parked_at, WALL) == NOW - 0.1 + 10 + 300  # before its renewal
    assert due_reason(parked, SETTINGS, NOW - 0.1 + 310, WALL, degraded=False) == "give back"
    assert parked.take(50, parked_at + 200)  # the next turn of the chat: no message on its path
    parked.last_used = parked_at + 200
    assert parked.used_since_parked()
    assert due_at(parked, SETTINGS, parked_at + 200, WALL) == parked_at + 200  # its spare room, at once
    assert due_reason(parked, SETTINGS, parked_at + 200, WALL, degraded=False) == "refill"


def test_a_parked_lease_is_looked_at_once_until_a_call_takes_from_it_or_its_time_comes() -> None:
    parked_at = NOW + 10
    parked = _lease(hold=50, spare=0, parked=True, last_message=parked_at, valid_until=parked_at + 330 - 1)
    assert quiet_due(parked, parked_at + 1, degraded=False) is None  # not looked at yet
    give_back = due_at_remembered(parked, SETTINGS, parked_at, WALL)
    assert give_back == due_at(parked, SETTINGS, parked_at, WALL)
    assert quiet_due(parked, parked_at + 1, degraded=False) == give_back
    assert quiet_due(parked, give_back, degraded=False) is None  # its give-back is due: looked at again
    assert quiet_due(parked, parked_at + 1, degraded=True) is None  # a degraded store gives every lease back
    parked.sending = True
    assert quiet_due(parked, parked_at + 1, degraded=False) is None
    parked.sending = False
    assert parked.take(50, parked_at + 200)
    parked.last_used = parked_at + 200
    assert quiet_due(parked, parked_at + 200, degraded=False) is None  # taken from: due for a refill at once
    assert due_at_remembered(parked, SETTINGS, parked_at + 200, WALL) == parked_at + 200
    assert parked.quiet_until == give_back  # a used lease's due time is not remembered
    parked.last_message, parked.last_used = parked_at + 201, parked_at + 200  # the refill's reply: a new message
    assert quiet_due(parked, parked_at + 202, degraded=False) is None  # what was remembered was the park's


def test_an_open_lease_due_time_is_not_remembered() -> None:
    lease = _lease(settled=40)
    assert due_at_remembered(lease, SETTINGS, NOW, WALL) == NOW - 0.2 + 1.0
    assert quiet_due(lease, NOW, degraded=False) is None


def test_a_one_call_session_closes_a_flush_period_after_its_opening() -> None:
    lease = _lease("session", served=1, settled=40)
    assert due_at(lease, SETTINGS, NOW, WALL) == NOW + 0.8
    assert due_reason(lease, SETTINGS, NOW + 0.8, WALL, degraded=False) == "close"
    busier = _lease("session", served=2, settled=40)
    assert due_reason(busier, SETTINGS, NOW + 0.8, WALL, degraded=False) == "flush"
    returning = _lease("session", served=1, settled=40, returning=True)  # its session called after a close
    assert due_reason(returning, SETTINGS, NOW + 0.8, WALL, degraded=False) == "flush"
    assert due_at(returning, SETTINGS, NOW, WALL) == NOW + 0.8  # the flush; the give back waits for idle
    returning.settled = 0
    assert due_at(returning, SETTINGS, NOW, WALL) == NOW - 0.1 + 10  # no close: its idle message, no renewal before


def test_a_window_that_ends_soon_rolls_the_lease_over_before_its_end() -> None:
    lease = _lease(window_end=WALL + 5)
    assert due_at(lease, SETTINGS, NOW, WALL) == NOW + 5 - CLOCK_MARGIN_SECONDS
    assert due_reason(lease, SETTINGS, NOW + 4, WALL + 4, degraded=False) == "roll over"


def test_a_lease_sending_or_unanswered_has_no_due_time_of_its_own() -> None:
    assert due_at(_lease(settled=40, sending=True), SETTINGS, NOW, WALL) == math.inf
    unanswered = _lease(settled=40)
    unanswered.unacked = (None, [])  # type: ignore[assignment]
    assert due_at(unanswered, SETTINGS, NOW, WALL) == math.inf
    assert due_reason(unanswered, SETTINGS, NOW, WALL, degraded=False) == "resend"
    assert due_at(_lease(hold=0), SETTINGS, NOW, WALL) == math.inf  # given back: nothing to send


def test_a_degraded_store_sends_what_waits_at_once() -> None:
    assert due_reason(_lease(settled=40), SETTINGS, NOW, WALL, degraded=True) == "give back"
    assert due_reason(_lease(settled=40, inflight=5), SETTINGS, NOW, WALL, degraded=True) == "flush"


def test_the_thread_sleeps_until_the_earliest_due_time_ahead() -> None:
    assert sleep_seconds([NOW + 0.5, NOW + 5], SETTINGS, NOW) == 0.5
    assert sleep_seconds([NOW + 5, math.inf], SETTINGS, NOW) == SETTINGS.flush_seconds  # never longer
    assert sleep_seconds([], SETTINGS, NOW) == SETTINGS.flush_seconds


def test_due_times_already_passed_do_not_spin_the_thread() -> None:
    # A lease due now whose message could not go (the store fails, its io is busy) is retried at
    # the longest sleep, not in a loop.
    assert sleep_seconds([NOW - 3, NOW], SETTINGS, NOW) == SETTINGS.flush_seconds
    assert sleep_seconds([NOW + 1e-9], SETTINGS, NOW) == wake_slack(SETTINGS)


def test_leases_due_close_together_share_one_wake() -> None:
    """A lease due within the slack goes with those due now: one pipeline, not one wake per lease."""
    slack = wake_slack(SETTINGS)
    assert slack == SETTINGS.flush_seconds / 4
    soon = _lease(settled=40, last_message=NOW - 0.9)  # its flush is due in 0.1 s
    assert due_reason(soon, SETTINGS, NOW, WALL, degraded=False) is None
    assert due_reason(soon, SETTINGS, NOW, WALL, degraded=False, slack=slack) == "flush"
    later = _lease(settled=40, last_message=NOW - 0.5)  # due in 0.5 s: beyond the slack
    assert due_reason(later, SETTINGS, NOW, WALL, degraded=False, slack=slack) is None


def test_spend_settled_after_the_thread_looked_waits_at_most_one_flush_period() -> None:
    """The bound docs/budgets.md states: within ``flush_seconds`` of the settle (plus the round trip).

    The thread looked at ``NOW`` (nothing settled, so it slept the longest), a call settled just
    after; whenever the last message was, the wake after the sleep either sends the flush or
    sleeps exactly until it is due, and both are at most ``flush_seconds`` after the settle.
    """
    slack = wake_slack(SETTINGS)
    for last_message in (NOW - 5, NOW - 0.5, NOW - 0.1, NOW, NOW + 0.01, NOW + 0.9):
        settle = max(NOW, last_message) + 0.01
        lease = _lease(settled=40, last_message=last_message, valid_until=NOW + 29)
        wake = NOW + SETTINGS.flush_seconds  # the sleep chosen when nothing was settled
        while due_reason(lease, SETTINGS, wake, WALL, degraded=False, slack=slack) != "flush":
            wake += sleep_seconds([due_at(lease, SETTINGS, wake, WALL)], SETTINGS, wake)
        assert wake - settle <= SETTINGS.flush_seconds
        assert wake + slack >= last_message + SETTINGS.flush_seconds  # early by the slack at most


def test_an_idle_lease_is_not_renewed_when_its_idle_message_comes_first() -> None:
    # Nothing in flight, the park due (NOW + 9.9) while a third of the TTL is left (valid until NOW + 29):
    # the park renews the hold, a renewal just before it would be a message for nothing.
    idle = _lease()
    assert due_reason(idle, SETTINGS, NOW + 9.5, WALL, degraded=False) is None
    # A call in flight keeps the lease from idling: it is renewed as before.
    busy = _lease(inflight=100)
    assert due_reason(busy, SETTINGS, NOW + 9.5, WALL, degraded=False) == "renew"
    # An idle message due later than that (a long idle_seconds) leaves the renewal as it was.
    patient = LeaseSettings(flush_seconds=1.0, idle_seconds=600, ttl_seconds=30)
    assert due_at(idle, patient, NOW, WALL) == NOW + 29 - 20
    assert due_reason(idle, patient, NOW + 9.5, WALL, degraded=False) == "renew"


def test_a_lingering_lease_is_given_back_after_its_pause_without_a_park_message() -> None:
    # A chat's lease whose last message (after its call's use) kept its room park_seconds longer.
    used, sent = NOW - 0.3, NOW - 0.2
    lingering = _lease(
        scope="session", spare=400, lingering=True, last_used=used, last_message=sent, valid_until=sent + 330 - 1
    )
    assert due_reason(lingering, SETTINGS, NOW + 10, WALL, degraded=False) is None  # no park
    assert due_reason(lingering, SETTINGS, NOW + 200, WALL, degraded=False) is None  # no renewal either
    assert due_at(lingering, SETTINGS, NOW, WALL) == used + 10 + 300
    assert due_reason(lingering, SETTINGS, used + 310, WALL, degraded=False) == "give back"
    # Untouched, its due time is remembered like a parked lease's; a call taking from it makes it stale.
    assert due_at_remembered(lingering, SETTINGS, NOW, WALL) == used + 310
    assert quiet_due(lingering, NOW + 1, degraded=False) == used + 310
    lingering.last_used = NOW + 5
    assert quiet_due(lingering, NOW + 6, degraded=False) is None


def test_only_a_chat_s_lease_lingers() -> None:
    assert lingers(_lease("session", served=2), SETTINGS)  # a session of many calls
    assert lingers(_lease("session", served=1, returning=True), SETTINGS)  # its session called after a close
    assert not lingers(_lease("session", served=1), SETTINGS)  # one call: it closes instead
    assert not lingers(_lease("user", served=2), SETTINGS)  # a shared instance parks to one estimate
    unparked = LeaseSettings(flush_seconds=1.0, idle_seconds=10, ttl_seconds=30, park_seconds=0)
    assert not lingers(_lease("session", served=2), unparked)  # park_seconds 0: given back when idle
