"""Keep the holds of running calls alive: one renewer thread per store.

A hold expires ``hold_ttl_seconds`` after its reserve unless renewed, so that a
crashed process frees its room. A call or stream that runs longer than that would
lose its hold while still spending, and other calls would take the room. The
renewer renews every live hold every third of the TTL, off the callers' path (a
daemon thread using the store's sync API), and stops on :meth:`HoldRenewer.stop`.

A renewal that finds the hold gone (it expired before a renewal reached it, or the
budget was reset) is logged once; the call's settle still charges, and is counted as
an *unheld* settle (span event, log line, metric, ``BudgetStatus.unheld_settles``).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence

from costrouter import forks
from costrouter.budget.store import BudgetStore
from costrouter.config.budget_ref import BudgetRef
from costrouter.errors import BudgetStoreError

logger = logging.getLogger("costrouter.budget")


class HoldRenewer:
    """Renews the holds of the calls it tracks, every ``hold_ttl_seconds / 3`` seconds."""

    def __init__(self, store: BudgetStore, hold_ttl_seconds: float) -> None:
        """Nothing runs until the first call is tracked."""
        self.store = store
        self.interval = hold_ttl_seconds / 3
        self._live: dict[str, list[BudgetRef]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewed = 0
        """Renewals that found their hold live (for tests and benchmarks)."""
        self.lost = 0
        """Holds found gone while their call was still running."""
        forks.renew_in_child(self)

    def renew_after_fork(self) -> None:
        """In a forked child: no calls to renew (the parent's are the parent's), no thread yet."""
        self._live = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = None

    def track(self, call_id: str, budgets: Sequence[BudgetRef]) -> None:
        """Keep renewing ``call_id``'s holds in ``budgets`` until :meth:`forget`."""
        if not budgets:
            return
        with self._lock:
            if self._stopping.is_set():
                return
            self._live[call_id] = list(budgets)
            if self._thread is None:
                # The thread holds the renewer weakly: a router dropped without shutdown() lets it end.
                arguments = (weakref.ref(self), self._stopping, self.interval)
                self._thread = threading.Thread(
                    target=_renew_until_stopped, args=arguments, name="costrouter-hold-renewer", daemon=True
                )
                self._thread.start()

    def forget(self, call_id: str) -> None:
        """Stop renewing ``call_id`` (its call is settling)."""
        with self._lock:
            self._live.pop(call_id, None)

    @property
    def running(self) -> bool:
        """Whether the renewer thread is running."""
        return self._thread is not None

    def live(self) -> int:
        """How many calls are being renewed."""
        with self._lock:
            return len(self._live)

    def renew_all(self) -> None:
        """One pass over every live hold; a store failure is logged and retried next pass."""
        with self._lock:
            pending = [(call_id, budget) for call_id, budgets in self._live.items() for budget in budgets]
        for call_id, budget in pending:
            try:
                alive = self.store.renew(budget, call_id)
            except BudgetStoreError as exc:
                logger.warning(
                    "costrouter: could not renew the hold of call %s on budget %s: %s", call_id, budget.name, exc
                )
                continue
            if alive:
                self.renewed += 1
            else:
                self._lose(call_id, budget)

    def _lose(self, call_id: str, budget: BudgetRef) -> None:
        with self._lock:
            budgets = self._live.get(call_id)
            if budgets is None or budget not in budgets:
                return  # the call ended meanwhile
            budgets.remove(budget)
        self.lost += 1
        logger.warning(
            "costrouter: the hold of running call %s on budget %s (%s %r) is gone (expired or reset); "
            "its settle will still charge, as an unheld settle",
            call_id,
            budget.name,
            budget.scope,
            budget.scope_id,
        )

    def stop(self) -> None:
        """Stop the thread (idempotent); holds still live expire by their TTL."""
        with self._lock:
            self._stopping.set()
            thread, self._thread = self._thread, None
            self._live.clear()
        if thread is not None:
            thread.join()


def _renew_until_stopped(renewer: weakref.ref[HoldRenewer], stopping: threading.Event, interval: float) -> None:
    while not stopping.wait(interval):
        alive = renewer()
        if alive is None:
            return
        alive.renew_all()
        del alive
