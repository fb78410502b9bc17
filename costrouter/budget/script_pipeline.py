"""One script run for many budget instances in one round trip: a pipeline of EVALSHAs, no transaction.

The lease holder's background thread carries the settles and give-backs of many leases at once
(:mod:`costrouter.budget.leases`): one pipeline of the same script with each instance's keys and
arguments. Each script stays atomic on its own, as when sent alone, and each gets its own reply
or error. The pipeline sends ``EVALSHA`` alone (no ``SCRIPT EXISTS`` before it); a reply saying
the script is missing (a Redis restarted or flushed) is run again on its own, which loads it. On
a Redis Cluster there is one pipeline per node that holds the keys (its own client); a reply
saying the slot moved, or a script the node lacks, is run again on its own by the cluster
client, which follows the move.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import redis
import redis.exceptions

from costrouter.errors import BudgetStoreError

if TYPE_CHECKING:
    from redis.cluster import ClusterNode
    from redis.commands.core import Script

    from costrouter.budget.redis_clients import SyncClient

Call = tuple[list[str], list[str]]
"""The keys and arguments of one run of the script."""


def run_pipelined(client: SyncClient, script: Script, calls: Sequence[Call], operation: str) -> list[Any]:
    """Run ``script`` once per call in one pipeline (one per node on a cluster).

    Returns each reply, or a :class:`BudgetStoreError` in its place. A failure of a whole
    pipeline (a lost connection, a timeout) raises :class:`redis.RedisError` or
    :class:`OSError` for the caller to wrap.
    """
    replies: list[Any] = [None] * len(calls)
    for node_client, indexes in _by_node(client, calls).items():
        pipe = node_client.pipeline(transaction=False)
        for index in indexes:
            keys, args = calls[index]
            # EVALSHA by hand: a Script in a pipeline makes redis-py ask SCRIPT EXISTS first, a round
            # trip of its own each time; a node without the script answers NOSCRIPT, run again alone.
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        for index, reply in zip(indexes, pipe.execute(raise_on_error=False), strict=True):
            replies[index] = reply
    for index, reply in enumerate(replies):
        if _run_alone(reply):
            keys, args = calls[index]
            try:
                replies[index] = script(keys=keys, args=args)
            except (redis.RedisError, OSError) as exc:
                replies[index] = exc
    return [BudgetStoreError(operation, r) if isinstance(r, redis.RedisError | OSError) else r for r in replies]


def _by_node(client: SyncClient, calls: Sequence[Call]) -> dict[redis.Redis, list[int]]:
    """The calls' indexes by the client of the node that holds their keys (the client itself, standalone)."""
    if not isinstance(client, redis.cluster.RedisCluster):
        return {client: list(range(len(calls)))}
    groups: dict[redis.Redis, list[int]] = {}
    for index, (keys, _) in enumerate(calls):
        node = cast("Callable[[str], ClusterNode]", client.get_node_from_key)(keys[0])
        groups.setdefault(cast("redis.Redis", node.redis_connection), []).append(index)
    return groups


def _run_alone(reply: Any) -> bool:
    """A reply the cluster client must answer itself: a script the node lacks, or a slot that moved."""
    if isinstance(reply, redis.exceptions.NoScriptError):
        return True
    return isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith(("MOVED", "ASK"))
