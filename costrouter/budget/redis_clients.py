"""The Redis clients of the budget store: bounded connection pools, separate timeouts, warm-up.

A burst of concurrent calls must not open a connection each: with many tasks on one busy
event loop, each new connection's handshake waits behind the loop's other work and
times out. So each client has a bounded pool (``store.max_connections``); a command
that finds every connection busy waits up to ``store.pool_timeout_seconds`` for one.
Connecting (``store.connect_timeout_seconds``) and running a command
(``store.timeout_seconds``) have separate timeouts, and the first use of a client opens
``store.warm_connections`` connections and loads the scripts, once, before the burst's
commands start, instead of in the middle of them.

A store that stops answering is detected within ``pool_timeout + connect_timeout +
timeout`` seconds per attempt (a broken connection is retried once). Redis Cluster
clients (``store.cluster``) keep a pool per node; the async cluster client only raises
when its pool is full, so a semaphore bounds it the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript, Script
from redis.retry import Retry

if TYPE_CHECKING:
    from costrouter.budget.store import SettleOutcome
    from costrouter.config.budget_ref import BudgetRef
    from costrouter.config.budgets import StoreConfig

SyncClient = redis.Redis | redis.cluster.RedisCluster
AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
T = TypeVar("T")

_RETRIED = (redis.ConnectionError,)

logger = logging.getLogger(__name__)


def is_cluster(client: SyncClient | AsyncClient) -> bool:
    """Whether ``client`` talks to a Redis Cluster."""
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


def _connection_options(config: StoreConfig) -> dict[str, Any]:
    return {
        "socket_timeout": config.timeout_seconds,
        "socket_connect_timeout": config.connect_timeout_seconds,
        "decode_responses": True,
    }


def sync_client(url: str, config: StoreConfig, on_connect: Callable[[Any], None] | None = None) -> SyncClient:
    """A client of ``url`` with a bounded pool that blocks up to the pool timeout for a connection.

    ``on_connect`` replaces redis-py's connect handshake (it must call ``connection.on_connect()``)
    on a standalone Redis; a cluster client keeps its own.
    """
    if config.cluster:
        return redis.cluster.RedisCluster.from_url(
            url,
            max_connections=config.max_connections,
            retry=Retry(NoBackoff(), 1, _RETRIED),
            **_connection_options(config),
        )
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=config.max_connections,
        timeout=config.pool_timeout_seconds,
        retry=Retry(NoBackoff(), 1, _RETRIED),
        redis_connect_func=on_connect,
        **_connection_options(config),
    )
    return redis.Redis(connection_pool=pool)


def async_client(
    url: str, config: StoreConfig, on_connect: Callable[[Any], Awaitable[None]] | None = None
) -> AsyncClient:
    """The asyncio twin of :func:`sync_client` (build it inside the event loop that uses it)."""
    if config.cluster:
        return redis.asyncio.cluster.RedisCluster.from_url(
            url,
            max_connections=config.max_connections,
            retry=AsyncRetry(NoBackoff(), 1, _RETRIED),
            **_connection_options(config),
        )
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=config.max_connections,
        timeout=config.pool_timeout_seconds,
        retry=AsyncRetry(NoBackoff(), 1, _RETRIED),
        redis_connect_func=on_connect,
        **_connection_options(config),
    )
    return redis.asyncio.Redis(connection_pool=pool)


def register(client: SyncClient, source: str) -> Script:
    """``source`` as a script of ``client``: EVALSHA, loaded again on NOSCRIPT (per node on a cluster)."""
    return Script(cast("redis.Redis", client), source)


def aregister(client: AsyncClient, source: str) -> AsyncScript:
    """The asyncio twin of :func:`register`."""
    return AsyncScript(cast("redis.asyncio.Redis", client), source)


def warm_sync_once(client: SyncClient, config: StoreConfig, scripts: Iterable[str]) -> None:
    """:func:`warm_sync`, its failure only logged (the commands that follow connect as they need)."""
    try:
        warm_sync(client, config, scripts)
    except (redis.RedisError, OSError) as exc:
        logger.warning("costrouter: could not warm the Redis connection pool: %s", exc)


async def _logged(warming: Awaitable[None]) -> None:
    try:
        await warming
    except (redis.RedisError, OSError) as exc:
        logger.warning("costrouter: could not warm the Redis connection pool: %s", exc)


def warm_sync(client: SyncClient, config: StoreConfig, scripts: Iterable[str]) -> None:
    """Open ``config.warm_connections`` connections and load ``scripts``; raise what Redis raises.

    On a cluster, SCRIPT LOAD reaches every primary; connections open as nodes are used.
    """
    if not isinstance(client, redis.cluster.RedisCluster):
        pool: Any = client.connection_pool
        taken: list[Any] = []
        try:
            # extend keeps the connections taken before a failure, so they go back to the pool
            taken.extend(pool.get_connection() for _ in range(min(config.warm_connections, config.max_connections)))
        finally:
            for connection in taken:
                pool.release(connection)
    for script in scripts:
        client.script_load(script)


async def warm_async(client: AsyncClient, config: StoreConfig, scripts: Iterable[str]) -> None:
    """The asyncio twin of :func:`warm_sync`: the connections are opened concurrently."""
    if not isinstance(client, redis.asyncio.cluster.RedisCluster):
        pool: Any = client.connection_pool
        count = min(config.warm_connections, config.max_connections)
        results = await asyncio.gather(*(pool.get_connection() for _ in range(count)), return_exceptions=True)
        for result in results:
            if not isinstance(result, BaseException):
                await pool.release(result)
        for result in results:
            if isinstance(result, BaseException):
                raise result
    for script in scripts:
        await client.script_load(script)


async def aadd_to_index(client: AsyncClient, key: str, budget: BudgetRef, outcome: SettleOutcome, expiry: int) -> None:
    """Add a settle's charge to the top index ``key`` (Redis Cluster: another slot than the budget's)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.zincrby(key, outcome.charged_units, budget.scope_id)
        if expiry:
            pipe.expireat(key, expiry)
        await pipe.execute()


async def arun_script(client: AsyncClient, script: AsyncScript, keys: list[str], args: list[str]) -> Any:
    """Run ``script``; on NOSCRIPT (a promoted replica has an empty script cache) load it where the keys live, retry."""
    try:
        return await script(keys=keys, args=args)
    except redis.exceptions.NoScriptError:
        if not isinstance(client, redis.asyncio.cluster.RedisCluster):
            raise
    node = client.get_node_from_key(keys[0]) if keys else None
    await client.execute_command("SCRIPT LOAD", script.script, target_nodes=node or client.PRIMARIES)
    return await script(keys=keys, args=args)


class AsyncGate:
    """One warm-up shared by every task that arrives before it ends, and a bound on commands in flight.

    Tasks that arrive while the warm-up runs wait for it. It is tried once per client:
    a failed warm-up is logged and the commands go on (each then connects as it needs),
    so it never fails a call and never adds more than one connect to a dead store's
    detection. The semaphore (cluster clients only) keeps at most ``max_connections``
    commands in flight, waiting up to the pool timeout.
    """

    def __init__(self, config: StoreConfig, *, bounded: bool) -> None:
        """A gate for one async client."""
        self.config = config
        self.warm = False
        self._warming: asyncio.Future[None] | None = None
        self._slots = asyncio.Semaphore(config.max_connections) if bounded else None

    async def ensure_warm(self, warm: Callable[[], Awaitable[None]]) -> None:
        """Run ``warm`` once; concurrent callers wait for it; its failure is only logged."""
        if self.warm:
            return
        if self._warming is None:
            self._warming = asyncio.ensure_future(_logged(warm()))
        await asyncio.shield(self._warming)
        self.warm = True

    async def run(self, command: Callable[[], Awaitable[T]]) -> T:
        """Run ``command``, waiting for a free slot first when the gate is bounded."""
        if self._slots is None:
            return await command()
        try:
            async with asyncio.timeout(self.config.pool_timeout_seconds):
                await self._slots.acquire()
        except TimeoutError as exc:
            message = "No connection available."
            raise redis.ConnectionError(message) from exc
        try:
            return await command()
        finally:
            self._slots.release()
