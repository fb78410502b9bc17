"""A router built before a ``fork()`` (gunicorn ``--preload``, Celery's prefork pool) keeps the books in every child.

Before, a forked child kept the parent's lease owner: the children's lease messages read as
replays of one another's (each applied once by sequence number), and two children of 10 calls each
put 10 calls' spend in Redis; with a call in the parent before the fork, only the parent's. The
child also appended to the parent's journal file, and its threads (the lease flusher, the span
export) did not exist. Now each child renews them (:mod:`costrouter.forks`).
"""

from __future__ import annotations

import asyncio
import os
import select
import warnings
from typing import Any

from costrouter import CostRouter
from costrouter.config.settings import Settings
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.otel.exporters import configure_telemetry
from costrouter.testing import OtlpReceiver, ProviderDouble, TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "hello"}]
CHILDREN = 2
CALLS = 3  # sync calls, then as many async ones, in each child


def _policy(redis_url: str, prefix: str) -> dict[str, Any]:
    return {
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix},  # leases: the default
        "budgets": [
            {"scope": "global", "limit_usd": 100, "window": "total"},
            {"scope": "session", "limit_usd": 10, "window": "total"},
        ],
    }


def _child(router: CostRouter, index: int, parent_journal: str | None) -> int:
    """The child's work; its exit code says what went wrong (0: nothing)."""
    guard = router.guard
    shared_journal = guard is None or guard.journal is None or str(guard.journal.path) == parent_journal
    for _ in range(CALLS):
        router.route_completion("fast", MESSAGES, max_tokens=5, session_id=f"child-{index}")

    async def calls() -> None:
        for _ in range(CALLS):
            await router.aroute_completion("fast", MESSAGES, max_tokens=5, session_id=f"child-{index}")

    asyncio.run(calls())
    router.shutdown()
    return 3 if shared_journal else 0


def _fork_children(router: CostRouter, parent_journal: str | None) -> list[int]:
    pids = []
    for index in range(CHILDREN):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: forking a process with threads
            pid = os.fork()
        if pid == 0:  # the child: never back into pytest
            code = 4
            try:
                code = _child(router, index, parent_journal)
            finally:
                os._exit(code)
        pids.append(pid)
    return pids


def test_forked_children_each_keep_their_own_books(
    redis_url: str, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.reset()
    policy = _policy(redis_url, f"fork{os.getpid()}")
    router = CostRouter(
        router_config(provider.base_url),
        budgets=policy,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    try:
        router.route_completion("fast", MESSAGES, max_tokens=5, session_id="parent")  # the parent holds leases
        (span,) = capture.call_spans()
        per_call = usd_to_units(float(span.attributes[sc.LLM_USAGE_COST_USD]))  # type: ignore[arg-type,index]
        journal = router.guard.journal.path if router.guard and router.guard.journal else None
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in _fork_children(router, str(journal))]
    finally:
        router.shutdown()

    reader = CostRouter(router_config(provider.base_url), budgets=policy)
    try:
        budgets = reader.budgets
        assert budgets is not None
        (total,) = budgets.status("global")
        children = [budgets.status("session", f"child-{index}")[0] for index in range(CHILDREN)]
    finally:
        reader.shutdown()
    calls = 1 + CHILDREN * 2 * CALLS
    assert (total.spent_units, total.held_units, total.active_holds) == (calls * per_call, 0, 0)
    assert [child.spent_units for child in children] == [2 * CALLS * per_call] * CHILDREN
    assert len(provider.requests) == calls
    assert codes == [0] * CHILDREN, "3: a child wrote to the parent's journal file"


def test_a_forked_child_exports_its_spans_from_its_own_thread(otlp_env: OtlpReceiver) -> None:
    setup = configure_telemetry(Settings(exporter="otlp", metric_export_interval_seconds=60), set_global=False)
    with ProviderDouble() as provider:
        router = CostRouter(
            router_config(provider.base_url), tracer_provider=setup.tracer_provider, meter_provider=setup.meter_provider
        )
        go_on, told = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: two calls, then wait for the parent, and exit without a shutdown
            code = 4
            try:
                for _ in range(2):
                    router.route_completion("fast", MESSAGES, max_tokens=5, session_id="forked-child")
                ready, _, _ = select.select([go_on], [], [], 60)
                code = 0 if ready else 5
            finally:
                os._exit(code)
        try:
            spans = otlp_env.wait_for_spans(2)
        finally:
            os.write(told, b"x")
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            os.close(go_on)
            os.close(told)
            router.shutdown()
            setup.shutdown()
    assert code == 0
    calls = [span for span in spans if span.name == "router.completion/fast"]
    assert [span.attributes[sc.SESSION_ID] for span in calls] == ["forked-child"] * 2
