"""A worker whose settle journal cannot grow (RLIMIT_FSIZE), routing leased calls from threads.

Usage: python -m tests.workers.full_journal_calls POLICY_JSON PROVIDER_URL LIMIT_BYTES THREADS CALLS

The router is built first (its journal file exists, empty); then no file of this process
may pass ``LIMIT_BYTES``, as on a full disk or under a quota. Each thread routes
``CALLS`` calls for a session of its own. The worker prints, as JSON, how the calls
ended, the cost on their spans per session, the lease fault, the spans' lease events and
what ``costrouter budget status`` said meanwhile; then it shuts the router down (its
leases carry their spend to Redis).
"""

from __future__ import annotations

import json
import resource
import sys
import threading
from collections import defaultdict
from pathlib import Path

from typer.testing import CliRunner

from costrouter import CostRouter
from costrouter.budget.factory import leased_store_of
from costrouter.cli.commands import app
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import TelemetryCapture
from tests.integration.faults import TEAM, Outcomes, _route
from tests.routing import router_config


def main(policy_file: str, provider_url: str, limit: int, threads: int, calls: int) -> None:
    budgets = json.loads(Path(policy_file).read_text())
    capture = TelemetryCapture()
    router = CostRouter(router_config(provider_url), budgets=budgets, tracer_provider=capture.tracer_provider)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    outcomes = Outcomes()
    sessions = [f"s{index}" for index in range(threads)]
    workers = [threading.Thread(target=_route, args=(router, s, calls, outcomes)) for s in sessions]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    status = CliRunner().invoke(app, ["budget", "status", "team", TEAM, "--budgets", policy_file])
    leased = leased_store_of(router.store)
    spans = capture.call_spans()
    span_units: dict[str, int] = defaultdict(int)
    for span in spans:
        attributes = span.attributes or {}
        cost = float(attributes.get(sc.LLM_USAGE_COST_USD, 0.0))  # type: ignore[arg-type]
        span_units[str(attributes.get(sc.SESSION_ID))] += usd_to_units(cost)
    report = {
        "completed": outcomes.completed,
        "rejected": outcomes.rejected,
        "store_errors": outcomes.store_errors,
        "other_errors": outcomes.other_errors,
        "span_units": span_units,
        "fault": None if leased is None else leased.fault,
        "degraded_events": sum(1 for s in spans for e in s.events if e.name == sc.EVENT_LEASE_DEGRADED),
        "spans_with_fault": sum(1 for s in spans if sc.BUDGET_LEASE_FAULT in (s.attributes or {})),
        "spans": len(spans),
        "status_exit": status.exit_code,
        "status": status.stdout,
    }
    router.shutdown()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
