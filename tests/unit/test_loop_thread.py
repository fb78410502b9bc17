"""The loop thread the sync twins of async-only LiteLLM calls run on."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

import pytest

from costrouter.routing.loop_thread import LoopThread, shared_loop

CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="none")


async def answer(value: int) -> int:
    await asyncio.sleep(0)
    return value


async def failing() -> None:
    await asyncio.sleep(0)
    raise KeyError("the very error")


async def caller_seen() -> str:
    return CALLER.get()


async def counting(to: int) -> AsyncIterator[int]:
    for value in range(to):
        await asyncio.sleep(0)
        yield value


def test_results_and_errors_reach_the_caller_unchanged() -> None:
    loop = LoopThread()
    try:
        assert loop.run(answer(7)) == 7
        with pytest.raises(KeyError, match="the very error"):
            loop.run(failing())
    finally:
        loop.close()


def test_each_call_runs_in_the_callers_context() -> None:
    loop = LoopThread()
    token = CALLER.set("sess-1")
    try:
        assert loop.run(caller_seen()) == "sess-1"
    finally:
        CALLER.reset(token)
        loop.close()


def test_an_async_stream_is_read_synchronously_and_closed() -> None:
    loop = LoopThread()
    try:
        stream = loop.iterate(counting(5))
        assert [next(stream), next(stream)] == [0, 1]
        stream.close()
        assert list(stream) == []  # a closed async generator is exhausted
        assert list(loop.iterate(counting(3))) == [0, 1, 2]
    finally:
        loop.close()


def test_a_call_from_inside_the_loop_is_refused_not_deadlocked() -> None:
    loop = LoopThread()

    async def nested() -> int:
        return loop.run(answer(1))

    try:
        with pytest.raises(RuntimeError, match="would wait forever"):
            loop.run(nested())
    finally:
        loop.close()


def test_the_shared_loop_is_one_for_the_process() -> None:
    assert shared_loop() is shared_loop()
    assert shared_loop().run(answer(3)) == 3


def test_a_stream_closed_from_the_loop_thread_is_closed_without_waiting() -> None:
    loop = LoopThread()
    try:
        stream = loop.iterate(counting(5))
        assert next(stream) == 0

        async def collected_here() -> None:
            stream.close()  # as a stream garbage-collected on the loop thread would

        loop.run(collected_here())
        loop.run(answer(0))  # scheduled after the close, so it runs once the close has
        assert list(stream) == []
    finally:
        loop.close()
