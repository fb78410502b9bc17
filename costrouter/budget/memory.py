"""Budget counters in this process: the default store, thread-safe, no server needed.

It keeps the same records and follows the same rules as the Redis scripts (see
``costrouter/budget/redis.py``), with an injectable clock so that tests can move time.
Async methods run the sync ones directly: nothing here waits on I/O.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from costrouter import forks
from costrouter.budget.store import (
    BudgetStatus,
    BudgetStore,
    ReserveOutcome,
    SettleOutcome,
    alert_threshold_units,
    check_amount,
    check_ratio,
    make_status,
    saturating_add,
)
from costrouter.config.budget_ref import BudgetRef, budget_key
from costrouter.config.budgets import StoreConfig
from costrouter.config.windows import window_at
from costrouter.pricing.ratio_rule import LearnedRatio, RatioRule, next_token_ratio

_PURGE_EVERY = 4096


@dataclass
class _Counter:
    """One window of one budget instance."""

    scope_id: str
    window: str
    expires_at: float | None
    spent: int = 0
    held: int = 0
    holds: int = 0
    unheld: int = 0
    alerts: set[float] = field(default_factory=set)


@dataclass(frozen=True)
class _Record:
    """What the store remembers of one call id, as the Redis ``calls`` hash does."""

    state: str
    hold: int
    window: str
    window_expires_at: float | None
    reserved: ReserveOutcome | None
    settled: SettleOutcome | None = None


@dataclass
class _Instance:
    """The call records of one budget instance and their expiry heap."""

    calls: dict[str, tuple[_Record, float]] = field(default_factory=dict)
    heap: list[tuple[float, str]] = field(default_factory=list)
    expires_at: float = 0.0

    def put(self, call_id: str, record: _Record, expires_at: float) -> None:
        self.calls[call_id] = (record, expires_at)
        heapq.heappush(self.heap, (expires_at, call_id))


class MemoryBudgetStore(BudgetStore):
    """Budget counters in a dict behind a lock; ``clock`` gives the time (Unix seconds)."""

    def __init__(self, config: StoreConfig | None = None, *, clock: Callable[[], float] = time.time) -> None:
        """An empty store; only ``config``'s TTLs and key prefix matter here."""
        self.config = config or StoreConfig()
        self.clock = clock
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._instances: dict[str, _Instance] = {}
        self._operations = 0
        self._token_ratios: dict[str, tuple[float, int, float]] = {}
        """Deployment id -> (ratio, observations, when last taught)."""
        forks.renew_in_child(self)

    def renew_after_fork(self) -> None:
        """In a forked child: a lock no thread of the parent can hold (the counters are the child's copy)."""
        self._lock = threading.Lock()

    def _counter(self, base: str, window: str, now: float) -> _Counter | None:
        counter = self._counters.get((base, window))
        if counter is not None and counter.expires_at is not None and counter.expires_at <= now:
            del self._counters[(base, window)]
            return None
        return counter

    def _counter_for(self, base: str, budget: BudgetRef, window: tuple[str, float | None], now: float) -> _Counter:
        counter = self._counter(base, window[0], now)
        if counter is None:
            counter = _Counter(budget.scope_id, window[0], window[1])
            self._counters[(base, window[0])] = counter
        return counter

    def _instance(self, base: str, now: float) -> _Instance | None:
        instance = self._instances.get(base)
        if instance is not None and (instance.expires_at <= now or not instance.calls):
            del self._instances[base]
            return None
        return instance

    def _touch(self, base: str, now: float) -> _Instance:
        instance = self._instance(base, now) or self._instances.setdefault(base, _Instance())
        instance.expires_at = now + self.config.record_ttl_seconds + 1
        return instance

    def _drop_hold(self, base: str, record: _Record, now: float) -> None:
        counter = self._counter(base, record.window, now)
        if counter is not None:
            counter.held = max(0, counter.held - record.hold)
            counter.holds = max(0, counter.holds - 1)

    def _sweep(self, base: str, now: float) -> None:
        instance = self._instance(base, now)
        if instance is None:
            return
        while instance.heap and instance.heap[0][0] <= now:
            expires_at, call_id = heapq.heappop(instance.heap)
            entry = instance.calls.get(call_id)
            if entry is None or entry[1] != expires_at:
                continue
            record = entry[0]
            if record.state == "held":
                self._drop_hold(base, record, now)
                instance.put(call_id, replace(record, state="expired"), now + self.config.record_ttl_seconds)
            else:
                del instance.calls[call_id]

    def _heal(self, base: str, counter: _Counter | None, now: float) -> None:
        if counter is not None and self._instance(base, now) is None:
            counter.held = counter.holds = 0

    def _window(self, budget: BudgetRef, now: float) -> tuple[str, float | None]:
        window = window_at(budget.window, now)
        expires_at = None if window.end is None else float(window.end + self.config.hold_ttl_seconds)
        return window.id, expires_at

    def _purge(self, now: float) -> None:
        """Forget expired windows and call records, at an amortized constant cost per operation."""
        self._operations += 1
        if self._operations < max(_PURGE_EVERY, len(self._counters) + len(self._instances)):
            return
        self._operations = 0
        for key in [k for k, c in self._counters.items() if c.expires_at is not None and c.expires_at <= now]:
            del self._counters[key]
        for base in [b for b, i in self._instances.items() if i.expires_at <= now]:
            del self._instances[base]

    def reserve(self, budget: BudgetRef, call_id: str, amount_units: int, *, enforce: bool) -> ReserveOutcome:
        """See :meth:`BudgetStore.reserve`."""
        amount = check_amount(amount_units)
        base = budget_key(self.config.key_prefix, budget)
        with self._lock:
            now = self.clock()
            self._purge(now)
            self._sweep(base, now)
            instance = self._instance(base, now)
            if instance is not None and call_id in instance.calls:
                record = instance.calls[call_id][0]
                if record.reserved is not None:
                    return replace(record.reserved, replayed=True)
                return ReserveOutcome(False, 0, 0, record.window, replayed=True)  # settled before any reserve
            window, expires_at = self._window(budget, now)
            counter = self._counter(base, window, now)
            self._heal(base, counter, now)
            spent, held = (counter.spent, counter.held) if counter else (0, 0)
            granted = spent + held + amount <= budget.limit_units
            outcome = ReserveOutcome(granted, spent, held, window, replayed=False)
            instance = self._touch(base, now)
            if granted or not enforce:
                counter = counter or self._counter_for(base, budget, (window, expires_at), now)
                counter.held = saturating_add(counter.held, amount)
                counter.holds += 1
                record = _Record("held", amount, window, expires_at, outcome)
                instance.put(call_id, record, now + self.config.hold_ttl_seconds)
            else:
                record = _Record("refused", 0, window, expires_at, outcome)
                instance.put(call_id, record, now + self.config.record_ttl_seconds)
            return outcome

    def _settle(self, budget: BudgetRef, call_id: str, amount: int, *, release: bool) -> SettleOutcome:
        base = budget_key(self.config.key_prefix, budget)
        with self._lock:
            now = self.clock()
            self._purge(now)
            self._sweep(base, now)
            instance = self._instance(base, now)
            record = instance.calls[call_id][0] if instance is not None and call_id in instance.calls else None
            if record is not None and record.settled is not None:
                return replace(record.settled, replayed=True)
            if record is not None and (record.window_expires_at is None or record.window_expires_at > now):
                window, expires_at = record.window, record.window_expires_at
            else:
                window, expires_at = self._window(budget, now)
            self._heal(base, self._counter(base, window, now), now)
            if record is not None and record.state == "held":
                self._drop_hold(base, record, now)
            alerts: list[float] = []
            unheld = False
            if release:
                counter = self._counter(base, window, now)
            else:
                counter = self._counter_for(base, budget, (window, expires_at), now)
                counter.spent = saturating_add(counter.spent, amount)
                unheld = record is None or record.state != "held"
                counter.unheld += unheld
                for threshold in budget.alert_at:
                    crossed = counter.spent >= alert_threshold_units(budget.limit_units, threshold)
                    if crossed and threshold not in counter.alerts:
                        counter.alerts.add(threshold)
                        alerts.append(threshold)
            outcome = SettleOutcome(
                state="released" if release else "settled",
                charged_units=0 if release else amount,
                spent_units=counter.spent if counter else 0,
                held_units=counter.held if counter else 0,
                window_id=window,
                alerts=tuple(alerts),
                replayed=False,
                unheld=not release and unheld,
            )
            stored = _Record(
                state=outcome.state,
                hold=record.hold if record else 0,
                window=window,
                window_expires_at=expires_at,
                reserved=record.reserved if record else None,
                settled=outcome,
            )
            self._touch(base, now).put(call_id, stored, now + self.config.record_ttl_seconds)
            return outcome

    def settle(self, budget: BudgetRef, call_id: str, amount_units: int) -> SettleOutcome:
        """See :meth:`BudgetStore.settle`."""
        return self._settle(budget, call_id, check_amount(amount_units), release=False)

    def release(self, budget: BudgetRef, call_id: str) -> SettleOutcome:
        """See :meth:`BudgetStore.release`."""
        return self._settle(budget, call_id, 0, release=True)

    def status(self, budget: BudgetRef) -> BudgetStatus:
        """See :meth:`BudgetStore.status`."""
        base = budget_key(self.config.key_prefix, budget)
        with self._lock:
            now = self.clock()
            self._sweep(base, now)
            window, _ = self._window(budget, now)
            counter = self._counter(base, window, now)
            self._heal(base, counter, now)
            if counter is None:
                return make_status(budget, window, 0, 0, 0)
            status = make_status(budget, window, counter.spent, counter.held, counter.holds)
            return replace(status, unheld_settles=counter.unheld)

    def renew(self, budget: BudgetRef, call_id: str) -> bool:
        """See :meth:`BudgetStore.renew`."""
        base = budget_key(self.config.key_prefix, budget)
        with self._lock:
            now = self.clock()
            instance = self._instance(base, now)
            entry = instance.calls.get(call_id) if instance is not None else None
            if instance is None or entry is None or entry[0].state != "held":
                return False
            self._touch(base, now).put(call_id, entry[0], now + self.config.hold_ttl_seconds)
            return True

    def reset(self, budget: BudgetRef) -> None:
        """See :meth:`BudgetStore.reset`."""
        base = budget_key(self.config.key_prefix, budget)
        with self._lock:
            now = self.clock()
            window, _ = self._window(budget, now)
            self._counters.pop((base, window), None)
            instance = self._instance(base, now)
            if instance is None:
                return
            for call_id, (record, _expires_at) in list(instance.calls.items()):
                if record.state == "held" and record.window == window:
                    expired = replace(record, state="expired")
                    instance.put(call_id, expired, now + self.config.record_ttl_seconds)

    def top(self, budget: BudgetRef, n: int) -> list[tuple[str, int]]:
        """See :meth:`BudgetStore.top`."""
        prefix = budget_key(self.config.key_prefix, replace(budget, scope_id=""))[:-1]
        with self._lock:
            now = self.clock()
            window, _ = self._window(budget, now)
            spenders = [
                (counter.spent, counter.scope_id)
                for (base, counter_window), counter in list(self._counters.items())
                if counter_window == window
                and base.startswith(prefix)
                and counter.spent > 0
                and self._counter(base, window, now) is not None
            ]
        spenders.sort(reverse=True)
        return [(scope_id, spent) for spent, scope_id in spenders[: max(n, 0)]]

    def _learned(self, deployment_id: str, now: float) -> LearnedRatio | None:
        entry = self._token_ratios.get(deployment_id)
        return None if entry is None else LearnedRatio(entry[0], entry[1], max(now - entry[2], 0.0))

    def token_ratios(self) -> dict[str, LearnedRatio]:
        """See :meth:`BudgetStore.token_ratios`."""
        with self._lock:
            now = self.clock()
            return {d: learned for d in self._token_ratios if (learned := self._learned(d, now)) is not None}

    def observe_token_ratio(self, deployment_id: str, ratio: float, rule: RatioRule) -> float:
        """See :meth:`BudgetStore.observe_token_ratio`."""
        check_ratio(ratio, rule)
        with self._lock:
            now = self.clock()
            stored = self._learned(deployment_id, now)
            learned = next_token_ratio(stored, ratio, rule)
            self._token_ratios[deployment_id] = (learned, (stored.observations if stored else 0) + 1, now)
            return learned

    def reset_token_ratios(self, deployment_id: str | None = None) -> list[str]:
        """See :meth:`BudgetStore.reset_token_ratios`."""
        with self._lock:
            named = sorted(self._token_ratios) if deployment_id is None else [deployment_id]
            return [d for d in named if self._token_ratios.pop(d, None) is not None]

    def close(self) -> None:
        """Nothing to release; the counters stay readable."""

    async def areserve(self, budget: BudgetRef, call_id: str, amount_units: int, *, enforce: bool) -> ReserveOutcome:
        """See :meth:`BudgetStore.reserve`."""
        return self.reserve(budget, call_id, amount_units, enforce=enforce)

    async def asettle(self, budget: BudgetRef, call_id: str, amount_units: int) -> SettleOutcome:
        """See :meth:`BudgetStore.settle`."""
        return self.settle(budget, call_id, amount_units)

    async def arelease(self, budget: BudgetRef, call_id: str) -> SettleOutcome:
        """See :meth:`BudgetStore.release`."""
        return self.release(budget, call_id)

    async def arenew(self, budget: BudgetRef, call_id: str) -> bool:
        """See :meth:`BudgetStore.renew`."""
        return self.renew(budget, call_id)

    async def astatus(self, budget: BudgetRef) -> BudgetStatus:
        """See :meth:`BudgetStore.status`."""
        return self.status(budget)

    async def areset(self, budget: BudgetRef) -> None:
        """See :meth:`BudgetStore.reset`."""
        self.reset(budget)

    async def atop(self, budget: BudgetRef, n: int) -> list[tuple[str, int]]:
        """See :meth:`BudgetStore.top`."""
        return self.top(budget, n)

    async def atoken_ratios(self) -> dict[str, LearnedRatio]:
        """See :meth:`BudgetStore.token_ratios`."""
        return self.token_ratios()

    async def aobserve_token_ratio(self, deployment_id: str, ratio: float, rule: RatioRule) -> float:
        """See :meth:`BudgetStore.observe_token_ratio`."""
        return self.observe_token_ratio(deployment_id, ratio, rule)

    async def aclose(self) -> None:
        """See :meth:`BudgetStore.close`."""
        self.close()
