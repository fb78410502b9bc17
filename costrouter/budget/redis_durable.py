"""A settle confirmed by a replica: the settle script and ``WAIT`` on one connection of the key's master.

Redis replicates asynchronously: a master acknowledges a write before its replicas have
it, so a failover can lose settles that the caller saw succeed. With
``store.settle_wait_replicas`` > 0 (the default on a cluster), each settle is followed, on the same connection, by
``WAIT <replicas> <store.settle_wait_ms>``; a settle that the replicas confirmed survives
the loss of its master. One that they did not confirm in time (a replica down or slow)
is still counted on the master, logged, and is what a failover can lose.

On a Redis Cluster the pair goes to the master of the budget's slot through a small
client of that node; when the node no longer serves the slot (a failover under way),
or cannot be reached, the settle is sent again (it is idempotent by call id) through the
main client, which follows the slot to its new master; that settle is unconfirmed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from costrouter.budget import redis_clients

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript, Script

    from costrouter.config.budgets import StoreConfig

logger = logging.getLogger(__name__)

_MOVED = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "READONLY")


def _moved(exc: redis.ResponseError) -> bool:
    return str(exc).startswith(_MOVED)


def _warn(call_id: str, acked: int, config: StoreConfig) -> None:
    logger.warning(
        "costrouter: the settle of call %s reached %d of %d replicas within %d ms; a failover now could lose it",
        call_id,
        acked,
        config.settle_replicas,
        config.settle_wait_ms,
    )


class NodeClients:
    """Sync clients of single cluster nodes (or the standalone client), by address."""

    def __init__(self, client: redis_clients.SyncClient, config: StoreConfig) -> None:
        """Clients built on demand with the store's pool and timeout settings."""
        self.client = client
        self.config = config
        self._nodes: dict[str, redis.Redis] = {}

    def of(self, key: str) -> redis.Redis:
        """The client of the master that serves ``key`` (the standalone client itself)."""
        if not isinstance(self.client, redis.cluster.RedisCluster):
            return self.client
        node: Any = cast("Any", self.client).get_node_from_key(key)
        if node.name not in self._nodes:
            url = f"redis://{node.host}:{node.port}/0"
            single = redis_clients.sync_client(url, self.config.model_copy(update={"cluster": False}))
            self._nodes[node.name] = cast("redis.Redis", single)
        return self._nodes[node.name]

    def close(self) -> None:
        """Close the node clients (not the main one)."""
        for node in self._nodes.values():
            node.close()
        self._nodes.clear()


def settle_confirmed(nodes: NodeClients, script: Script, keys: list[str], args: list[str]) -> Any:
    """Run the settle ``script`` then ``WAIT`` on one connection; return the script's reply."""
    config = nodes.config
    client = nodes.of(keys[0])
    for _ in range(2):
        try:
            with client.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                pipe.wait(config.settle_replicas, config.settle_wait_ms)
                reply, acked = pipe.execute()
        except redis.exceptions.NoScriptError:
            client.script_load(script.script)
            continue
        except redis.ResponseError as exc:
            if not _moved(exc):
                raise
            break
        except (redis.ConnectionError, redis.TimeoutError):
            break  # the node is gone or slow: the cluster client finds the slot's master, or fails
        if int(acked) < config.settle_replicas:
            _warn(args[1], int(acked), config)
        return reply
    _warn(args[1], 0, config)
    return script(keys=keys, args=args)


class AsyncNodeClients:
    """The asyncio twin of :class:`NodeClients`."""

    def __init__(self, client: redis_clients.AsyncClient, config: StoreConfig) -> None:
        """Clients built on demand with the store's pool and timeout settings."""
        self.client = client
        self.config = config
        self._nodes: dict[str, redis.asyncio.Redis] = {}

    def of(self, key: str) -> redis.asyncio.Redis:
        """The client of the master that serves ``key`` (the standalone client itself)."""
        if not isinstance(self.client, redis.asyncio.cluster.RedisCluster):
            return self.client
        node = self.client.get_node_from_key(key)
        if node is None:
            return cast("redis.asyncio.Redis", self.client)
        if node.name not in self._nodes:
            url = f"redis://{node.host}:{node.port}/0"
            single = redis_clients.async_client(url, self.config.model_copy(update={"cluster": False}))
            self._nodes[node.name] = cast("redis.asyncio.Redis", single)
        return self._nodes[node.name]

    async def aclose(self) -> None:
        """Close the node clients (not the main one)."""
        for node in self._nodes.values():
            await node.aclose()
        self._nodes.clear()


async def asettle_confirmed(nodes: AsyncNodeClients, script: AsyncScript, keys: list[str], args: list[str]) -> Any:
    """The asyncio twin of :func:`settle_confirmed`."""
    config = nodes.config
    client = nodes.of(keys[0])
    for _ in range(2):
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                pipe.wait(config.settle_replicas, config.settle_wait_ms)
                reply, acked = await pipe.execute()
        except redis.exceptions.NoScriptError:
            await client.script_load(script.script)
            continue
        except redis.ResponseError as exc:
            if not _moved(exc):
                raise
            break
        except (redis.ConnectionError, redis.TimeoutError):
            break  # the node is gone or slow: the cluster client finds the slot's master, or fails
        if int(acked) < config.settle_replicas:
            _warn(args[1], int(acked), config)
        return reply
    _warn(args[1], 0, config)
    return await script(keys=keys, args=args)
