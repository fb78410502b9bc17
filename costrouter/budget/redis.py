"""Budget counters in Redis, shared by every process and machine that uses the same server.

Each operation is one Lua script (``lua/*.lua``, one a file, with the functions of
``lua/lib.lua`` it uses put in front), run with EVALSHA and reloaded on NOSCRIPT by redis-py's registered scripts;
the sync and async clients run the same scripts. Window ids and expiries come from the
server's clock (``TIME``), never the caller's.

Key layout of one budget instance (all under one Redis Cluster hash tag; ``v2`` is
:data:`~costrouter.config.budget_ref.KEY_LAYOUT_VERSION`)::

    {prefix:v2:name:scope:id}:c            hash  call id -> record (state, hold, window, outcome,
                                                 due), and the hold and retention queues that
                                                 say which record is due next (``lua/lib.lua``)
    {prefix:v2:name:scope:id}:w:<window>   hash  spent, held, holds, alert:<threshold>, leases

The records hash expires 1.5 × ``max(hold_ttl, settle_record_ttl)`` after its TTL was last
pushed (pushed again once half of that passed, so every record outlives its retention); a
window's hash expires ``hold_ttl`` after the window ends (a ``total`` window's never does).
The largest-spender index, ``{prefix:v2:top:name}:<window>`` (a zset of scope
id by spend), lives under another hash tag, so the client updates it after a settle; it
is a report, not a counter: a settle whose index update fails is logged, not failed.
Several budgets of one call are reserved by one script (``lua/reserve_all.lua``) on
standalone Redis; on a cluster their hash tags differ, so each has its own reserve script.
The learned prompt-token ratios are one hash, ``{prefix:v2:token-ratios}`` (deployment id ->
``ratio|observations|updated at``, server time), with no expiry.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import redis
import redis.asyncio

from costrouter import forks
from costrouter.budget import redis_clients, redis_durable, script_pipeline, top_scan
from costrouter.budget.layout import layout_problem, legacy_epoch_keys
from costrouter.budget.redis_batch import ScriptBatcher
from costrouter.budget.store import (
    BudgetStatus,
    BudgetStore,
    EpochState,
    ReserveOutcome,
    SettleOutcome,
    alert_label,
    alert_threshold_units,
    check_amount,
    check_ratio,
    epoch_keys,
    make_status,
    parse_ratio_record,
    token_ratio_key,
    top_key,
)
from costrouter.config.budget_ref import BudgetRef, budget_key
from costrouter.config.budgets import StoreConfig
from costrouter.config.redaction import mask_url
from costrouter.errors import BudgetStoreError
from costrouter.pricing.ratio_rule import LearnedRatio, RatioRule

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript, Script

logger = logging.getLogger(__name__)
T = TypeVar("T")

SCRIPT_NAMES: Final = (
    "reserve",
    "reserve_all",
    "settle",
    "status",
    "reset",
    "top",
    "window",
    "token_ratio",
    "token_ratios",
    "renew",
    "epoch",
    "accept",
    "lease",
)
"""The scripts under ``lua/``, each registered with every client."""


_LIB_FUNCTION = re.compile(r"local function (\w+)\(")
_LUA_WORD = re.compile(r"\w+")


def _lua_words(text: str) -> set[str]:
    """The identifiers of Lua ``text``, comments left out."""
    return set(_LUA_WORD.findall("\n".join(line.split("--", 1)[0] for line in text.splitlines())))


def _lib_functions(lib: str) -> list[tuple[str, str]]:
    """The top-level functions of ``lua/lib.lua`` in order: (name, text with the comment above it)."""
    functions: list[tuple[str, str]] = []
    comment: list[str] = []
    current: list[str] | None = None
    for line in lib.splitlines(keepends=True):
        if current is not None:
            current.append(line)
            if line.rstrip() == "end":
                functions[-1] = (functions[-1][0], "".join(current))
                current = None
            continue
        match = _LIB_FUNCTION.match(line)
        if match:
            current = [*comment, line]
            functions.append((match.group(1), ""))
            comment = []
        elif line.startswith("--"):
            comment.append(line)
        elif line.strip():
            message = f"lua/lib.lua holds only local functions at its top level, not: {line!r}"
            raise ValueError(message)
        else:
            comment = []
    return functions


DEFERRED: Final = "--@deferred\n"
"""A line of a script after which comes a part that runs only when the part before reaches its end."""


def _needed(functions: list[tuple[str, str]], code: str) -> set[str]:
    """The lib functions ``code`` calls, directly or through another."""
    uses = {fname: _lua_words(text) for fname, text in functions}
    needed: set[str] = set()
    called = _lua_words(code)
    todo = [fname for fname, _ in functions if fname in called]
    while todo:
        fname = todo.pop()
        if fname not in needed:
            needed.add(fname)
            todo += [other for other, _ in functions if other != fname and other in uses[fname]]
    return needed


@cache
def script_source(name: str) -> str:
    """The text of script ``name``: the functions of ``lua/lib.lua`` it uses, then ``lua/<name>.lua``.

    Each function a script defines is a closure that Redis builds on every call of it, so a
    script carries only the ones it calls, directly or through another (in ``lib.lua``'s order).
    A script with a :data:`DEFERRED` line runs what follows it as a function of its own, which
    defines the lib functions only that part uses: they are built only when it runs (a common
    path that returns before it builds none of them).
    """
    folder = files("costrouter.budget").joinpath("lua")
    body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    functions = _lib_functions(folder.joinpath("lib.lua").read_text(encoding="utf-8"))
    head, marker, deferred = body.partition(DEFERRED)
    needed = _needed(functions, head)
    kept = "".join(text + "\n" for fname, text in functions if fname in needed)
    if marker:
        later = _needed(functions, deferred) - needed
        inner = "".join(text + "\n" for fname, text in functions if fname in later)
        head += f"local function deferred()\n{inner}{deferred}end\nreturn deferred()\n"
    return f"-- costrouter budget script {name}: lua/lib.lua (the functions it uses), then lua/{name}.lua\n{kept}{head}"


def _raised_in_redis(exc: BaseException) -> bool:
    trace = exc.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    return trace is not None and str(trace.tb_frame.f_globals.get("__name__", "")).startswith("redis.")


@contextmanager
def wrap_errors(operation: str) -> Iterator[None]:
    """Turn any Redis or socket failure into a :class:`BudgetStoreError`."""
    try:
        yield
    except (redis.RedisError, OSError) as exc:
        raise BudgetStoreError(operation, exc) from exc
    except AttributeError as exc:
        # redis-py's async cluster client can send on a connection another task closed during a
        # failover (its writer is already None): a store failure, never the caller's to see raw.
        if not _raised_in_redis(exc):
            raise
        raise BudgetStoreError(operation, exc) from exc


def timed_out(error: BudgetStoreError) -> bool:
    """Whether ``error`` is a command that got no answer in time: it may have run, or not."""
    return isinstance(error.cause, redis.TimeoutError | TimeoutError)


def resent_once(send: Callable[[], T]) -> T:
    """``send()``, and once more when it timed out: for a script a replay answers, never applies twice.

    A reply later than ``timeout_seconds`` is most often the caller's own loop or machine reading it
    late; a reserve that fails on it refuses a call (``fail_closed``) the store would have granted.
    """
    try:
        return send()
    except BudgetStoreError as error:
        if not timed_out(error):
            raise
        logger.debug("costrouter: a budget script timed out (%s); sending it again", error)
    return send()


async def aresent_once(send: Callable[[], Awaitable[T]]) -> T:
    """The asyncio twin of :func:`resent_once`."""
    try:
        return await send()
    except BudgetStoreError as error:
        if not timed_out(error):
            raise
        logger.debug("costrouter: a budget script timed out (%s); sending it again", error)
    return await send()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _window_args(budget: BudgetRef) -> list[str]:
    return [budget.window.kind, str(budget.window.seconds)]


class _Call:
    """The keys and arguments of one script call: plain data, shared by sync and async."""

    def __init__(self, config: StoreConfig, budget: BudgetRef) -> None:
        self.base = budget_key(config.key_prefix, budget)
        self.keys = [f"{self.base}:c"]
        self.config = config
        self.budget = budget

    def settle_keys(self) -> list[str]:
        """The settle script's keys: on standalone Redis the script also updates the top index."""
        if self.config.top_index and not self.config.cluster:
            return [*self.keys, top_key(self.config.key_prefix, self.budget)]
        return self.keys

    def reserve(self, call_id: str, amount: int, *, enforce: bool) -> list[str]:
        return [
            self.base,
            call_id,
            str(check_amount(amount)),
            str(self.budget.limit_units),
            "1" if enforce else "0",
            *_window_args(self.budget),
            str(self.config.hold_ttl_seconds),
            str(self.config.record_ttl_seconds),
        ]

    def settle(self, call_id: str, amount: int, *, release: bool) -> list[str]:
        args = [
            self.base,
            call_id,
            str(check_amount(amount)),
            "1" if release else "0",
            *_window_args(self.budget),
            str(self.config.hold_ttl_seconds),
            str(self.config.record_ttl_seconds),
            self.budget.scope_id,
        ]
        for threshold in self.budget.alert_at:
            args += [alert_label(threshold), str(alert_threshold_units(self.budget.limit_units, threshold))]
        return args

    def renew(self, call_id: str) -> list[str]:
        return [call_id, str(self.config.hold_ttl_seconds), str(self.config.record_ttl_seconds)]

    def window(self) -> list[str]:
        return [self.base, *_window_args(self.budget), str(self.config.record_ttl_seconds)]


def reserve_all_call(
    config: StoreConfig, budgets: Sequence[BudgetRef], call_id: str, amount: int, enforce: Sequence[bool]
) -> tuple[list[str], list[str]]:
    """The keys and arguments of ``lua/reserve_all.lua`` (several budgets of one call, one script)."""
    keys: list[str] = []
    args = [call_id, str(check_amount(amount)), str(config.hold_ttl_seconds), str(config.record_ttl_seconds)]
    for budget, enforcing in zip(budgets, enforce, strict=True):
        base = budget_key(config.key_prefix, budget)
        keys.append(f"{base}:c")
        args += [base, str(budget.limit_units), "1" if enforcing else "0", *_window_args(budget)]
    return keys, args


def parse_reserve(reply: Sequence[Any]) -> ReserveOutcome:
    """A reserve script's reply as a :class:`ReserveOutcome`."""
    granted, spent, held, window, replayed = reply
    return ReserveOutcome(
        granted=bool(granted),
        spent_units=int(spent),
        held_units=int(held),
        window_id=_text(window),
        replayed=bool(replayed),
    )


def parse_settle(budget: BudgetRef, reply: Sequence[Any]) -> tuple[SettleOutcome, int]:
    """A settle script's reply as a :class:`SettleOutcome` and its window's expiry (0: never)."""
    state, charged, spent, held, window, alerts, replayed, expiry, unheld = reply
    labels = set(_text(alerts).split(",")) - {""}
    outcome = SettleOutcome(
        state="settled" if _text(state) == "settled" else "released",
        charged_units=int(charged),
        spent_units=int(spent),
        held_units=int(held),
        window_id=_text(window),
        alerts=tuple(t for t in budget.alert_at if alert_label(t) in labels),
        replayed=bool(replayed),
        unheld=bool(unheld),
    )
    return outcome, int(expiry)


def parse_status(budget: BudgetRef, reply: Sequence[Any]) -> BudgetStatus:
    """A status script's reply as a :class:`BudgetStatus`."""
    window, spent, held, holds, unheld = reply
    status = make_status(budget, _text(window), int(spent), int(held), int(holds))
    return replace(status, unheld_settles=int(unheld))


def parse_top(reply: Sequence[Any]) -> list[tuple[str, int]]:
    """A top script's reply as ``(scope_id, spent)`` pairs."""
    flat = list(reply[1])
    return [(_text(flat[i]), round(float(flat[i + 1]))) for i in range(0, len(flat), 2)]


def ratio_args(deployment_id: str, ratio: float, rule: RatioRule) -> list[str]:
    """The arguments of ``lua/token_ratio.lua``."""
    half_life = "" if rule.half_life_seconds is None else repr(rule.half_life_seconds)
    return [deployment_id, repr(ratio), repr(rule.decay), repr(rule.step), repr(rule.cap), repr(rule.prior), half_life]


def parse_ratios(reply: Sequence[Any]) -> dict[str, LearnedRatio]:
    """A ``lua/token_ratios.lua`` reply; a record that does not parse is left out."""
    now, flat = float(_text(reply[0])), list(reply[1])
    ratios: dict[str, LearnedRatio] = {}
    for i in range(0, len(flat), 2):
        learned = parse_ratio_record(_text(flat[i + 1]), now)
        if learned is not None:
            ratios[_text(flat[i])] = learned
    return ratios


def index_entry(config: StoreConfig, budget: BudgetRef, outcome: SettleOutcome) -> str | None:
    """The top-index key that the client must add a settle's charge to (Redis Cluster only)."""
    if not (config.top_index and config.cluster) or outcome.replayed or outcome.charged_units <= 0:
        return None
    return f"{top_key(config.key_prefix, budget)}:{outcome.window_id}"


class RedisBudgetStore(BudgetStore):
    """Budget counters in Redis.

    ``url`` wins over ``config.redis_url``. Pass ready ``client`` / ``async_client``
    objects to reuse connection pools (they are then not closed by the store); else
    clients are built from the URL (see :mod:`costrouter.budget.redis_clients`: bounded
    pools, warmed at first use), the async one on first use, in the event loop that first
    uses it (close it with :meth:`aclose`). A coroutine running in any other loop (a
    second ``asyncio.run``, another thread's loop) goes through the sync client in a
    worker thread: an async connection belongs to the loop it was made in. A broken
    connection is retried once, so the store works again as soon as Redis does.
    """

    def __init__(
        self,
        config: StoreConfig | None = None,
        *,
        url: str | None = None,
        client: redis_clients.SyncClient | None = None,
        async_client: redis_clients.AsyncClient | None = None,
    ) -> None:
        """Connect lazily to ``url`` (or ``config.redis_url``); nothing is sent yet."""
        self.config = config or StoreConfig(backend="redis")
        self.url = url or self.config.redis_url
        self._owns_client = client is None
        self._owns_async_client = async_client is None
        self._connections = 0
        self._client = client or redis_clients.sync_client(self.url, self.config, self._connected)
        self._scripts: dict[str, Script] = {
            name: redis_clients.register(self._client, script_source(name)) for name in SCRIPT_NAMES
        }
        self._nodes = redis_durable.NodeClients(self._client, self.config)
        self._anodes: redis_durable.AsyncNodeClients | None = None
        self._warm_lock = threading.Lock()
        self._warm = not self._owns_client
        self._async_client = async_client
        self._async_loop: asyncio.AbstractEventLoop | None = None
        """The event loop the async client was built in (``None``: not built yet, or given)."""
        self._async_scripts: dict[str, AsyncScript] = {}
        self._gate: redis_clients.AsyncGate | None = None
        self._batcher: ScriptBatcher | None = None
        self.last_top_scan: top_scan.TopScan | None = None
        """The last :meth:`top` built by a scan (``top_index`` off), for the CLI's note."""
        self._parents: list[object] = []
        """Async clients a forked child inherited: never used, never closed (their sockets are the parent's)."""
        forks.renew_in_child(self)

    def renew_after_fork(self) -> None:
        """In a forked child: the async client is the parent loop's; the child's first loop builds its own.

        redis-py's sync pools notice the new process themselves and open new connections.
        """
        self._warm_lock = threading.Lock()
        if self._owns_async_client and self._async_client is not None:
            self._parents.append(self._async_client)
            self._async_client = None
            self._async_loop = None
            self._async_scripts = {}
            self._anodes = None
            self._gate = None
            self._batcher = None

    def _connected(self, connection: redis.Connection) -> None:
        self._connections += 1
        cast("Callable[[], None]", connection.on_connect)()

    async def _aconnected(self, connection: redis.asyncio.Connection) -> None:
        self._connections += 1
        await connection.on_connect()

    @property
    def connections(self) -> int:
        """See :attr:`BudgetStore.connections` (connections the store built; none for given clients)."""
        return self._connections

    @property
    def client(self) -> redis_clients.SyncClient:
        """The sync client (for :mod:`costrouter.budget.migrate`)."""
        return self._client

    def _layout_checked(self, reply: Sequence[Any]) -> None:
        """Refuse a store that still holds the unversioned 0.2 layout (see :mod:`costrouter.budget.layout`)."""
        value, accepted = (None if v is None else _text(v) for v in reply)
        problem = layout_problem(value, accepted, self.url, self.config.key_prefix)
        if problem is not None:
            raise problem

    def epoch(self, candidate: str, known: str | None) -> EpochState:
        """See :meth:`BudgetStore.epoch` (``lua/epoch.lua``, under its own hash tag).

        Each check first reads the 0.2 layout's epoch (one MGET) and raises
        :class:`~costrouter.errors.StoreLayoutError` while 0.2 processes may count on the store.
        """
        epoch_key, _, accepted_key = legacy_epoch_keys(self.config.key_prefix)
        self._ensure_warm()
        with wrap_errors("epoch"):
            legacy = cast("list[Any]", self._client.mget([epoch_key, accepted_key]))
        self._layout_checked(legacy)
        current, lost = self._run("epoch", "epoch", epoch_keys(self.config.key_prefix), [candidate, known or ""])
        return EpochState(_text(current), bool(lost))

    async def aepoch(self, candidate: str, known: str | None) -> EpochState:
        """See :meth:`BudgetStore.epoch`."""
        if self._in_thread():
            return await asyncio.to_thread(self.epoch, candidate, known)
        epoch_key, _, accepted_key = legacy_epoch_keys(self.config.key_prefix)
        client = self._aclient()
        with wrap_errors("epoch"):
            legacy = await self._agate().run(
                lambda: cast("Awaitable[list[Any]]", client.mget([epoch_key, accepted_key]))
            )
        self._layout_checked(legacy)
        keys = epoch_keys(self.config.key_prefix)
        current, lost = await self._arun("epoch", "epoch", keys, [candidate, known or ""])
        return EpochState(_text(current), bool(lost))

    def accept_epoch(self) -> str:
        """Accept the store's current epoch after a loss of data; returns it ('' when none yet)."""
        return _text(self._run("accept", "accept", epoch_keys(self.config.key_prefix), []))

    def _ensure_warm(self) -> None:
        with self._warm_lock:
            if not self._warm:
                redis_clients.warm_sync_once(self._client, self.config, map(script_source, SCRIPT_NAMES))
                self._warm = True

    def _run(self, operation: str, name: str, keys: list[str], args: list[str], *, confirm: bool = False) -> Any:
        self._ensure_warm()
        with wrap_errors(operation):
            if confirm and self.config.settle_replicas:
                return redis_durable.settle_confirmed(self._nodes, self._scripts[name], keys, args)
            return self._scripts[name](keys=keys, args=args)

    def run_script(self, operation: str, name: str, keys: list[str], args: list[str]) -> Any:
        """Run script ``name`` with the sync client (for :mod:`costrouter.budget.leases`)."""
        return self._run(operation, name, keys, args)

    async def arun_script(self, operation: str, name: str, keys: list[str], args: list[str]) -> Any:
        """Run script ``name`` with the async client, in the running loop's pipelines (for leases)."""
        return await self._arun(operation, name, keys, args)

    def run_script_batch(self, operation: str, name: str, calls: list[script_pipeline.Call]) -> list[Any]:
        """Run script ``name`` once per ``(keys, args)`` in one pipeline: each reply or its store error."""
        self._ensure_warm()
        with wrap_errors(operation):
            return script_pipeline.run_pipelined(self._client, self._scripts[name], calls, operation)

    def script_keys(self, budget: BudgetRef) -> tuple[str, list[str]]:
        """A budget instance's hash tag and the keys its settle script takes."""
        call = _Call(self.config, budget)
        return call.base, call.settle_keys()

    def indexes_from_client(self, amount_units: int) -> bool:
        """Whether a charge goes to the top index from here (Redis Cluster; on standalone the scripts do it)."""
        return self.config.top_index and self.config.cluster and amount_units > 0

    def add_to_index(self, budget: BudgetRef, window: str, amount_units: int) -> None:
        """Add a charge to the largest-spender index when :meth:`indexes_from_client` says so."""
        if not self.indexes_from_client(amount_units):
            return
        try:
            self._client.zincrby(f"{self._index(budget)}:{window}", amount_units, budget.scope_id)
        except (redis.RedisError, OSError):
            logger.warning("could not update the top index of budget %s", budget.name, exc_info=True)

    async def aadd_to_index(self, budget: BudgetRef, window: str, amount_units: int) -> None:
        """Coroutine twin of :meth:`add_to_index`."""
        if not self.indexes_from_client(amount_units):
            return
        if self._in_thread():
            await asyncio.to_thread(self.add_to_index, budget, window, amount_units)
            return
        try:
            await self._agate().run(
                lambda: self._aclient().zincrby(f"{self._index(budget)}:{window}", amount_units, budget.scope_id)
            )
        except (redis.RedisError, OSError):
            logger.warning("could not update the top index of budget %s", budget.name, exc_info=True)

    def hget(self, key: str, field: str) -> str | None:
        """One field of a hash (``None`` when absent)."""
        self._ensure_warm()
        with wrap_errors("hget"):
            value = self._client.hget(key, field)
        return None if value is None else _text(value)

    def _aclient(self) -> redis_clients.AsyncClient:
        if self._async_client is None:
            self._async_client = redis_clients.async_client(self.url, self.config, self._aconnected)
            self._async_loop = asyncio.get_running_loop()
        return self._async_client

    def _in_thread(self) -> bool:
        """Whether the running loop must go through the sync client: the async one was built in another loop."""
        return self._async_loop is not None and self._async_loop is not asyncio.get_running_loop()

    def async_client_fits_running_loop(self) -> bool:
        """Whether the async client may serve the running loop: built in it, not built yet, or given by the caller."""
        return self._async_loop is None or self._async_loop is asyncio.get_running_loop()

    def _agate(self) -> redis_clients.AsyncGate:
        if self._gate is None:
            client = self._aclient()
            self._gate = redis_clients.AsyncGate(self.config, bounded=redis_clients.is_cluster(client))
            self._gate.warm = not self._owns_async_client
        return self._gate

    async def _arun(self, operation: str, name: str, keys: list[str], args: list[str], *, confirm: bool = False) -> Any:
        if self._in_thread():
            return await asyncio.to_thread(self._run, operation, name, keys, args, confirm=confirm)
        client = self._aclient()
        if not self._async_scripts:
            self._async_scripts = {name: redis_clients.aregister(client, script_source(name)) for name in SCRIPT_NAMES}
            self._anodes = redis_durable.AsyncNodeClients(client, self.config)
            if not redis_clients.is_cluster(client):
                self._batcher = ScriptBatcher(cast("redis.asyncio.Redis", client))
        gate = self._agate()
        script = self._async_scripts[name]
        nodes = self._anodes
        with wrap_errors(operation):
            await gate.ensure_warm(
                lambda: redis_clients.warm_async(client, self.config, map(script_source, SCRIPT_NAMES))
            )
            if confirm and nodes is not None and self.config.settle_replicas:
                return await gate.run(lambda: redis_durable.asettle_confirmed(nodes, script, keys, args))
            if self._batcher is not None:
                return await self._batcher.run(script, keys, args)
            return await gate.run(lambda: redis_clients.arun_script(client, script, keys, args))

    def _index(self, budget: BudgetRef) -> str:
        return top_key(self.config.key_prefix, budget)

    def reserve(self, budget: BudgetRef, call_id: str, amount_units: int, *, enforce: bool) -> ReserveOutcome:
        """See :meth:`BudgetStore.reserve`."""
        call = _Call(self.config, budget)
        args = call.reserve(call_id, amount_units, enforce=enforce)
        # A reserve replayed by call id answers the decision its first run took (lib.lua's reserve_one).
        return parse_reserve(resent_once(lambda: self._run("reserve", "reserve", call.keys, args)))

    def reserve_all(
        self, budgets: Sequence[BudgetRef], call_id: str, amount_units: int, enforce: Sequence[bool]
    ) -> list[ReserveOutcome]:
        """See :meth:`BudgetStore.reserve_all`: one script on standalone Redis, one per budget on a cluster."""
        if self.config.cluster or len(budgets) < 2:  # one budget: the plain reserve
            return super().reserve_all(budgets, call_id, amount_units, enforce)
        keys, args = reserve_all_call(self.config, budgets, call_id, amount_units, enforce)
        replies = resent_once(lambda: self._run("reserve", "reserve_all", keys, args))
        return [parse_reserve(reply) for reply in replies]

    def _settle(self, budget: BudgetRef, call_id: str, amount: int, *, release: bool) -> SettleOutcome:
        call = _Call(self.config, budget)
        operation = "release" if release else "settle"
        reply = self._run(
            operation, "settle", call.settle_keys(), call.settle(call_id, amount, release=release), confirm=True
        )
        outcome, expiry = parse_settle(budget, reply)
        key = index_entry(self.config, budget, outcome)
        if key is not None:
            try:
                with self._client.pipeline(transaction=False) as pipe:
                    pipe.zincrby(key, outcome.charged_units, budget.scope_id)
                    if expiry:
                        pipe.expireat(key, expiry)
                    pipe.execute()
            except (redis.RedisError, OSError):
                logger.warning("could not update the top index of budget %s", budget.name, exc_info=True)
        return outcome

    def settle(self, budget: BudgetRef, call_id: str, amount_units: int) -> SettleOutcome:
        """See :meth:`BudgetStore.settle`."""
        return self._settle(budget, call_id, amount_units, release=False)

    def release(self, budget: BudgetRef, call_id: str) -> SettleOutcome:
        """See :meth:`BudgetStore.release`."""
        return self._settle(budget, call_id, 0, release=True)

    def renew(self, budget: BudgetRef, call_id: str) -> bool:
        """See :meth:`BudgetStore.renew`."""
        call = _Call(self.config, budget)
        return bool(self._run("renew", "renew", call.keys, call.renew(call_id)))

    def status(self, budget: BudgetRef) -> BudgetStatus:
        """See :meth:`BudgetStore.status`."""
        call = _Call(self.config, budget)
        return parse_status(budget, self._run("status", "status", call.keys, call.window()))

    def reset(self, budget: BudgetRef) -> None:
        """See :meth:`BudgetStore.reset`."""
        call = _Call(self.config, budget)
        window = _text(self._run("reset", "reset", call.keys, call.window()))
        with wrap_errors("reset"):
            self._client.zrem(f"{self._index(budget)}:{window}", budget.scope_id)

    def top(self, budget: BudgetRef, n: int) -> list[tuple[str, int]]:
        """See :meth:`BudgetStore.top`; without ``top_index``, a scan (:attr:`last_top_scan` says its size)."""
        if not self.config.top_index:
            return self.scan_top(budget, n).ranked
        return parse_top(self._run("top", "top", [self._index(budget)], [*_window_args(budget), str(n)]))

    def scan_top(self, budget: BudgetRef, n: int) -> top_scan.TopScan:
        """The largest spenders by a scan of the budget's window hashes (see :mod:`costrouter.budget.top_scan`)."""
        self._ensure_warm()
        with wrap_errors("top"):
            seconds, micros = cast("tuple[int, int]", self._client.time())
        window, _ = self.window_of(budget, seconds + micros / 1e6)
        with wrap_errors("top"):
            self.last_top_scan = top_scan.scan_top(self._client, self.config.key_prefix, budget, window, n)
        return self.last_top_scan

    def window_of(self, budget: BudgetRef, at: float) -> tuple[str, int]:
        """The window id and end that the server's scripts compute for the moment ``at``."""
        window, end = self._run("window", "window", [], [*_window_args(budget), repr(at)])
        return _text(window), int(end)

    def token_ratios(self) -> dict[str, LearnedRatio]:
        """See :meth:`BudgetStore.token_ratios`."""
        return parse_ratios(self._run("token_ratios", "token_ratios", [token_ratio_key(self.config.key_prefix)], []))

    def observe_token_ratio(self, deployment_id: str, ratio: float, rule: RatioRule) -> float:
        """See :meth:`BudgetStore.observe_token_ratio`."""
        check_ratio(ratio, rule)
        keys = [token_ratio_key(self.config.key_prefix)]
        return float(self._run("observe_token_ratio", "token_ratio", keys, ratio_args(deployment_id, ratio, rule)))

    def reset_token_ratios(self, deployment_id: str | None = None) -> list[str]:
        """See :meth:`BudgetStore.reset_token_ratios`."""
        key = token_ratio_key(self.config.key_prefix)
        self._ensure_warm()
        with wrap_errors("reset_token_ratios"):
            if deployment_id is not None:
                return [deployment_id] if self._client.hdel(key, deployment_id) else []
            with self._client.pipeline(transaction=True) as pipe:
                pipe.hkeys(key)
                pipe.delete(key)
                names, _ = pipe.execute()
        return sorted(_text(name) for name in names)

    def __repr__(self) -> str:
        return f"RedisBudgetStore(url={mask_url(self.url)!r}, key_prefix={self.config.key_prefix!r})"

    def close(self) -> None:
        """Close the sync client's connections, if the store built that client."""
        self._nodes.close()
        if self._owns_client:
            self._client.close()

    async def areserve(self, budget: BudgetRef, call_id: str, amount_units: int, *, enforce: bool) -> ReserveOutcome:
        """See :meth:`BudgetStore.reserve`."""
        call = _Call(self.config, budget)
        args = call.reserve(call_id, amount_units, enforce=enforce)
        return parse_reserve(await aresent_once(lambda: self._arun("reserve", "reserve", call.keys, args)))

    async def areserve_all(
        self, budgets: Sequence[BudgetRef], call_id: str, amount_units: int, enforce: Sequence[bool]
    ) -> list[ReserveOutcome]:
        """See :meth:`BudgetStore.reserve_all`."""
        if self.config.cluster or len(budgets) < 2:  # one budget: the plain reserve
            return await super().areserve_all(budgets, call_id, amount_units, enforce)
        keys, args = reserve_all_call(self.config, budgets, call_id, amount_units, enforce)
        replies = await aresent_once(lambda: self._arun("reserve", "reserve_all", keys, args))
        return [parse_reserve(reply) for reply in replies]

    async def _asettle(self, budget: BudgetRef, call_id: str, amount: int, *, release: bool) -> SettleOutcome:
        if self._in_thread():
            return await asyncio.to_thread(self._settle, budget, call_id, amount, release=release)
        call = _Call(self.config, budget)
        operation = "release" if release else "settle"
        reply = await self._arun(
            operation, "settle", call.settle_keys(), call.settle(call_id, amount, release=release), confirm=True
        )
        outcome, expiry = parse_settle(budget, reply)
        key = index_entry(self.config, budget, outcome)
        if key is not None:
            try:
                await self._agate().run(
                    lambda: redis_clients.aadd_to_index(self._aclient(), key, budget, outcome, expiry)
                )
            except (redis.RedisError, OSError):
                logger.warning("could not update the top index of budget %s", budget.name, exc_info=True)
        return outcome

    async def asettle(self, budget: BudgetRef, call_id: str, amount_units: int) -> SettleOutcome:
        """See :meth:`BudgetStore.settle`."""
        return await self._asettle(budget, call_id, amount_units, release=False)

    async def arelease(self, budget: BudgetRef, call_id: str) -> SettleOutcome:
        """See :meth:`BudgetStore.release`."""
        return await self._asettle(budget, call_id, 0, release=True)

    async def arenew(self, budget: BudgetRef, call_id: str) -> bool:
        """See :meth:`BudgetStore.renew`."""
        call = _Call(self.config, budget)
        return bool(await self._arun("renew", "renew", call.keys, call.renew(call_id)))

    async def astatus(self, budget: BudgetRef) -> BudgetStatus:
        """See :meth:`BudgetStore.status`."""
        call = _Call(self.config, budget)
        return parse_status(budget, await self._arun("status", "status", call.keys, call.window()))

    async def areset(self, budget: BudgetRef) -> None:
        """See :meth:`BudgetStore.reset`."""
        if self._in_thread():
            await asyncio.to_thread(self.reset, budget)
            return
        call = _Call(self.config, budget)
        window = _text(await self._arun("reset", "reset", call.keys, call.window()))
        with wrap_errors("reset"):
            await self._agate().run(lambda: self._aclient().zrem(f"{self._index(budget)}:{window}", budget.scope_id))

    async def atop(self, budget: BudgetRef, n: int) -> list[tuple[str, int]]:
        """See :meth:`BudgetStore.top` (the scan without ``top_index`` runs in a worker thread)."""
        if not self.config.top_index:
            return (await asyncio.to_thread(self.scan_top, budget, n)).ranked
        return parse_top(await self._arun("top", "top", [self._index(budget)], [*_window_args(budget), str(n)]))

    async def atoken_ratios(self) -> dict[str, LearnedRatio]:
        """See :meth:`BudgetStore.token_ratios`."""
        keys = [token_ratio_key(self.config.key_prefix)]
        return parse_ratios(await self._arun("token_ratios", "token_ratios", keys, []))

    async def aobserve_token_ratio(self, deployment_id: str, ratio: float, rule: RatioRule) -> float:
        """See :meth:`BudgetStore.observe_token_ratio`."""
        check_ratio(ratio, rule)
        keys = [token_ratio_key(self.config.key_prefix)]
        args = ratio_args(deployment_id, ratio, rule)
        return float(await self._arun("observe_token_ratio", "token_ratio", keys, args))

    async def aclose(self) -> None:
        """Close the async client's connections (and the sync one's), if the store built them."""
        if self._anodes is not None:
            await self._anodes.aclose()
        if self._owns_async_client and self._async_client is not None:
            self._anodes = None
            await self._async_client.aclose()
            self._async_client = None
            self._async_loop = None
            self._async_scripts = {}
            self._gate = None
            self._batcher = None
        self.close()
