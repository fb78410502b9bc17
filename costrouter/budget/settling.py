"""What keeps budgets whole when the store fails: settle retries, the journal, store-loss checks.

* A settle (or release) is tried ``store.settle_attempts`` times with a short backoff
  (it is idempotent by call id); when the store still fails, it goes to the
  :class:`~costrouter.budget.journal.SettleJournal`, never to the caller as an error.
* Journaled settles are replayed by a background thread: when a store op succeeds
  again (the call path only reads a counter and sets an event), every few seconds while
  some wait, and once when the router is built (after adopting dead processes' files).
* The store's epoch (``lua/epoch.lua``) is checked before and after a reserve whenever
  the store opened a new connection (a reconnect), every ``EPOCH_CHECK_SECONDS`` and at
  start (see :mod:`~costrouter.budget.epoch_watch`; callers meeting a check in flight wait
  for its verdict; on a remote store the interval's check runs on the store worker, off
  the call's path); a store that lost its data is refused (``on_store_lost: fail_closed``)
  or warned about (``warn``), never silently taken as a fresh budget.

The flows here yield store ops like the rest of the call (see :mod:`costrouter.ops`);
the journal's file I/O is small and synchronous on both paths.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Final

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from costrouter import forks
from costrouter._version import __version__
from costrouter.budget import BudgetPolicy, BudgetRef, BudgetStore, SettleOutcome
from costrouter.budget.epoch_watch import EpochWatch
from costrouter.budget.factory import journal_directory, leased_store_of
from costrouter.budget.journal import PendingSettle, SettleJournal, journal_trouble, new_entry
from costrouter.budget.store import EpochState
from costrouter.errors import BudgetStoreError, StoreLayoutError
from costrouter.money import units_to_usd
from costrouter.ops import Flow, SleepOp, StoreOp, WaitOp
from costrouter.otel import semconv as sc
from costrouter.otel.telemetry import INSTRUMENTATION_NAME, Telemetry

logger = logging.getLogger("costrouter.budget")

BACKOFF_SECONDS: Final = (0.05, 0.2, 0.5)
"""Waits between tries of a settle (the last repeats when there are more tries)."""
REPLAY_INTERVAL_SECONDS: Final = 5.0
"""How often the background thread retries journaled settles while some wait."""
_MARKER = "epoch"


class StoreLostError(Exception):
    """The cause of the :class:`BudgetStoreError` raised when the store lost its data."""


@dataclass(frozen=True)
class Journaled:
    """A settle the store did not take: kept in the journal, or dropped when it was full."""

    budget: BudgetRef
    entry: PendingSettle
    error: BudgetStoreError
    kept: bool

    def event_attributes(self) -> dict[str, AttributeValue]:
        """The span event saying so."""
        return {
            "budget": self.budget.name,
            "scope": self.budget.scope,
            "scope_id": self.budget.scope_id,
            "state": self.entry.state,
            "amount_usd": units_to_usd(self.entry.amount_units),
            "kept": self.kept,
            "error": str(self.error),
        }


class Replayer:
    """A daemon thread that replays journaled settles through the store's sync API."""

    def __init__(self, store: BudgetStore, journal: SettleJournal, guard: StoreGuard) -> None:
        """Nothing starts until :meth:`kick` finds pending entries."""
        self.store = store
        self.journal = journal
        self.guard = guard
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pass = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        forks.renew_in_child(self)

    def renew_after_fork(self) -> None:
        """In a forked child: no thread yet, and locks no thread of the parent can hold."""
        self._wake = threading.Event()
        self._pass = threading.Lock()
        self._start = threading.Lock()
        self._thread = None

    def kick(self) -> None:
        """Wake the thread (starting it if needed) when entries it may replay wait: cheap, for the call path.

        The settles of this process's live lease are not its own (its lease messages carry them): the
        thread would only skip them, so they do not wake it (they did twice a call).
        """
        if not self.journal.replayable_count or self._stop.is_set():
            return
        if self._thread is None or not self._thread.is_alive():
            with self._start:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="costrouter-settle-replay", daemon=True)
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(REPLAY_INTERVAL_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.journal.replayable_count:
                try:
                    self.replay_once()
                except Exception:  # a bug or a broken disk must not end the replays for good
                    logger.exception("costrouter: replaying the settle journal failed; retrying later")

    def replay_once(self) -> int:
        """Replay pending entries, oldest first, until the store fails; returns how many landed."""
        landed = 0
        with self._pass:
            record_ttl = self.guard.config.record_ttl_seconds
            for entry in self.journal.pending():
                if self._stop.is_set():
                    break
                if time.time() - entry.at > record_ttl:
                    logger.warning(
                        "costrouter: replaying the %s of call %s after the store forgot the call (%d s): "
                        "charged again if an earlier, timed-out try had landed",
                        entry.state,
                        entry.call_id,
                        record_ttl,
                    )
                leased = leased_store_of(self.store)
                if leased is not None and entry.lease == leased.owner:
                    continue  # a settle of this process's live lease: its next message carries it
                try:
                    if entry.lease is not None and entry.seq <= _lease_applied(self.store, entry):
                        pass  # the dead process's lease message had charged it
                    elif entry.state == "settle":
                        self.store.settle(entry.budget, entry.call_id, entry.amount_units)
                    else:
                        self.store.release(entry.budget, entry.call_id)
                except BudgetStoreError as exc:
                    logger.info("costrouter: store still failing, %d settles wait: %s", self.journal.pending_count, exc)
                    break
                self.journal.mark_done(entry.id)
                landed += 1
                self.guard.count(entry, "replayed")
                logger.info(
                    "costrouter: replayed the journaled %s of call %s on budget %s ($%.9f, %.0f s late)",
                    entry.state,
                    entry.call_id,
                    entry.budget.name,
                    units_to_usd(entry.amount_units),
                    time.time() - entry.at,
                )
            if landed:
                self.journal.sync()
        return landed

    def close(self) -> None:
        """Stop the thread (it finishes the entry it is replaying)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _lease_applied(store: BudgetStore, entry: PendingSettle) -> int:
    """The last message seq the store applied for the lease that journaled ``entry``."""
    leased = leased_store_of(store)
    if leased is None or entry.lease is None:
        return 0
    return leased.lease_applied(entry.budget, entry.window, entry.lease)


class StoreGuard:
    """Settle retries, the journal and its replay, and the store-loss check of one router."""

    def __init__(
        self,
        policy: BudgetPolicy,
        store: BudgetStore,
        telemetry: Telemetry,
        journal: SettleJournal | None = None,
    ) -> None:
        """Wire the parts; :func:`build_guard` also adopts dead files and checks the store."""
        self.config = policy.store
        self.store = store
        self.journal = journal
        self.epoch = EpochWatch(None if journal is None else journal.directory / _MARKER)
        self.replayer = None if journal is None else Replayer(store, journal, self)
        self.background: Callable[[Callable[[BudgetStore], None]], bool] | None = None
        """Runs an epoch check no caller waits for (:class:`~costrouter.budget.background.StoreWorker`)."""
        meter = telemetry.meter_provider.get_meter(INSTRUMENTATION_NAME, __version__)
        self._journal_counter = meter.create_counter(
            sc.METRIC_SETTLE_JOURNAL,
            unit=sc.METRIC_SETTLE_UNIT,
            description="Settles the store did not take: journaled, later replayed, or dropped (journal full).",
        )
        self._lost_counter = meter.create_counter(
            sc.METRIC_STORE_LOST,
            unit=sc.METRIC_STORE_LOST_UNIT,
            description="Detections of a budget store that lost its data.",
        )
        if journal is not None:
            meter.create_observable_gauge(
                sc.METRIC_SETTLES_PENDING,
                callbacks=[self._observe_pending],
                unit=sc.METRIC_SETTLE_UNIT,
                description="Settles waiting in this process's journal.",
            )

    def _observe_pending(self, options: CallbackOptions) -> Iterable[Observation]:
        del options
        yield Observation(0 if self.journal is None else self.journal.pending_count)

    def count(self, entry: PendingSettle, action: str) -> None:
        """Count one journal action (``journaled``, ``replayed``, ``dropped``)."""
        self._journal_counter.add(1, {sc.BUDGET_JOURNAL_ACTION: action, sc.BUDGET_SCOPE: entry.budget.scope})

    # ---- settle --------------------------------------------------------------------------
    def settle_flow(
        self, budget: BudgetRef, call_id: str, amount_units: int, *, retry: bool = True
    ) -> Flow[SettleOutcome | Journaled]:
        """Settle (or release, for 0) with retries; journal it when the store keeps failing.

        ``retry=False`` tries once: for the next budgets of a call whose store just failed
        every try, so that a call waits for one budget's retries, not each budget's.
        """
        attempts = self.config.settle_attempts if retry else 1
        method = "settle" if amount_units > 0 else "release"
        args = (budget, call_id, amount_units) if amount_units > 0 else (budget, call_id)
        tries = 0
        while True:
            try:
                result: SettleOutcome = yield StoreOp(method, args)
            except BudgetStoreError as exc:
                tries += 1
                if tries >= attempts:
                    return self._journal(budget, call_id, amount_units, method, exc, tries)
                yield SleepOp(BACKOFF_SECONDS[min(tries, len(BACKOFF_SECONDS)) - 1])
                continue
            if self.replayer is not None:
                self.replayer.kick()
            return result

    def _journal(
        self, budget: BudgetRef, call_id: str, amount_units: int, method: str, error: BudgetStoreError, tries: int
    ) -> Journaled:
        entry = new_entry(budget, call_id, amount_units, "settle" if method == "settle" else "release")
        kept = self.journal is not None and self.journal.append(entry)
        self.count(entry, "journaled" if kept else "dropped")
        if kept:
            logger.warning(
                "costrouter: could not %s budget %s for call %s ($%.9f) after %d tries; journaled, "
                "replayed when the store answers: %s",
                method,
                budget.name,
                call_id,
                units_to_usd(amount_units),
                tries,
                error,
            )
        else:
            level = logging.ERROR if method == "settle" else logging.WARNING
            reason = "no journal" if self.journal is None else f"the journal {journal_trouble(self.journal)}"
            logger.log(
                level,
                "costrouter: LOST the %s of budget %s %s %r for call %s ($%.9f): %s and the store fails: %s",
                method,
                budget.name,
                budget.scope,
                budget.scope_id,
                call_id,
                units_to_usd(amount_units),
                reason,
                error,
            )
        return Journaled(budget, entry, error, kept)

    def note_lease_fault(self, span: Span, settled: Sequence[SettleOutcome]) -> None:
        """Say on a call's span that the leases run per call, and why (an event on the call that met it)."""
        leased = leased_store_of(self.store)
        if leased is None or leased.fault is None:
            return
        span.set_attribute(sc.BUDGET_LEASE_FAULT, leased.fault)
        refused = next((outcome.journal_fault for outcome in settled if outcome.journal_fault), None)
        if refused is not None:
            journal = "" if self.journal is None else str(self.journal.path)
            span.add_event(sc.EVENT_LEASE_DEGRADED, {"reason": refused, "journal": journal})

    # ---- the store's epoch ---------------------------------------------------------------
    def after_reserve_flow(self, span: Span | None) -> Flow[None]:
        """After a reserve that worked: wake the replay if settles wait, check the epoch if due."""
        if self.replayer is not None:
            self.replayer.kick()
        yield from self.epoch_flow(span)

    def epoch_flow(self, span: Span | None) -> Flow[None]:
        """Check the store's epoch when due; raise BudgetStoreError on a loss under fail_closed.

        While another call's check is in flight, wait for its verdict (no Redis round trip);
        a wait past the store's longest answer time checks here instead. With :attr:`background`,
        a check the interval alone makes due goes there and the call goes on; a loss it finds
        makes the next call check again on its path, and refuse under fail_closed.
        """
        fail_closed = self.config.on_store_lost == "fail_closed"
        watch = self.epoch
        if self.background is not None:
            check = watch.claim_background(self.store.connections, fail_closed=fail_closed)
            if check is not None:
                if self.background(partial(self._check_in_background, check=check)):
                    return
                watch.finish(check, None)  # the worker is closed or full: this caller checks
        while True:
            claimed = watch.claim(self.store.connections, fail_closed=fail_closed)
            if claimed is None:
                return
            check, mine = claimed
            if mine:
                yield from self._check_epoch(span, check)
                return
            try:
                state: EpochState | None = yield WaitOp(check, self._longest_answer_seconds())
            except TimeoutError:
                yield from self._check_epoch(span, None)
                return
            if state is None:
                return  # that check had no answer: as for the call that ran it, the store ops decide
            if state.lost:
                self._refuse_if_lost(span, state)
                return
            # A good verdict: check again only if a connection opened since that check began.

    def _longest_answer_seconds(self) -> float:
        """How long one store op may take: a pool wait, and a retry after a broken connection."""
        config = self.config
        return config.pool_timeout_seconds + 2 * (config.connect_timeout_seconds + config.timeout_seconds)

    def _check_epoch(self, span: Span | None, check: Future[EpochState | None] | None) -> Flow[None]:
        """Run one check (``check``: the claimed one, finished with its verdict; ``None``: a lone one)."""
        watch = self.epoch
        connections = self.store.connections if check is None else watch.check_connections
        state: EpochState | None = None
        try:
            state = yield StoreOp("epoch", (uuid.uuid4().hex, watch.known))
            newly = watch.observe(state, connections)
        except BudgetStoreError:
            return  # the reserve meets the same failure and applies on_store_error
        finally:
            if check is not None:
                watch.finish(check, state)
        if state is None:
            return
        if newly:
            self._report_loss(state)
        if state.lost:
            self._refuse_if_lost(span, state)

    def _check_in_background(self, store: BudgetStore, check: Future[EpochState | None]) -> None:
        """Run a claimed check with the store's sync API (on :attr:`background`'s thread)."""
        watch = self.epoch
        connections = watch.check_connections
        state: EpochState | None = None
        try:
            state = store.epoch(uuid.uuid4().hex, watch.known)
            newly = watch.observe(state, connections)
        except BudgetStoreError:
            return  # not checked: due again at the next call, whose store ops meet the failure too
        except StoreLayoutError:
            # A 0.2 process counts on this store now: the next call's check runs on its path, and
            # raises this to it (no on_store_error lets a call count beside another layout).
            watch.seen_connections = -1
            return
        finally:
            watch.finish(check, state)
        if newly and state is not None:
            self._report_loss(state)

    def _report_loss(self, state: EpochState) -> None:
        """A loss newly found: counted and logged once, whichever check found it."""
        self._lost_counter.add(1, {sc.BUDGET_ON_STORE_LOST: self.config.on_store_lost})
        logger.error(
            "costrouter: the budget store lost its data (epoch %s, this machine knew %s): its counters "
            "restarted from zero; on_store_lost: %s%s",
            state.epoch,
            self.epoch.known,
            self.config.on_store_lost,
            "; calls are refused until `costrouter budget accept-loss`"
            if self.config.on_store_lost == "fail_closed"
            else "",
        )

    def _refuse_if_lost(self, span: Span | None, state: EpochState) -> None:
        """A verdict of loss: a span event, and under fail_closed the error that refuses the call."""
        if span is not None:
            span.add_event(
                sc.EVENT_STORE_LOST,
                {
                    "epoch": state.epoch,
                    "known_epoch": self.epoch.known or "",
                    "on_store_lost": self.config.on_store_lost,
                },
            )
        if self.config.on_store_lost == "fail_closed":
            cause = StoreLostError(
                f"the budget store lost its data (a Redis restarted empty: epoch {state.epoch}, "
                f"known {self.epoch.known}); on_store_lost: fail_closed refuses calls until an operator runs "
                "`costrouter budget accept-loss`"
            )
            raise BudgetStoreError("epoch check", cause) from cause

    # ---- start and stop ------------------------------------------------------------------
    def start(self) -> None:
        """Adopt dead processes' journals, check the epoch once and replay what waits (sync)."""
        if self.journal is not None:
            try:
                self.journal.adopt()
            except OSError:
                logger.exception("costrouter: could not adopt settle journals in %s", self.journal.directory)
        with contextlib.suppress(BudgetStoreError):
            state = self.store.epoch(uuid.uuid4().hex, self.epoch.known)
            if state is not None and self.epoch.observe(state, self.store.connections):
                self._lost_counter.add(1, {sc.BUDGET_ON_STORE_LOST: self.config.on_store_lost})
                logger.error("costrouter: the budget store lost its data (epoch %s) before this start", state.epoch)
        if self.replayer is not None and self.journal is not None and self.journal.pending_count:
            self.replayer.replay_once()
            self.replayer.kick()

    def pending(self) -> tuple[int, int]:
        """``(count, units)`` of the settles waiting in this process's journal."""
        if self.journal is None:
            return 0, 0
        return self.journal.pending_count, self.journal.pending_units()

    def close(self) -> None:
        """Stop the replay thread and unlock the journal (kept for the next start when entries wait).

        A leasing store first carries its settled spend to the store and gives its leases back.
        """
        leased = leased_store_of(self.store)
        if leased is not None:
            leased.drain()
        if self.replayer is not None:
            self.replayer.close()
        if self.journal is not None:
            self.journal.close()


def build_guard(policy: BudgetPolicy, store: BudgetStore, telemetry: Telemetry) -> StoreGuard:
    """The guard of a router: its journal (Redis only), started (see :meth:`StoreGuard.start`)."""
    directory = journal_directory(policy, store)
    journal = None
    if directory is not None:
        try:
            journal = SettleJournal(directory, policy.store.journal_max_entries)
        except OSError:
            logger.exception("costrouter: cannot open the settle journal in %s; settles are retried only", directory)
    leased = leased_store_of(store)
    if journal is not None and leased is not None:
        leased.journal = journal  # a leasing store journals its calls' settles there
        journal.set_own_lease(leased.owner)
    guard = StoreGuard(policy, store, telemetry, journal)
    guard.start()
    return guard
