"""A private event loop on a daemon thread, for the sync twin of a LiteLLM call that only works async.

LiteLLM 1.106's ``Router.anthropic_messages`` is its async wrapper (it returns a coroutine), its
sync ``Router.text_completion`` neither routes nor retries, and its Router has rerank,
transcription, speech and image edits in async only; the sync ``route_messages``,
``route_text_completion``, ``route_rerank``, ``route_transcription``, ``route_speech`` and
``route_image_edit`` await the async Router methods here. One loop serves the whole process
(:func:`shared_loop`) and is never closed: LiteLLM caches its HTTP clients per loop (by the loop's
``id``), so a loop closed and another made in its place could meet a dead client. Each call runs
in a copy of the caller's context (its OpenTelemetry span included), and LiteLLM's exceptions
reach the caller unchanged.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


class LoopThread:
    """Runs awaitables to their end on one event loop of its own thread, started on first use."""

    def __init__(self, name: str = "costrouter-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closing: set[asyncio.Future[None]] = set()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` on the loop and return its result (or raise its error).

        Interrupted while waiting (``KeyboardInterrupt``), the awaitable is cancelled and the
        interruption raised, as a sync call's would be.
        """
        if threading.current_thread() is self._thread:
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # never to be awaited: closed, not left for a warning at collection
            raise RuntimeError("a sync costrouter call from inside its own loop thread would wait forever")
        coroutine: Coroutine[Any, Any, T] = _awaited(awaitable)
        future = asyncio.run_coroutine_threadsafe(coroutine, self._started())
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def finish(self, awaitable: Awaitable[None]) -> None:
        """Await ``awaitable`` on the loop, or only schedule it when called from the loop thread.

        An object collected on the loop thread closes its stream there: waiting would wait forever.
        """
        if threading.current_thread() is self._thread:
            task = asyncio.ensure_future(awaitable)
            self._closing.add(task)  # held until done: the loop keeps only weak references to tasks
            task.add_done_callback(self._closing.discard)
            return
        self.run(awaitable)

    def iterate(self, stream: Any) -> SyncStream:
        """A sync iterator over an async ``stream`` whose items are awaited on the loop."""
        return SyncStream(self, stream)

    @property
    def running(self) -> bool:
        """Whether the loop was started and not closed."""
        return self._loop is not None

    def forget(self) -> None:
        """Drop the loop without stopping it (in a forked child, where its thread does not exist)."""
        self._lock = threading.Lock()
        self._loop = self._thread = None

    def close(self) -> None:
        """Stop the loop and its thread (a later call starts a new one)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


class SyncStream:
    """An async stream read synchronously through a :class:`LoopThread`; other attributes pass through."""

    def __init__(self, loop: LoopThread, stream: Any) -> None:
        self._loop = loop
        self._stream = stream
        self._iterator: AsyncIterator[Any] = stream.__aiter__()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __iter__(self) -> SyncStream:
        return self

    def __next__(self) -> Any:
        try:
            return self._loop.run(self._iterator.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Close the async stream (its connection) on the loop; nothing to do once the loop is gone."""
        closer = getattr(self._iterator, "aclose", None)
        if callable(closer) and self._loop.running:
            self._loop.finish(closer())


_SHARED = LoopThread()
os.register_at_fork(after_in_child=_SHARED.forget)


def shared_loop() -> LoopThread:
    """The process's loop thread, shared by every router."""
    return _SHARED
