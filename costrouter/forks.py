"""What a forked child renews: the threads, locks and identities of the parent's objects are the parent's.

A child of ``fork()`` (gunicorn ``--preload``, Celery's prefork pool, ``multiprocessing`` with
the fork start method) has copies of the parent's objects but none of its threads, and a lock
another thread held at the fork stays held for good. Worse for budgets, it has the parent's
lease owner and journal file: two processes spending under one owner make each other's lease
messages look like replays, and the spend of all but one is lost. Objects that own threads or a
per-process identity register here; in the child, each renews itself before the child's own
code runs (journals first: a leasing store names its new owner in its renewed journal).
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Protocol

logger = logging.getLogger("costrouter")


class RenewedAfterFork(Protocol):
    """An object with state that belongs to the process that made it."""

    def renew_after_fork(self) -> None:
        """Drop what is the parent's (its threads, locks, queued work, identity) in a forked child."""


_FIRST: weakref.WeakSet[RenewedAfterFork] = weakref.WeakSet()
_THEN: weakref.WeakSet[RenewedAfterFork] = weakref.WeakSet()


def renew_in_child(item: RenewedAfterFork, *, first: bool = False) -> None:
    """Have ``item`` renew itself in every forked child while it lives (``first``: before the others)."""
    (_FIRST if first else _THEN).add(item)


def _after_fork_in_child() -> None:
    for items in (_FIRST, _THEN):
        for item in list(items):
            try:
                item.renew_after_fork()
            except Exception:  # one object that cannot renew must not leave the others the parent's
                logger.exception("costrouter: %r could not renew itself in forked process %d", item, os.getpid())


os.register_at_fork(after_in_child=_after_fork_in_child)
