"""Store calls no caller waits for: one worker thread per router, run in the order they came.

The learned token ratios (:mod:`costrouter.pricing.token_ratios`) are read again every
``ratio_refresh_seconds`` and taught by answered calls. On a remote store each is a round trip;
on the caller's path, a process whose calls come seconds apart paid two of them a call (a
refresh before the hold, a lesson after the answer). They go here instead: a worker thread
(a ``ThreadPoolExecutor``'s of one, joined at interpreter exit: a call out finishes within the
store's timeouts) calls the store's sync API, and the ratios take the store's answer when it comes. A store call
that fails is logged by the work itself; one that raises anything else is logged here, and the
worker goes on. At most :data:`MAX_WAITING` calls wait; past that a new one is dropped (the
next refresh period sends it again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from costrouter import forks
from costrouter.budget.store import BudgetStore

logger = logging.getLogger("costrouter.budget")

MAX_WAITING: Final = 256
"""Store calls that may wait for the worker; a new one past this is dropped."""

StoreWork = Callable[[BudgetStore], None]


class StoreWorker:
    """Runs store calls off the callers' path, one at a time, in the order they were submitted."""

    def __init__(self, store: BudgetStore) -> None:
        """Nothing runs until the first :meth:`submit`."""
        self.store = store
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._executor: ThreadPoolExecutor | None = None
        self._waiting = 0
        self._closed = False
        self.dropped = 0
        """Store calls dropped because :data:`MAX_WAITING` were waiting (for tests)."""
        forks.renew_in_child(self)

    def renew_after_fork(self) -> None:
        """In a forked child: the parent's worker thread and its queue are the parent's."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._executor = None
        self._waiting = 0

    def submit(self, work: StoreWork) -> bool:
        """Run ``work(store)`` on the worker thread; ``False`` when closed or too many wait (dropped)."""
        with self._lock:
            if self._closed:
                return False
            if self._waiting >= MAX_WAITING:
                self.dropped += 1
                return False
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="costrouter-store-worker")
            self._waiting += 1
            executor = self._executor
        executor.submit(self._run, work)
        return True

    def _run(self, work: StoreWork) -> None:
        try:
            work(self.store)
        except Exception:  # a bug in one piece of work must not stop the others
            logger.exception("costrouter: a background budget store call failed")
        finally:
            with self._lock:
                self._waiting -= 1
                if not self._waiting:
                    self._idle.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every submitted call has run; ``False`` when ``timeout`` passed first."""
        with self._lock:
            return self._idle.wait_for(lambda: self._waiting == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Take no more calls; let those waiting run (at most ``timeout`` seconds), then stop the thread."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is None:
            return
        if not self.wait(timeout):
            logger.warning("costrouter: background budget store calls still waiting at shutdown were dropped")
        executor.shutdown(wait=False, cancel_futures=True)
