"""What a process knows of its budget store's epoch, and the one check of it in flight.

The epoch (``lua/epoch.lua``) tells a store that kept its data from one that restarted
empty. :class:`EpochWatch` says when a check is due (a new connection, the interval,
a loss being refused) and lets one caller run it while the others wait for its verdict;
:class:`~costrouter.budget.settling.StoreGuard` runs the checks. A check the interval alone
makes due may run in the background (:meth:`EpochWatch.claim_background`): nothing new was
seen of the store, so no caller waits for it, as none waited in the interval before it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Final, Literal

from costrouter.budget.store import EpochState

logger = logging.getLogger("costrouter.budget")

EPOCH_CHECK_SECONDS: Final = 30.0
"""The longest time between two checks of the store's epoch."""


class EpochWatch:
    """What this process knows of the store's epoch, when to look again, and the check in flight.

    One check runs at a time; a caller that finds one in flight waits for its verdict
    (:meth:`claim`), so no call goes on against a store that may have restarted empty
    while its check is out (answering "not due" instead admitted a full limit again).
    """

    def __init__(self, marker: Path | None) -> None:
        """Start from the epoch ``marker`` (a file of the journal directory) recorded, if any."""
        self.marker = marker
        self.known: str | None = None
        if marker is not None:
            with contextlib.suppress(OSError):
                self.known = marker.read_text(encoding="utf-8").strip() or None
        self.seen_connections = -1
        self.checked_at = float("-inf")
        self.lost: str | None = None
        self._lock = threading.Lock()
        self._check: Future[EpochState | None] | None = None
        self._check_connections = -1
        self._in_background = False

    def due(self, connections: int, *, fail_closed: bool) -> bool:
        """Whether to check now: a new connection, the interval passed, or refusing on a loss."""
        return self._due_by(connections, fail_closed=fail_closed) is not None

    def _due_by(self, connections: int, *, fail_closed: bool) -> Literal["lost", "connection", "interval"] | None:
        if self.lost is not None and fail_closed:
            return "lost"
        if connections != self.seen_connections:
            return "connection"
        return "interval" if time.monotonic() - self.checked_at >= EPOCH_CHECK_SECONDS else None

    def claim(self, connections: int, *, fail_closed: bool) -> tuple[Future[EpochState | None], bool] | None:
        """``None`` when no check is due; else the check in flight and whether this caller runs it.

        The caller that runs it must :meth:`finish` it; the others wait for its verdict. A check
        in the background (:meth:`claim_background`) is waited for only by a caller it would be
        due for otherwise than by the interval (a new connection, a loss being refused).
        """
        with self._lock:
            if self._check is not None:
                if self._in_background and self._due_by(connections, fail_closed=fail_closed) in (None, "interval"):
                    return None
                return self._check, False
            if not self.due(connections, fail_closed=fail_closed):
                return None
            return self._new_check(connections, background=False), True

    def claim_background(self, connections: int, *, fail_closed: bool) -> Future[EpochState | None] | None:
        """The check to run off the callers' path, when only the interval makes one due and none is out.

        ``None`` otherwise (then :meth:`claim` says what to do). The runner must :meth:`finish` it.
        """
        with self._lock:
            if self._check is not None or self._due_by(connections, fail_closed=fail_closed) != "interval":
                return None
            return self._new_check(connections, background=True)

    def _new_check(self, connections: int, *, background: bool) -> Future[EpochState | None]:
        check: Future[EpochState | None] = Future()
        check.set_running_or_notify_cancel()
        self._check, self._check_connections, self._in_background = check, connections, background
        return check

    def finish(self, check: Future[EpochState | None], state: EpochState | None) -> None:
        """End the check in flight with its verdict (``None``: no answer) and wake its waiters."""
        with self._lock:
            if self._check is check:
                self._check, self._in_background = None, False
        if not check.done():
            check.set_result(state)

    @property
    def check_connections(self) -> int:
        """The store's connection count when the check in flight began (what its verdict covers)."""
        return self._check_connections

    def observe(self, state: EpochState | None, connections: int) -> bool:
        """Take a check's answer; ``True`` when this check newly found the store lost.

        ``connections`` is the count when the check began: a connection opened meanwhile
        may have met a restarted store the check did not see, so it makes a check due again.
        ``None``: a store that keeps no epoch, never checked again.
        """
        if state is None:
            self.seen_connections, self.checked_at = connections, float("inf")
            return False
        self.seen_connections = connections
        self.checked_at = time.monotonic()
        if state.lost:
            newly = self.lost != state.epoch
            self.lost = state.epoch
            return newly
        self.lost = None
        if state.epoch != self.known:
            self.known = state.epoch
            self._write_marker(state.epoch)
        return False

    def _write_marker(self, epoch: str) -> None:
        if self.marker is None:
            return
        temporary = self.marker.with_name(f".{self.marker.name}.{os.getpid()}.new")
        try:
            temporary.write_text(epoch + "\n", encoding="utf-8")
            temporary.replace(self.marker)
        except OSError:
            logger.warning("costrouter: could not record the store's epoch in %s", self.marker, exc_info=True)
