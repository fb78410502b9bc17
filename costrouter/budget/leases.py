"""Per-process leases: Redis budgets reserved and settled in memory, carried to Redis in the background.

A :class:`LeasedStore` wraps a :class:`~costrouter.budget.redis.RedisBudgetStore`. For
each budget instance a call meets, the process holds a *lease*: one hold in Redis
(``lua/lease.lua``, a field of the window's hash) of what its calls in flight need plus
a spare slice. A reserve that fits the slice is granted in memory; a settle moves the
call's amount from in flight to *settled*, written to the settle journal (without
``fsync``: a crash of the process keeps it) and carried to Redis by the next message.

A message drops the lease's old hold, charges the settled amount, and holds again
``in flight + need + spare`` (see :func:`~costrouter.budget.lease_message.spare_room`):
the same check-and-hold as a call's own reserve, so no limit is passed that a reserve
per call would not pass. While a message is out, calls take only from a *pool* the
message holds as if in flight (at most half the spare room, part of the old hold); the
others wait for it, so the new hold always covers every call in flight.

Messages go out: when a call does not fit (that call waits for it, an async call on its own
event loop, with no thread in between; it is refused only when the budget's unleased
remainder plus this lease cannot cover it), and from a
background thread, all those due at one wake in one pipeline (the thread wakes when the first
lease falls due, and takes with it those due within a quarter of ``flush_seconds``:
:mod:`~costrouter.budget.lease_state`): ``flush_seconds`` after a lease's last message while
settled spend waits, a third of the TTL before the lease expires, when its spare
room runs low, to give back a lease idle for ``idle_seconds``, and to *close* a lease
that served one call (charge and give back in one message: a session of one call costs
one message on its path and one in the background). A session that calls again within
``idle_seconds`` of such a close is a session of many calls: its new lease waits for
``idle_seconds`` like a shared one, so its next calls find it (no round trip each).

Each message has a sequence number; the script applies it
once (a retry after a timeout is answered, not applied again), and journaled settles
carry the number of the message that charges them, so the replay of a dead process's
journal charges only what its messages did not.

Leased spend waits in memory between messages, so it is safe only while the journal keeps
it. When the journal refuses an entry (a full disk, a file-size quota, or full), the call
that met it is still settled (in memory, carried by the next message: never an error to
a caller the provider billed), and the store *degrades* for the rest of its life: the
waiting spend goes to Redis at once, every lease is given back as its calls end, and
every later reserve and settle goes to Redis per call (:attr:`LeasedStore.fault` says
why; the call's span and ``costrouter budget status`` show it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
import time
import uuid
from asyncio.events import _get_running_loop as asyncio_running_loop  # None outside a loop, unlike get_running_loop
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, TypeVar, cast

from costrouter import forks
from costrouter.budget.journal import PendingSettle, SettleJournal, journal_trouble
from costrouter.budget.lease_message import LeaseMessage, LeaseReply, applied_seq, parse_reply
from costrouter.budget.lease_state import (
    CLOCK_MARGIN_SECONDS,
    Lease,
    due_at_remembered,
    due_reason,
    lingers,
    quiet_due,
    sleep_seconds,
    wake_slack,
)
from costrouter.budget.redis import RedisBudgetStore, timed_out
from costrouter.budget.store import (
    BudgetStatus,
    BudgetStore,
    EpochState,
    ReserveOutcome,
    SettleOutcome,
    saturating_add,
)
from costrouter.budget.top_scan import window_key
from costrouter.config.budget_ref import BudgetRef
from costrouter.errors import BudgetStoreError
from costrouter.pricing.ratio_rule import LearnedRatio, RatioRule

logger = logging.getLogger("costrouter.budget")

_WORKERS: Final = 8
BATCH_SIZE: Final = 256
"""Lease messages per pipeline of the background thread; more due at once go in several."""
_FORGOTTEN: Final = 10_000
_CLOSED_SESSIONS: Final = 10_000
"""The most closed session leases remembered (:meth:`LeasedStore._lease_of`); then the oldest go."""
_GIVING_BACK: Final = frozenset({"give back", "close"})
OUTAGE_REMINDER_SECONDS: Final = 60.0
"""While lease messages keep failing, the warning repeats at most this often (the flush retries every
flush_seconds: a down store must not write a warning twice a second)."""

AlertSink = Callable[[BudgetRef, float, int, str], None]


def _resolve(waiter: asyncio.Future[bool], released: bool) -> None:
    """End a wait for a lease's ``io``: ``True`` when it was released, ``False`` when the wait timed out."""
    if not waiter.done():
        waiter.set_result(released)


T = TypeVar("T")
_Exchange = Generator[LeaseMessage, LeaseReply, T]
"""Lease work that yields the messages it sends and is sent their replies (run by ``_drive`` or ``_adrive``)."""


@dataclass
class _Outage:
    """Lease messages failing since ``since`` (monotonic); the log says so once, then once a minute."""

    since: float
    last_warning: float
    failures: int


class LeasedStore(BudgetStore):
    """A Redis store whose reserves and settles are served from per-process leases."""

    def __init__(self, inner: RedisBudgetStore) -> None:
        """Wrap ``inner``; its ``config.lease`` sizes the leases. Nothing is sent yet."""
        self.inner = inner
        self.config = inner.config
        self.url = inner.url
        self.settings = inner.config.lease
        self.journal: SettleJournal | None = None
        self.alert_sink: AlertSink | None = None
        self.messages = 0
        """Lease messages sent (for tests and benchmarks)."""
        self.batches = 0
        """Pipelines of background messages sent (for tests and benchmarks)."""
        self.waits = 0
        """Messages a call waited for (its reserve did not fit a lease), for tests and benchmarks."""
        self.resends = 0
        """Lease messages a call sent again after a timeout (:meth:`_answer`), for tests."""
        self.stalls = 0
        """Calls that waited for another message of their lease, then took from it (for benchmarks)."""
        config = inner.config
        # A message holding a lease's io: its earlier unanswered one, then itself, each sent again once after
        # a timeout (a new connection: the timed-out one is dropped). A full pool's wait aside: a call that
        # stops waiting reserves per call, through that pool.
        self._io_wait = 2 * config.connect_timeout_seconds + 4 * config.timeout_seconds + 1.0
        self._io_warned = False
        self._slack = wake_slack(self.settings)
        self._begin_process()
        forks.renew_in_child(self)

    def _begin_process(self) -> None:
        """The state that belongs to this process: its lease owner, leases, calls, lock, threads."""
        self.owner = uuid.uuid4().hex[:12]
        # Journal entry ids: 96 random bits once, then a counter. os.urandom per settle released the
        # GIL on every call, a hand-over to any thread waiting for it (LiteLLM's, under load).
        self._entry_prefix = os.urandom(12).hex() + "-"
        self._entry_numbers = itertools.count()
        self._leases: dict[BudgetRef, Lease] = {}
        self._seq = 0
        self._calls: dict[tuple[str, BudgetRef], int] = {}
        self._forgotten: dict[tuple[str, BudgetRef], None] = {}
        """Calls settled or released before their reserve's reply came (oldest first, at most ``_FORGOTTEN``)."""
        self._alone: set[tuple[str, BudgetRef]] = set()
        """Calls reserved per call because their lease stayed busy (:meth:`_reserve_alone`); settled per call."""
        self._outlived: set[tuple[str, BudgetRef]] = set()
        """Calls held by a lease that :meth:`drain` gave back before they ended: settled per call."""
        self._closed: dict[BudgetRef, float] = {}
        """When each session lease closed after one call (monotonic; oldest first, at most ``_CLOSED_SESSIONS``)."""
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="costrouter-lease")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage: _Outage | None = None
        self.fault: str | None = None
        """Why the leases fell back to per-call budgets (the journal refused a leased settle), else ``None``."""

    def renew_after_fork(self) -> None:
        """In a forked child: a lease owner of its own and no leases; the parent's leases stay the parent's.

        Under the parent's owner the child's messages would read as replays of the parent's (each
        applied once by sequence number) and their spend would be lost; spending from the parent's
        leases in memory would spend their room twice.
        """
        self._begin_process()
        if self.journal is not None:
            self.journal.set_own_lease(self.owner)
            if self.journal.fault is not None:  # no thread started here: the child's first call does that
                self.fault = f"the settle journal {self.journal.fault}"
                logger.error("costrouter: %s: budget leases fall back to per-call reserves and settles", self.fault)

    def _degrade(self, reason: str) -> None:
        """Fall back to per-call budgets for good: the journal cannot keep what leases hold in memory."""
        if self.fault is None:
            self.fault = reason
            logger.error(
                "costrouter: the settle journal %s: budget leases fall back to per-call reserves and settles "
                "(each a Redis round trip) until this router restarts; leased spend goes to Redis now",
                reason,
            )
        self._start()
        self._wake.set()

    # ---- reserve ------------------------------------------------------------------------
    def _fast(self, budget: BudgetRef, call_id: str, amount: int) -> ReserveOutcome | None:
        key = (call_id, budget)
        now = time.monotonic()
        with self._lock:
            lease = self._leases.get(budget)
            if lease is None:
                lease = self._new_lease(budget)
            if key in self._calls:
                return self._outcome(lease, granted=True)
            lease.last_used = now
            lease.estimate = max(lease.estimate, amount) if lease.estimate else amount
            if lease.take(amount, now):
                self._calls[key] = amount
                if lease.room() < lease.spare // 2 or lease.parked:
                    self._wake.set()  # a refill (a parked lease's spare room comes back off the call's path)
                return self._outcome(lease, granted=True)
        self._start()
        return None

    @staticmethod
    def _outcome(lease: Lease, *, granted: bool) -> ReserveOutcome:
        return ReserveOutcome(granted, lease.spent_seen + lease.settled, lease.held_seen, lease.window, replayed=False)

    def reserve(self, budget: BudgetRef, call_id: str, amount_units: int, *, enforce: bool) -> ReserveOutcome:
        """See :meth:`BudgetStore.reserve`: from the lease, else after a message for this call."""
        if self.fault is not None or self._stop.is_set():
            return self.inner.reserve(budget, call_id, amount_units, enforce=enforce)
        fast = self._fast(budget, call_id, amount_units)
        return fast if fast is not None else self._slow(budget, call_id, amount_units, enforce)

    async def areserve(self, budget: BudgetRef, call_id: str, amount_units: int, *, enforce: bool) -> ReserveOutcome:
        """See :meth:`BudgetStore.reserve`: a message this call needs goes out on the caller's event loop.

        When another message of the same lease is out (the calls of a new session arriving together),
        the call waits for it on its loop, woken when it ends, and takes from the lease then.
        """
        if self.fault is not None or self._stop.is_set():
            return await self.inner.areserve(budget, call_id, amount_units, enforce=enforce)
        fast = self._fast(budget, call_id, amount_units)
        if fast is not None:
            return fast
        # The async client serves the loop it was built in: from another (a router used across
        # several asyncio.run calls), the message goes through a worker thread and the sync client.
        on_loop = self.inner.async_client_fits_running_loop()
        while True:
            lease = self._lease_of(budget)
            if on_loop and lease.io.acquire(blocking=False):
                lease.io_loop = asyncio.get_running_loop()
                try:
                    if self._leases.get(budget) is lease:  # not given back and dropped meanwhile
                        return await self._adrive(lease, self._reserve_held(lease, call_id, amount_units, enforce))
                finally:
                    lease.io_loop = None
                    self._release_io(lease)
                continue
            if not on_loop or not await self._io_released(lease):
                future = self._pool.submit(self._slow, budget, call_id, amount_units, enforce)
                return await asyncio.wrap_future(future)
            fast = self._fast(budget, call_id, amount_units)
            if fast is not None:
                return fast

    async def _io_released(self, lease: Lease) -> bool:
        """Wait until ``lease.io`` is released (``False``: not within :attr:`_io_wait`)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        with self._lock:
            lease.waiters.append((loop, waiter))
        if not lease.io.locked():  # released before this waiter was listed: nobody will wake it
            return True
        # A timer of the loop's own, not asyncio.wait_for: under load many calls wait for one lease's
        # message, and wait_for's task and futures cost each of them about 30 Python calls more.
        timer = loop.call_later(self._io_wait, _resolve, waiter, False)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _release_io(self, lease: Lease) -> None:
        """Release ``lease.io`` and wake the coroutines waiting for it, on their own loops."""
        lease.io.release()
        if lease.waiters:
            with self._lock:
                waiters, lease.waiters = lease.waiters, []
                lease.woken = len(waiters)
            running = asyncio_running_loop()
            for loop, waiter in waiters:
                if loop is running:  # this thread's loop: no wake-up write, no hand-over of the GIL
                    loop.call_soon(_resolve, waiter, True)
                    continue
                with contextlib.suppress(RuntimeError):  # its loop was closed meanwhile
                    loop.call_soon_threadsafe(_resolve, waiter, True)

    def _lease_of(self, budget: BudgetRef) -> Lease:
        with self._lock:
            lease = self._leases.get(budget)
            return self._new_lease(budget) if lease is None else lease

    def _new_lease(self, budget: BudgetRef) -> Lease:
        """A lease on ``budget``, not yet opened (the lock held); returning when its session's closed lately.

        Lately: within ``idle_seconds`` + ``park_seconds``, as long as a lease of many calls waits for its
        next call (a chat whose second turn came after a pause parks from then on).
        """
        closed_at = self._closed.pop(budget, None) if self._closed else None
        settings = self.settings
        returning = (
            closed_at is not None and time.monotonic() - closed_at < settings.idle_seconds + settings.park_seconds
        )
        lease = self._leases[budget] = Lease(budget, returning=returning)
        return lease

    def _slow(self, budget: BudgetRef, call_id: str, amount: int, enforce: bool) -> ReserveOutcome:
        while True:
            lease = self._lease_of(budget)
            if not self._take_io(lease):
                return self._reserve_alone(budget, call_id, amount, enforce)
            try:
                if self._leases.get(budget) is lease:
                    return self._drive(lease, self._reserve_held(lease, call_id, amount, enforce))
            finally:
                self._release_io(lease)

    def _take_io(self, lease: Lease) -> bool:
        """Take ``lease.io`` from sync code, waiting at most :attr:`_io_wait`.

        Not at all when a coroutine of the event loop this thread runs holds it (a sync call or a
        shutdown made inside a coroutine): that coroutine cannot go on while this thread waits.
        """
        if lease.io.acquire(blocking=False):
            return True
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and lease.io_loop is loop:
            return False
        return lease.io.acquire(timeout=self._io_wait)

    @property
    def _busy_why(self) -> str:
        return f"by a coroutine of this thread's own event loop, or for over {self._io_wait:g}s"

    def _reserve_alone(self, budget: BudgetRef, call_id: str, amount: int, enforce: bool) -> ReserveOutcome:
        """Reserve per call, outside the lease, when a sync call could not take its ``io`` (:meth:`_take_io`)."""
        if not self._io_warned:
            self._io_warned = True
            logger.warning(
                "costrouter: a sync call found budget %s's lease sending (%s): it reserves per call, a Redis "
                "round trip (said once)",
                budget.name,
                self._busy_why,
            )
        outcome = self.inner.reserve(budget, call_id, amount, enforce=enforce)
        if outcome.granted or not enforce:
            with self._lock:
                self._alone.add((call_id, budget))
        return outcome

    def _reserve_held(self, lease: Lease, call_id: str, amount: int, enforce: bool) -> _Exchange[ReserveOutcome]:
        """A reserve that did not fit the lease (its ``io`` held): from the lease if it fits now, else a message."""
        key = (call_id, lease.budget)
        with self._lock:
            if key in self._calls:
                return self._outcome(lease, granted=True)
            if lease.take(amount, time.monotonic()):
                self.stalls += 1
                self._calls[key] = amount
                return self._outcome(lease, granted=True)
        self.waits += 1
        reply = yield from self._exchange(lease, need=amount, enforce=enforce)
        with self._lock:
            if reply.granted or not enforce:
                if key in self._forgotten:
                    del self._forgotten[key]
                else:
                    lease.inflight += amount
                    lease.served += 1
                    self._calls[key] = amount
            held_before = reply.held - (amount if reply.granted or not enforce else 0)
            return ReserveOutcome(reply.granted, reply.spent, held_before, reply.window, replayed=False)

    # ---- messages ------------------------------------------------------------------------
    def _exchange(
        self, lease: Lease, *, need: int = 0, enforce: bool = True, give_back: bool = False
    ) -> _Exchange[LeaseReply]:
        """One message of ``lease`` (its ``io`` held), an unanswered one first: yields each, is sent its reply."""
        if lease.unacked is not None:
            message, entries = lease.unacked
            sent_at = time.monotonic()
            self._apply(lease, message, entries, (yield from self._answer(message)), sent_at)
        message, entries = self._prepare(lease, need=need, enforce=enforce, give_back=give_back)
        sent_at = time.monotonic()
        try:
            reply = yield from self._answer(message)
        finally:
            with self._lock:
                lease.sending = False
                lease.pool = 0
        self._apply(lease, message, entries, reply, sent_at)
        return reply

    def _answer(self, message: LeaseMessage) -> _Exchange[LeaseReply]:
        """The reply to ``message``, sent once more when the first send timed out.

        A timeout says nothing of whether the script ran (a reply can be late because the store,
        the network or this process's event loop was slow); the resend is answered, not applied
        again, with the grant the message had (``lua/lease.lua``). A loaded machine then costs the
        call a wait, not a refusal.
        """
        try:
            return (yield message)
        except BudgetStoreError as exc:
            if not timed_out(exc):
                raise
            logger.debug("costrouter: a lease message timed out (%s); sending it again", exc)
        self.resends += 1
        return (yield message)

    def _drive(self, lease: Lease, exchange: _Exchange[T]) -> T:
        """Run ``exchange``, posting its messages with the sync client."""
        try:
            message = next(exchange)
            while True:
                try:
                    reply = self._post(lease, message)
                except BaseException as exc:
                    message = exchange.throw(exc)
                else:
                    message = exchange.send(reply)
        except StopIteration as done:
            return cast("T", done.value)

    async def _adrive(self, lease: Lease, exchange: _Exchange[T]) -> T:
        """Run ``exchange``, posting its messages with the async client on the running loop."""
        try:
            message = next(exchange)
            while True:
                try:
                    reply = await self._apost(lease, message)
                except BaseException as exc:
                    message = exchange.throw(exc)
                else:
                    message = exchange.send(reply)
        except StopIteration as done:
            return cast("T", done.value)

    def _prepare(
        self, lease: Lease, *, need: int, enforce: bool, give_back: bool, park: bool = False
    ) -> tuple[LeaseMessage, list[str]]:
        """The next message of ``lease``: from here until its reply calls take only from its pool.

        ``park``: an idle lease keeps one estimate held (``need``), nothing spare, for ``park_seconds``.
        """
        with self._lock:
            if park:
                need = max(lease.estimate, 1)
            # Kept aside for the calls that come while the message is out: held by it as if in flight.
            still = not give_back and not park and lease.alive(time.monotonic())
            pool = min(max(0, lease.room()), lease.spare // 2) if still else 0
            linger = still and not need and not lease.inflight and lingers(lease, self.settings)
            lease.sending = True
            lease.pool = pool
            demand = lease.served - lease.served_at_message + max(len(lease.waiters), lease.woken)
            lease.served_at_message, lease.woken = lease.served, 0
            # One counter for every lease of the process: a lease dropped and opened again never reuses a number.
            self._seq += 1
            lease.seq = self._seq
            message = LeaseMessage(
                owner=self.owner,
                window=lease.window,
                seq=lease.seq,
                charge=lease.settled,
                inflight=lease.inflight + pool,
                need=need,
                enforce=enforce,
                estimate=max(lease.estimate, need, 1),
                give_back=give_back,
                demand=demand,
                park=park,
                linger=linger,
            )
            entries, lease.entries = lease.entries, []
            lease.settled = 0
            lease.hold = lease.inflight + pool
            lease.unacked = (message, entries)
        return message, entries

    def _send_batch(self, due: list[tuple[Lease, str]]) -> tuple[int, list[BudgetStoreError]]:
        """Send the messages of several leases (each ``io`` held by the caller) in one pipeline.

        A lease with an unanswered message resends that one; a message that fails stays
        unanswered and goes again with the lease's next. Returns how many were answered, and the
        failures of the others.
        """
        sending: list[tuple[Lease, str, LeaseMessage, list[str]]] = []
        for lease, reason in due:
            if lease.unacked is not None:
                sending.append((lease, reason, *lease.unacked))
            else:
                message, entries = self._prepare(
                    lease, need=0, enforce=True, give_back=reason in _GIVING_BACK, park=reason == "park"
                )
                sending.append((lease, reason, message, entries))
        sent_at = time.monotonic()
        try:
            replies = self._post_many([(lease, message) for lease, _, message, _ in sending])
        finally:
            with self._lock:
                for lease, _, _, _ in sending:
                    lease.sending = False
                    lease.pool = 0
        answered = 0
        failed: list[BudgetStoreError] = []
        carried: list[str] = []
        for (lease, reason, message, entries), reply in zip(sending, replies, strict=True):
            if isinstance(reply, BudgetStoreError):
                logger.debug("costrouter: could not %s the lease on budget %s: %s", reason, lease.budget.name, reply)
                failed.append(reply)
                continue
            self._apply(lease, message, entries, reply, sent_at, mark_done=False)
            carried += entries
            answered += 1
        if self.journal is not None and carried:
            # One write for the pipeline: each write lets go of the GIL, a hand-over to a busy loop.
            self.journal.mark_all_done(carried)
        return answered, failed

    def _post_many(self, messages: list[tuple[Lease, LeaseMessage]]) -> list[LeaseReply | BudgetStoreError]:
        calls = []
        for lease, message in messages:
            base, keys = self._script_keys(lease)
            calls.append((keys, message.args(base, lease.budget, self.config)))
        self.messages += len(messages)
        self.batches += 1
        raw = self.inner.run_script_batch("lease", "lease", calls) if len(calls) > 1 else self._run_alone(*calls[0])
        replies: list[LeaseReply | BudgetStoreError] = []
        for (lease, message), answer in zip(messages, raw, strict=True):
            if isinstance(answer, BudgetStoreError):
                replies.append(answer)
                continue
            reply = parse_reply(lease.budget, answer)
            if not reply.replayed:
                self.inner.add_to_index(lease.budget, message.window or reply.window, message.charge)
            replies.append(reply)
        return replies

    def _run_alone(self, keys: list[str], args: list[str]) -> list[Any]:
        """A batch of one message as a plain EVALSHA: its reply or its store error.

        A pipeline of one costs the client more, and redis-py asks the server whether the script
        is loaded before each pipeline (a round trip of its own).
        """
        try:
            return [self.inner.run_script("lease", "lease", keys, args)]
        except BudgetStoreError as exc:
            return [exc]

    def _script_keys(self, lease: Lease) -> tuple[str, list[str]]:
        """The hash tag and script keys of ``lease``'s budget instance (computed once a lease)."""
        if lease.keys is None:
            lease.keys = self.inner.script_keys(lease.budget)
        return lease.keys

    def _post(self, lease: Lease, message: LeaseMessage) -> LeaseReply:
        keys, args = self._message_call(lease, message)
        reply = parse_reply(lease.budget, self.inner.run_script("lease", "lease", keys, args))
        if not reply.replayed:
            self.inner.add_to_index(lease.budget, message.window or reply.window, message.charge)
        return reply

    async def _apost(self, lease: Lease, message: LeaseMessage) -> LeaseReply:
        keys, args = self._message_call(lease, message)
        reply = parse_reply(lease.budget, await self.inner.arun_script("lease", "lease", keys, args))
        if not reply.replayed and self.inner.indexes_from_client(message.charge):
            await self.inner.aadd_to_index(lease.budget, message.window or reply.window, message.charge)
        return reply

    def _message_call(self, lease: Lease, message: LeaseMessage) -> tuple[list[str], list[str]]:
        base, keys = self._script_keys(lease)
        self.messages += 1
        return keys, message.args(base, lease.budget, self.config)

    def _apply(
        self,
        lease: Lease,
        message: LeaseMessage,
        entries: list[str],
        reply: LeaseReply,
        sent_at: float,
        *,
        mark_done: bool = True,
    ) -> None:
        with self._lock:
            lease.unacked = None
            lease.last_message = sent_at
            # The hold covers the calls in flight at sending (none took from the lease since).
            lease.hold = reply.hold
            lease.window = reply.window
            lease.window_end = float(reply.window_end)
            if not reply.replayed:
                lease.spare = max(0, reply.hold - message.inflight - message.need)
                lease.valid_until = sent_at + message.ttl_seconds(self.settings) - CLOCK_MARGIN_SECONDS
            lease.parked = message.park
            lease.lingering = message.linger
            lease.spent_seen, lease.held_seen = reply.spent, reply.held
        if mark_done and self.journal is not None and entries:
            self.journal.mark_all_done(entries)
        if self.alert_sink is not None:
            for threshold in reply.alerts:
                self.alert_sink(lease.budget, threshold, reply.spent, reply.window)

    # ---- settle -------------------------------------------------------------------------
    def _local_settle(self, budget: BudgetRef, call_id: str, amount: int) -> SettleOutcome | None:
        key = (call_id, budget)
        refused: str | None = None
        with self._lock:
            held = self._calls.pop(key, None)
            if held is None:
                if key in self._alone:
                    self._alone.discard(key)
                else:
                    # A reserve cancelled on the loop never replies: the oldest entries go, not the newest.
                    if len(self._forgotten) >= _FORGOTTEN:
                        del self._forgotten[next(iter(self._forgotten))]
                    self._forgotten[key] = None
                return None
            lease = self._leases[budget]
            lease.inflight -= held
            if self._stop.is_set():
                # Drained (shut down): no thread will carry this lease's spend again, and the journal
                # is closing. The call settles in Redis itself (_ended), and the lease's last
                # such call gives back the hold the lease kept for them.
                self._outlived.add(key)
                return None
            if amount > 0:
                lease.settled = saturating_add(lease.settled, amount)
                entry = PendingSettle(
                    f"{self._entry_prefix}{next(self._entry_numbers):x}",
                    call_id,
                    budget,
                    amount,
                    "settle",
                    time.time(),
                    self.owner,
                    lease.seq + 1,
                    lease.window,
                )
                lease.entries.append(entry.id)
                if self.journal is not None and not self.journal.append(entry, sync=False):
                    refused = journal_trouble(self.journal)
            state: Literal["settled", "released"] = "settled" if amount > 0 else "released"
            outcome = SettleOutcome(
                state,
                amount,
                lease.spent_seen + lease.settled,
                lease.held_seen,
                lease.window,
                (),
                replayed=False,
                journal_fault=refused,
            )
        if refused is not None:
            self._degrade(refused)
        return outcome

    def settle(self, budget: BudgetRef, call_id: str, amount_units: int) -> SettleOutcome:
        """See :meth:`BudgetStore.settle`: in memory for a leased call, else in Redis."""
        local = self._local_settle(budget, call_id, amount_units)
        return (
            local
            if local is not None
            else self._ended(budget, call_id, self.inner.settle(budget, call_id, amount_units))
        )

    def release(self, budget: BudgetRef, call_id: str) -> SettleOutcome:
        """See :meth:`BudgetStore.release`."""
        local = self._local_settle(budget, call_id, 0)
        return local if local is not None else self._ended(budget, call_id, self.inner.release(budget, call_id))

    async def asettle(self, budget: BudgetRef, call_id: str, amount_units: int) -> SettleOutcome:
        """See :meth:`BudgetStore.settle`."""
        local = self._local_settle(budget, call_id, amount_units)
        if local is not None:
            return local
        return await self._aended(budget, call_id, await self.inner.asettle(budget, call_id, amount_units))

    async def arelease(self, budget: BudgetRef, call_id: str) -> SettleOutcome:
        """See :meth:`BudgetStore.release`."""
        local = self._local_settle(budget, call_id, 0)
        if local is not None:
            return local
        return await self._aended(budget, call_id, await self.inner.arelease(budget, call_id))

    def _ended(self, budget: BudgetRef, call_id: str, outcome: SettleOutcome) -> SettleOutcome:
        """A per-call settle's outcome (:meth:`_outlived_ends`), its lease given back when it was the last."""
        outcome, lease = self._outlived_ends(budget, call_id, outcome)
        if lease is not None:
            self._give_back([lease])
        return outcome

    async def _aended(self, budget: BudgetRef, call_id: str, outcome: SettleOutcome) -> SettleOutcome:
        """:meth:`_ended`, the give-back (a blocking message) in a worker thread."""
        outcome, lease = self._outlived_ends(budget, call_id, outcome)
        if lease is not None:
            await asyncio.to_thread(self._give_back, [lease])
        return outcome

    def _outlived_ends(
        self, budget: BudgetRef, call_id: str, outcome: SettleOutcome
    ) -> tuple[SettleOutcome, Lease | None]:
        """A per-call settle's outcome as the call's lease would have answered it, and the lease to give back.

        A call that outlived its lease (:meth:`drain` gave it back while the call ran) is not unheld:
        the lease held it. Once the last such call of a lease has ended, the lease comes back with
        the outcome, to return the hold it kept for them.
        """
        key = (call_id, budget)
        if key not in self._outlived:
            return outcome, None
        with self._lock:
            self._outlived.discard(key)
            lease = self._leases.get(budget)
            last = lease is not None and lease.inflight == 0 and not any(k[1] == budget for k in self._outlived)
        return (replace(outcome, unheld=False) if outcome.unheld else outcome), (lease if last else None)

    def renew(self, budget: BudgetRef, call_id: str) -> bool:
        """See :meth:`BudgetStore.renew`: a leased call lives as long as its lease, renewed in the background."""
        with self._lock:
            if (call_id, budget) in self._calls:
                return True
        return self.inner.renew(budget, call_id)

    async def arenew(self, budget: BudgetRef, call_id: str) -> bool:
        """See :meth:`BudgetStore.renew`."""
        with self._lock:
            if (call_id, budget) in self._calls:
                return True
        return await self.inner.arenew(budget, call_id)

    def lease_hold(self, budget: BudgetRef) -> int:
        """What this process's lease on ``budget`` holds in Redis as last answered (0: no lease).

        A parked lease holds one estimate for ``park_seconds``, a lingering one its room: ``budget status``
        counts either in ``held``.
        """
        with self._lock:
            lease = self._leases.get(budget)
            return 0 if lease is None else lease.hold

    def lease_applied(self, budget: BudgetRef, window: str, owner: str) -> int:
        """The last message seq the store applied for ``owner``'s lease in ``window`` (0: none)."""
        base, _ = self.inner.script_keys(budget)
        return applied_seq(self.inner.hget(window_key(base, window), f"l:{owner}"))

    # ---- the background ------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="costrouter-lease-flush", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        sleep = self.settings.flush_seconds
        while not self._stop.is_set():
            self._wake.wait(sleep)
            self._wake.clear()
            if self._stop.is_set():
                return
            sleep = self.settings.flush_seconds
            try:
                sleep = self.tend()[1]
            except Exception:  # a bug must not end the flushes for good
                logger.exception("costrouter: tending the budget leases failed; retrying")

    def tend(self) -> tuple[int, float]:
        """Send the messages that are due (flush, renew, refill, give back), in pipelines.

        Returns how many went, and how long the thread may sleep then
        (:func:`~costrouter.budget.lease_state.sleep_seconds`). Each lease is looked at once, under
        the lock as a call takes it (calls wait at most one lease's look): why it is due now, else
        when the clock makes it due. The leases sent are looked at again once their messages ended.
        """
        now, wall = time.monotonic(), time.time()
        with self._lock:
            leases = list(self._leases.values())
        settings, slack = self.settings, self._slack
        degraded, ahead = self.fault is not None, now + slack
        due: list[tuple[Lease, str]] = []
        due_times: list[float] = []
        for lease in leases:
            with self._lock:
                quiet_until = quiet_due(lease, ahead, degraded=degraded)
                if quiet_until is not None:
                    due_times.append(quiet_until)
                    continue
                reason = due_reason(lease, settings, now, wall, degraded=degraded, slack=slack)
                if reason is None:
                    due_times.append(due_at_remembered(lease, settings, now, wall))
            if reason is not None and lease.io.acquire(blocking=False):
                due.append((lease, reason))
        sent = 0
        for answered, failed in self._send_due(due, forget_returned=True):
            sent += answered
            if failed:
                self._store_failed(len(failed), failed[0])
            else:
                self._store_answered()
        now, wall = time.monotonic(), time.time()
        for lease, _ in due:
            with self._lock:
                due_times.append(due_at_remembered(lease, settings, now, wall))
        return sent, sleep_seconds(due_times, settings, now)

    def _send_due(
        self, due: list[tuple[Lease, str]], *, forget_returned: bool = False
    ) -> list[tuple[int, list[BudgetStoreError]]]:
        """Send the messages of ``due`` (each lease's ``io`` held by the caller) in pipelines of ``BATCH_SIZE``.

        Releases every ``io``; returns each pipeline's answered count and failures (a pipeline that
        failed whole fails each of its messages). ``forget_returned`` drops the leases given back
        while their ``io`` is still held, so a waiting call then sees them gone.
        """
        results: list[tuple[int, list[BudgetStoreError]]] = []
        for start in range(0, len(due), BATCH_SIZE):
            batch = due[start : start + BATCH_SIZE]
            try:
                results.append(self._send_batch(batch))
            except BudgetStoreError as exc:
                results.append((0, [exc] * len(batch)))
            finally:
                if forget_returned:
                    self._forget_returned(batch)
                for lease, _ in batch:
                    self._release_io(lease)
        return results

    def _store_failed(self, messages: int, exc: BudgetStoreError) -> None:
        now = time.monotonic()
        outage = self._outage
        if outage is None:
            self._outage = _Outage(since=now, last_warning=now, failures=messages)
            logger.warning(
                "costrouter: could not send %d budget lease messages: %s; retrying every %gs",
                messages,
                exc,
                self.settings.flush_seconds,
            )
            return
        outage.failures += messages
        if now - outage.last_warning >= OUTAGE_REMINDER_SECONDS:
            outage.last_warning = now
            logger.warning(
                "costrouter: budget lease messages still failing after %.0fs (%d failed messages): %s",
                now - outage.since,
                outage.failures,
                exc,
            )

    def _store_answered(self) -> None:
        outage, self._outage = self._outage, None
        if outage is not None:
            logger.warning(
                "costrouter: budget lease messages go through again after %.1fs", time.monotonic() - outage.since
            )

    def _forget_returned(self, batch: list[tuple[Lease, str]]) -> None:
        """Drop the leases that hold nothing after their message and were not used since.

        The next call on such a budget instance opens a new lease. Given back, or a park refused (no
        room left for one estimate), or any message near the limit that left nothing to hold (a
        session that spent its budget): such a lease was kept before, for the life of the process,
        and looked at every wake.
        """
        with self._lock:
            for lease, reason in batch:
                returned = lease.unacked is None and lease.hold == 0
                if returned and not lease.inflight and not lease.settled and self._leases.get(lease.budget) is lease:
                    del self._leases[lease.budget]
                    if reason == "close":
                        if len(self._closed) >= _CLOSED_SESSIONS:
                            del self._closed[next(iter(self._closed))]
                        self._closed[lease.budget] = time.monotonic()

    def flush(self) -> int:
        """Carry every lease's settled spend to Redis now (in pipelines), keeping the leases; returns how many went.

        For a reader that must see ``spent`` without the lag (tests, a report at a cut-off). Raises
        :class:`~costrouter.errors.BudgetStoreError` when a message could not go (after trying every
        lease): its spend stays with its lease and goes with the next message.
        """
        with self._lock:
            leases = list(self._leases.values())
        due: list[tuple[Lease, str]] = []
        busy: list[BudgetStoreError] = []
        for lease in leases:
            if not self._take_io(lease):
                stuck = TimeoutError(f"budget {lease.budget.name}'s lease was sending ({self._busy_why})")
                busy.append(BudgetStoreError("flush", stuck))
            elif lease.settled or lease.unacked is not None:
                due.append((lease, "flush"))
            else:
                self._release_io(lease)
        results = self._send_due(due)
        failures = [exc for _, failed in results for exc in failed] + busy
        if failures:
            raise failures[0]
        return sum(answered for answered, _ in results)

    def drain(self) -> None:
        """Carry every settled amount to Redis and give back every lease (at shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            leases = list(self._leases.values())
        # Twice: a lease whose last message went unanswered resends it first, then gives back.
        for _ in range(2):
            self._give_back(leases)

    def _give_back(self, leases: list[Lease]) -> None:
        due: list[tuple[Lease, str]] = []
        for lease in leases:
            if not self._take_io(lease):
                logger.warning(
                    "costrouter: budget %s's lease was sending (%s): not given back (its settles stay journaled)",
                    lease.budget.name,
                    self._busy_why,
                )
            elif lease.hold == 0 and not lease.settled and lease.unacked is None:
                self._release_io(lease)
            else:
                due.append((lease, "give back"))
        for _, failed in self._send_due(due):
            if failed:
                logger.warning(
                    "costrouter: could not give back %d budget leases (their settles stay journaled): %s",
                    len(failed),
                    failed[0],
                )

    # ---- the rest goes to Redis -------------------------------------------------------------
    def status(self, budget: BudgetRef) -> BudgetStatus:
        """See :meth:`BudgetStore.status` (leases count as held; unsent settles are not spent yet)."""
        return self.inner.status(budget)

    async def astatus(self, budget: BudgetRef) -> BudgetStatus:
        """See :meth:`BudgetStore.status`."""
        return await self.inner.astatus(budget)

    def reset(self, budget: BudgetRef) -> None:
        """See :meth:`BudgetStore.reset`; this process's lease on ``budget`` starts over."""
        self.inner.reset(budget)
        with self._lock:
            lease = self._leases.get(budget)
            if lease is not None:
                lease.valid_until = 0.0

    async def areset(self, budget: BudgetRef) -> None:
        """See :meth:`BudgetStore.reset`."""
        await self.inner.areset(budget)
        with self._lock:
            lease = self._leases.get(budget)
            if lease is not None:
                lease.valid_until = 0.0

    def top(self, budget: BudgetRef, n: int) -> list[tuple[str, int]]:
        """See :meth:`BudgetStore.top`."""
        return self.inner.top(budget, n)

    async def atop(self, budget: BudgetRef, n: int) -> list[tuple[str, int]]:
        """See :meth:`BudgetStore.top`."""
        return await self.inner.atop(budget, n)

    def token_ratios(self) -> dict[str, LearnedRatio]:
        """See :meth:`BudgetStore.token_ratios`."""
        return self.inner.token_ratios()

    async def atoken_ratios(self) -> dict[str, LearnedRatio]:
        """See :meth:`BudgetStore.token_ratios`."""
        return await self.inner.atoken_ratios()

    def observe_token_ratio(self, deployment_id: str, ratio: float, rule: RatioRule) -> float:
        """See :meth:`BudgetStore.observe_token_ratio`."""
        return self.inner.observe_token_ratio(deployment_id, ratio, rule)

    async def aobserve_token_ratio(self, deployment_id: str, ratio: float, rule: RatioRule) -> float:
        """See :meth:`BudgetStore.observe_token_ratio`."""
        return await self.inner.aobserve_token_ratio(deployment_id, ratio, rule)

    def reset_token_ratios(self, deployment_id: str | None = None) -> list[str]:
        """See :meth:`BudgetStore.reset_token_ratios`."""
        return self.inner.reset_token_ratios(deployment_id)

    def epoch(self, candidate: str, known: str | None) -> EpochState:
        """See :meth:`BudgetStore.epoch`."""
        return self.inner.epoch(candidate, known)

    async def aepoch(self, candidate: str, known: str | None) -> EpochState:
        """See :meth:`BudgetStore.epoch`."""
        return await self.inner.aepoch(candidate, known)

    def accept_epoch(self) -> str:
        """See :meth:`RedisBudgetStore.accept_epoch`."""
        return self.inner.accept_epoch()

    def window_of(self, budget: BudgetRef, at: float) -> tuple[str, int]:
        """See :meth:`RedisBudgetStore.window_of`."""
        return self.inner.window_of(budget, at)

    @property
    def connections(self) -> int:
        """See :attr:`BudgetStore.connections`."""
        return self.inner.connections

    @property
    def live_leases(self) -> int:
        """How many budget instances this process holds a lease on (opened, not yet given back)."""
        with self._lock:
            return len(self._leases)

    def __repr__(self) -> str:
        return f"LeasedStore({self.inner!r})"

    def close(self) -> None:
        """Give back the leases, then close the Redis store."""
        self.drain()
        self._pool.shutdown(wait=True)
        self.inner.close()

    async def aclose(self) -> None:
        """Give back the leases (from a worker thread), then close the Redis store."""
        await asyncio.to_thread(self.drain)
        self._pool.shutdown(wait=False)
        await self.inner.aclose()
