"""A worker process that builds a router, forks children that call through it, and reports the books' inputs.

Usage: python -m tests.workers.forked_calls BASE_URL REDIS_URL KEY_PREFIX PARENT_CALLS [OTLP_ENDPOINT]

A fresh process, so that nothing ran a LiteLLM call before the fork but what ``PARENT_CALLS``
asks (LiteLLM 1.110's native core refuses calls in a child forked after its first one). Builds a
router on the default (leased) Redis store with a session and a global budget, makes
``PARENT_CALLS`` calls, then forks :data:`CHILDREN` children. Each child makes :data:`CALLS` sync
calls then as many async ones in session ``child-<i>``, and sends the parent one JSON line: the
units its spans were charged, the first error's type name, whether its journal file is its own.
With ``OTLP_ENDPOINT`` the spans go there through costrouter's own export, and the children stay
alive (without a shutdown) until this process reads a line on stdin: the test sees their spans
arrive from their own export threads. Prints ``children <json>``, waits for that line (OTLP
only), lets the children shut down, and prints ``done <json>`` with the parent's charged units
and the children's exit codes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import warnings
from typing import Any

from costrouter import CostRouter
from costrouter.config.settings import Settings
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.otel.exporters import configure_telemetry
from costrouter.testing import TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "hello"}]
CHILDREN = 2
CALLS = 3


def fork_policy(redis_url: str, prefix: str) -> dict[str, Any]:
    """A session and a global budget on Redis, leases on (the default)."""
    return {
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix},
        "budgets": [
            {"scope": "global", "limit_usd": 100, "window": "total"},
            {"scope": "session", "limit_usd": 10, "window": "total"},
        ],
    }


def fork() -> int:
    """``os.fork()``, without Python 3.12's warning about forking a process that has threads (here on purpose)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _charged(capture: TelemetryCapture | None) -> int:
    if capture is None:
        return 0
    return sum(usd_to_units(float(span.attributes[sc.LLM_USAGE_COST_USD])) for span in capture.call_spans())  # type: ignore[arg-type,index]


def _child(router: CostRouter, capture: TelemetryCapture | None, index: int, parent_journal: str) -> dict[str, Any]:
    guard = router.guard
    own_journal = guard is not None and guard.journal is not None and str(guard.journal.path) != parent_journal
    error = None
    try:
        for _ in range(CALLS):
            router.route_completion("fast", MESSAGES, max_tokens=5, session_id=f"child-{index}")

        async def calls() -> None:
            for _ in range(CALLS):
                await router.aroute_completion("fast", MESSAGES, max_tokens=5, session_id=f"child-{index}")

        asyncio.run(calls())
    except Exception as exc:  # reported to the test, which knows what the LiteLLM release allows
        error = type(exc).__name__
    return {"index": index, "charged": _charged(capture), "error": error, "own_journal": own_journal}


def main() -> None:
    base_url, redis_url, prefix, parent_calls = sys.argv[1:5]
    endpoint = sys.argv[5] if len(sys.argv) > 5 else None
    capture = None if endpoint else TelemetryCapture()
    if endpoint:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        setup = configure_telemetry(Settings(exporter="otlp", metric_export_interval_seconds=60), set_global=False)
        providers = {"tracer_provider": setup.tracer_provider, "meter_provider": setup.meter_provider}
    else:
        assert capture is not None
        providers = {"tracer_provider": capture.tracer_provider, "meter_provider": capture.meter_provider}
    router = CostRouter(router_config(base_url), budgets=fork_policy(redis_url, prefix), **providers)
    for _ in range(int(parent_calls)):
        router.route_completion("fast", MESSAGES, max_tokens=5, session_id="parent")
    parent_charged = _charged(capture)
    guard = router.guard
    parent_journal = str(guard.journal.path) if guard is not None and guard.journal is not None else ""
    reports, gates, pids = os.pipe(), [], []
    for index in range(CHILDREN):
        gate = os.pipe()
        pid = fork()
        if pid == 0:
            code = 4
            try:
                if capture is not None:
                    capture.clear()  # the parent's spans are the parent's
                report = _child(router, capture, index, parent_journal)
                os.write(reports[1], (json.dumps(report) + "\n").encode())
                os.read(gate[0], 1)  # the parent says when: with OTLP, after the test saw the spans
                router.shutdown()
                code = 0
            finally:
                os._exit(code)
        gates.append(gate)
        pids.append(pid)
    with os.fdopen(reports[0]) as lines:
        os.close(reports[1])
        children = sorted((json.loads(lines.readline()) for _ in range(CHILDREN)), key=lambda report: report["index"])
        print("children", json.dumps(children), flush=True)
        if endpoint:
            sys.stdin.readline()
        for gate in gates:
            os.write(gate[1], b"x")
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    router.shutdown()
    if endpoint:
        setup.shutdown()
    print("done", json.dumps({"parent_charged": parent_charged, "codes": codes}), flush=True)


if __name__ == "__main__":
    main()
