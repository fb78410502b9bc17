"""Calls cancelled, interrupted or timed out after the provider got them are charged their hold.

Each path runs against the real provider double and on the memory store and real Redis.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import pytest

from costrouter import CostRouter
from costrouter.budget import BudgetPolicy, BudgetRef
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from costrouter.testing.redis_server import free_port
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "write a long story"}]
BACKENDS = [pytest.param("memory", id="memory"), pytest.param("redis", id="redis")]
SLOW = Reply(delay=30.0)  # the double drops the answer when the client goes away


@pytest.fixture(params=BACKENDS)
def store_section(request: pytest.FixtureRequest) -> dict[str, Any]:
    section: dict[str, Any] = {"backend": request.param, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    if request.param == "redis":
        section["redis_url"] = request.getfixturevalue("redis_url")
        # The per-call path (leases are the default): these tests read each hold and settle in Redis
        # as the call makes it; test_budget_leases.py and the fault invariants cover leases.
        section["lease"] = {"enabled": False}
    return section


class Routers:
    """Routers with one session budget on the module's provider double; shut down at the end."""

    def __init__(self, provider: ProviderDouble, capture: TelemetryCapture, store: dict[str, Any]) -> None:
        self.provider = provider
        self.capture = capture
        self.store = store
        self.made: list[CostRouter] = []

    def router(self, on_interrupted: str = "charge_hold") -> CostRouter:
        policy = {
            "store": self.store,
            "defaults": {"on_interrupted": on_interrupted},
            "budgets": [{"scope": "session", "limit_usd": 1.0}],
        }
        router = CostRouter(
            router_config(self.provider.base_url),
            budgets=policy,
            tracer_provider=self.capture.tracer_provider,
            meter_provider=self.capture.meter_provider,
        )
        self.made.append(router)
        return router

    def close(self) -> None:
        for router in self.made:
            router.shutdown()


@pytest.fixture
def routers(provider: ProviderDouble, capture: TelemetryCapture, store_section: dict[str, Any]) -> Iterator[Routers]:
    provider.reset()
    made = Routers(provider, capture, store_section)
    yield made
    made.close()


def session(router: CostRouter, session_id: str) -> BudgetRef:
    assert isinstance(router.policy, BudgetPolicy)
    (ref,) = router.policy.budgets_for(session_id=session_id)
    return ref


def the_span_attributes(capture: TelemetryCapture) -> dict[str, Any]:
    (span,) = capture.call_spans()
    return dict(span.attributes or {})


def hold_of(attributes: dict[str, Any]) -> int:
    return usd_to_units(float(attributes[sc.BUDGET_ESTIMATE_USD]))


def spent_and_held(router: CostRouter, session_id: str) -> tuple[int, int]:
    assert router.store is not None
    status = router.store.status(session(router, session_id))
    return status.spent_units, status.held_units


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


async def await_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def _sigint_raises_keyboard_interrupt() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, as in a shell, even where pytest started with SIGINT ignored.

    A background job (``cmd &`` in a script) inherits SIGINT ignored, and Python then installs no
    handler: the Ctrl-C these tests send would be dropped and the tests would fail for their runner.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupt_main_thread_when(condition: Callable[[], bool]) -> threading.Thread:
    """Send SIGINT to the main thread (a real Ctrl-C) once ``condition`` holds."""
    main = threading.main_thread().ident
    assert main is not None
    assert threading.current_thread() is threading.main_thread()

    def run() -> None:
        wait_until(condition)
        signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def assert_charged_hold(routers: Routers, router: CostRouter, session_id: str, holds: int = 1) -> None:
    attributes = the_span_attributes(routers.capture)
    charge = hold_of(attributes) * holds
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "estimated"
    assert usd_to_units(float(attributes[sc.BUDGET_SETTLED_USD])) == charge
    assert spent_and_held(router, session_id) == (charge, 0)
    (span,) = routers.capture.call_spans()
    assert any(event.name == sc.EVENT_INTERRUPTED_CHARGE for event in span.events)


# ---- plain calls -------------------------------------------------------------------------


async def warm(router: CostRouter, routers: Routers) -> None:
    """One answered call first, so that the timed call's request leaves at once (clients built)."""
    await router.aroute_completion("fast", MESSAGES, max_tokens=5, session_id="warm-up")
    routers.capture.clear()
    routers.provider.reset()


async def test_wait_for_timing_out_charges_the_hold(routers: Routers) -> None:
    router = routers.router()
    await warm(router, routers)
    routers.provider.set_default("fast-model", SLOW)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(router.aroute_completion("fast", MESSAGES, max_tokens=50, session_id="s-wait"), 2.0)
    assert routers.provider.request_count() == 1
    assert_charged_hold(routers, router, "s-wait")


async def test_an_asyncio_timeout_block_charges_the_hold(routers: Routers) -> None:
    router = routers.router()
    await warm(router, routers)
    routers.provider.set_default("fast-model", SLOW)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2.0):
            await router.aroute_completion("fast", MESSAGES, max_tokens=50, session_id="s-block")
    assert routers.provider.request_count() == 1
    assert_charged_hold(routers, router, "s-block")


async def test_a_cancelled_task_charges_the_hold_and_stays_cancelled(routers: Routers) -> None:
    router = routers.router()
    routers.provider.set_default("fast-model", SLOW)
    task = asyncio.create_task(router.aroute_completion("fast", MESSAGES, max_tokens=50, session_id="s-cancel"))
    await await_until(lambda: routers.provider.request_count() == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert_charged_hold(routers, router, "s-cancel")


async def test_a_cancellation_repeated_during_the_settle_cannot_cut_it_short(routers: Routers) -> None:
    router = routers.router()
    routers.provider.set_default("fast-model", SLOW)
    task = asyncio.create_task(router.aroute_completion("fast", MESSAGES, max_tokens=50, session_id="s-twice"))
    await await_until(lambda: routers.provider.request_count() == 1)
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_charged_hold(routers, router, "s-twice")


def test_ctrl_c_during_a_sync_call_charges_the_hold_and_re_raises(routers: Routers) -> None:
    router = routers.router()
    routers.provider.set_default("fast-model", SLOW)
    interrupter = interrupt_main_thread_when(lambda: routers.provider.request_count() == 1)
    with pytest.raises(KeyboardInterrupt):
        router.route_completion("fast", MESSAGES, max_tokens=50, session_id="s-ctrl-c")
    interrupter.join()
    assert_charged_hold(routers, router, "s-ctrl-c")


def test_a_litellm_timeout_charges_the_hold_of_every_timed_out_attempt(routers: Routers) -> None:
    router = routers.router()
    routers.provider.set_default("slow-model", Reply(delay=1.0))  # the slow group times out at 0.3 s
    with pytest.raises(litellm.Timeout):
        router.route_completion("slow", MESSAGES, max_tokens=50, session_id="s-timeout")
    attempts = routers.provider.request_count()
    assert attempts == 2  # the first attempt and one retry, each received by the provider
    assert_charged_hold(routers, router, "s-timeout", holds=attempts)


async def test_an_async_litellm_timeout_charges_the_hold_too(routers: Routers) -> None:
    router = routers.router()
    routers.provider.set_default("slow-model", Reply(delay=1.0))
    with pytest.raises(litellm.Timeout):
        await router.aroute_completion("slow", MESSAGES, max_tokens=50, session_id="s-atimeout")
    assert_charged_hold(routers, router, "s-atimeout", holds=routers.provider.request_count())


def test_a_timeout_after_a_refused_retry_counts_only_the_timed_out_attempt(routers: Routers) -> None:
    router = routers.router()
    routers.provider.script("slow-model", Fail(500), Reply(delay=1.0))
    with pytest.raises(litellm.Timeout):
        router.route_completion("slow", MESSAGES, max_tokens=50, session_id="s-mixed")
    assert routers.provider.request_count() == 2
    assert_charged_hold(routers, router, "s-mixed", holds=1)


async def test_release_policy_charges_nothing_for_an_interrupted_call(routers: Routers) -> None:
    router = routers.router(on_interrupted="release")
    await warm(router, routers)
    routers.provider.set_default("fast-model", SLOW)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(router.aroute_completion("fast", MESSAGES, max_tokens=50, session_id="s-rel"), 2.0)
    assert routers.provider.request_count() == 1
    assert spent_and_held(router, "s-rel") == (0, 0)
    assert the_span_attributes(routers.capture)[sc.BUDGET_SETTLED_USD] == 0.0


async def test_a_failure_the_provider_answered_still_releases(routers: Routers) -> None:
    router = routers.router()
    routers.provider.set_default("slow-model", Fail(500))
    with pytest.raises(litellm.InternalServerError):
        await router.aroute_completion("slow", MESSAGES, max_tokens=50, session_id="s-500")
    assert spent_and_held(router, "s-500") == (0, 0)


# ---- streams -----------------------------------------------------------------------------

LONG_STREAM = Reply(completion_tokens=40, chunk_delay=0.5)


class Progress:
    """How many chunks a consumer has read so far (read from another task or thread)."""

    def __init__(self) -> None:
        self.chunks = 0

    def read(self, stream: Any) -> None:
        for _ in stream:
            self.chunks += 1

    async def aread(self, stream: Any) -> None:
        async for _ in stream:
            self.chunks += 1


async def test_a_stream_cancelled_mid_way_charges_the_hold(routers: Routers) -> None:
    router = routers.router()
    routers.provider.set_default("fast-model", LONG_STREAM)
    progress = Progress()

    async def consume() -> None:
        stream = await router.aroute_completion("fast", MESSAGES, stream=True, max_tokens=50, session_id="s-acut")
        await progress.aread(stream)

    task = asyncio.create_task(consume())
    await await_until(lambda: progress.chunks >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert the_span_attributes(routers.capture)[sc.ROUTER_STREAM_OUTCOME] == "failed"
    assert_charged_hold(routers, router, "s-acut")


def test_ctrl_c_during_a_sync_stream_charges_the_hold(routers: Routers) -> None:
    router = routers.router()
    routers.provider.set_default("fast-model", LONG_STREAM)
    progress = Progress()
    stream = router.route_completion("fast", MESSAGES, stream=True, max_tokens=50, session_id="s-cut")
    interrupter = interrupt_main_thread_when(lambda: progress.chunks >= 2)
    with pytest.raises(KeyboardInterrupt):
        progress.read(stream)
    interrupter.join()
    assert_charged_hold(routers, router, "s-cut")


async def test_release_policy_charges_a_cancelled_stream_what_it_delivered(routers: Routers) -> None:
    router = routers.router(on_interrupted="release")
    routers.provider.set_default("fast-model", LONG_STREAM)
    progress = Progress()

    async def consume() -> None:
        stream = await router.aroute_completion("fast", MESSAGES, stream=True, max_tokens=50, session_id="s-arel")
        await progress.aread(stream)

    task = asyncio.create_task(consume())
    await await_until(lambda: progress.chunks >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    attributes = the_span_attributes(routers.capture)
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "counted"
    settled = usd_to_units(float(attributes[sc.BUDGET_SETTLED_USD]))
    assert 0 < settled < hold_of(attributes)
    assert spent_and_held(router, "s-arel") == (settled, 0)


async def test_a_stream_block_cancelled_between_chunks_charges_the_hold(routers: Routers) -> None:
    router = routers.router()
    routers.provider.set_default("fast-model", LONG_STREAM)
    progress = Progress()

    async def consume() -> None:
        stream = await router.aroute_completion("fast", MESSAGES, stream=True, max_tokens=50, session_id="s-block")
        async with stream:
            async for _ in stream:
                progress.chunks += 1
                await asyncio.sleep(60)  # the application's own work between chunks

    task = asyncio.create_task(consume())
    await await_until(lambda: progress.chunks >= 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_charged_hold(routers, router, "s-block")


def test_ctrl_c_in_a_sync_stream_block_between_chunks_charges_the_hold(routers: Routers) -> None:
    router = routers.router()
    routers.provider.set_default("fast-model", Reply(completion_tokens=6, chunk_delay=0.2))
    stream = router.route_completion("fast", MESSAGES, stream=True, max_tokens=50, session_id="s-sblock")

    def read_then_interrupted() -> None:
        with stream:
            for _ in stream:
                raise KeyboardInterrupt  # Ctrl-C landing in the application's code between chunks

    with pytest.raises(KeyboardInterrupt):
        read_then_interrupted()
    assert_charged_hold(routers, router, "s-sblock")


def test_a_connection_refused_before_sending_charges_nothing(
    provider: ProviderDouble, capture: TelemetryCapture, store_section: dict[str, Any]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: the request never leaves
    router = CostRouter(
        router_config(closed),
        budgets={"store": store_section, "budgets": [{"scope": "session", "limit_usd": 1.0}]},
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    # LiteLLM reports a refused connection as an InternalServerError ("Connection error").
    with pytest.raises((litellm.APIConnectionError, litellm.InternalServerError)):
        router.route_completion("fast", MESSAGES, max_tokens=50, session_id="s-refused")
    assert spent_and_held(router, "s-refused") == (0, 0)
    assert the_span_attributes(capture).get(sc.ROUTER_USAGE_SOURCE) != "estimated"
    router.shutdown()
