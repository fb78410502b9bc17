"""The scripts of concurrent tasks sent together: one pipeline per event-loop turn, on standalone Redis.

With hundreds of calls on one event loop, a command holds its pooled connection from the
moment it is sent until the loop comes back to the task awaiting its reply; between the
two the loop runs other calls' LiteLLM work, so each command held a connection for most of
a loop turn, and a pool of 16 connections capped 256 concurrent calls at 0.4 of the bare
Router's throughput (``benchmarks/lease_throughput.py``). Here a script that finds
another in flight joins a queue, and one flush per loop turn sends the whole queue as one
pipeline on one connection: no transaction, so each script stays atomic on its own exactly
as before, and each task gets its own reply or error. A script alone goes out at once as a
plain EVALSHA (a pipeline of one costs the client about 0.14 M more instructions a call).

Failure semantics are those of a single command: the pipeline is retried once on a broken
connection (every script replays by call id, so a script that ran before the break
returns its first reply), a command timeout fails every script of the pipeline, and a
NOSCRIPT reply (a restarted server) loads that script and resends only its commands. A task
cancelled before its flush never sends its script.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio
import redis.exceptions
from redis.commands.core import AsyncScript

MAX_BATCH: Final = 128
"""Scripts per pipeline; a longer queue is split over several pipelines, sent side by side."""


@dataclass(frozen=True, slots=True)
class _Request:
    script: AsyncScript
    keys: list[str]
    args: list[str]
    reply: asyncio.Future[Any]


class ScriptBatcher:
    """Runs the scripts of one asyncio client's callers in pipelines, one flush per loop turn."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        """A batcher for ``client`` (standalone Redis; a cluster routes each key to its own node)."""
        self._client = client
        self._queue: list[_Request] = []
        self._flush_scheduled = False
        self._flushes: set[asyncio.Task[None]] = set()
        self._in_flight = 0

    async def run(self, script: AsyncScript, keys: list[str], args: list[str]) -> Any:
        """Run ``script`` on ``keys`` and ``args``; return its reply or raise its error.

        Alone (nothing in flight, nothing queued) the script goes out at once, as a plain
        EVALSHA; otherwise it joins the next pipeline.
        """
        if not self._in_flight and not self._queue:
            self._in_flight += 1
            try:
                return await script(keys=keys, args=args)
            finally:
                self._in_flight -= 1
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(script, keys, args, reply))
        if not self._flush_scheduled:
            self._schedule_flush()
        return await reply

    def _schedule_flush(self) -> None:
        # A new task's first step runs after the tasks already ready in this loop turn, so
        # every script they ask for joins this flush.
        self._flush_scheduled = True
        flush = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(flush)
        flush.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        self._flush_scheduled = False
        batch = [request for request in self._queue[:MAX_BATCH] if not request.reply.done()]
        del self._queue[:MAX_BATCH]
        if self._queue:
            self._schedule_flush()
        if not batch:
            return
        self._in_flight += 1
        try:
            replies = await self._send(batch)
        except asyncio.CancelledError:
            for request in batch:
                request.reply.cancel()
            raise
        except Exception as exc:  # every caller gets the error its own command would have raised
            for request in batch:
                if not request.reply.done():
                    request.reply.set_exception(exc)
            return
        finally:
            self._in_flight -= 1
        for request, reply in zip(batch, replies, strict=True):
            if request.reply.done():
                continue
            if isinstance(reply, Exception):
                request.reply.set_exception(reply)
            else:
                request.reply.set_result(reply)

    async def _send(self, batch: list[_Request]) -> list[Any]:
        replies = await self._pipeline(batch)
        missing = [index for index, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
        if missing:
            for source in {batch[index].script.script for index in missing}:
                await self._client.script_load(source)
            again = await self._pipeline([batch[index] for index in missing])
            for index, reply in zip(missing, again, strict=True):
                replies[index] = reply
        return replies

    async def _pipeline(self, batch: list[_Request]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for request in batch:
                pipe.evalsha(request.script.sha, len(request.keys), *request.keys, *request.args)
            return await pipe.execute(raise_on_error=False)


__all__ = ["MAX_BATCH", "ScriptBatcher"]
