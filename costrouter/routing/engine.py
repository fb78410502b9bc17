"""CallEngine: costrouter's call decisions, budgets and telemetry without a LiteLLM Router.

:class:`costrouter.routing.router.CostRouter` adds the Router it routes through; the LiteLLM
proxy's plugin (:mod:`costrouter.proxy`) runs this alone around the proxy's own Router, so the
proxy process holds one Router (each LiteLLM Router adds its callbacks to every call in the
process).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from costrouter.budget import BudgetPolicy, BudgetStore, MemoryBudgetStore, load_policy, store_from_config
from costrouter.budget.alerts import AlertDispatcher
from costrouter.budget.background import StoreWorker
from costrouter.budget.factory import leased_store_of
from costrouter.budget.renewal import HoldRenewer
from costrouter.budget.settling import build_guard
from costrouter.budget.view import BudgetsView
from costrouter.config.groups import RouterConfig, load_router_config, parse_router_config
from costrouter.config.reader import validate
from costrouter.config.settings import Settings
from costrouter.ops import Flow, Op, RouteOp, SleepOp, WaitOp, adrive, await_wait, drive, wait
from costrouter.otel.attempts import attempt_tracker
from costrouter.otel.backends import backend as backend_preset
from costrouter.otel.exporters import TelemetrySetup, configure_telemetry
from costrouter.otel.telemetry import Telemetry
from costrouter.routing.calls import CallPlanner

T = TypeVar("T")


def _hold_ttl(store: BudgetStore, policy: BudgetPolicy) -> int:
    """The TTL the store gives holds (a store passed in may have its own settings)."""
    config = getattr(store, "config", None)
    return int(getattr(config, "hold_ttl_seconds", policy.store.hold_ttl_seconds))


class CallEngine:
    """The model-group config, budget policy and store, telemetry and call planner of costrouter.

    Everything of :class:`~costrouter.routing.router.CostRouter` but the LiteLLM Router: the
    planner's flows run here with their store ops; a Router call (``RouteOp``) is the
    caller's. Arguments as for ``CostRouter``; ``guard`` retries, journals and replays settles
    (:mod:`costrouter.budget.settling`).
    """

    def __init__(
        self,
        config: RouterConfig | Mapping[str, Any],
        *,
        budgets: BudgetPolicy | Mapping[str, Any] | None = None,
        store: BudgetStore | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        settings: Settings | None = None,
        source: str = "<config>",
        budgets_source: str = "<budgets>",
    ) -> None:
        self.settings = settings or Settings()
        self.config = parse_router_config(config, source)
        self.policy = None if budgets is None else validate(BudgetPolicy, budgets, budgets_source)
        if self.policy is not None:
            self.policy.check_downgrade_targets(self.config.groups, budgets_source)
        self.store = store
        if self.store is None and self.policy is not None:
            self.store = store_from_config(self.policy.store, redis_url=self.settings.redis_url)
        self.telemetry_setup: TelemetrySetup | None = None
        if tracer_provider is None and meter_provider is None and self.settings.exporter != "none":
            self.telemetry_setup = configure_telemetry(self.settings)
            tracer_provider = self.telemetry_setup.tracer_provider
            meter_provider = self.telemetry_setup.meter_provider
        self.telemetry = Telemetry(
            tracer_provider,
            meter_provider,
            capture_content=self.settings.capture_content,
            content_max_chars=self.settings.content_max_chars,
            backend=backend_preset(self.settings.backend),
            genai_cost=self.settings.genai_cost_attributes,
        )
        self._planner = CallPlanner(self.config, self.telemetry, attempt_tracker(), self.policy)
        if self.store is not None and self.policy is not None:
            self._planner.renewer = HoldRenewer(self.store, _hold_ttl(self.store, self.policy))
        self.guard = (
            None if self.policy is None or self.store is None else build_guard(self.policy, self.store, self.telemetry)
        )
        self._planner.guard = self.guard
        self.store_worker: StoreWorker | None = None
        """Store calls no caller waits for, on a remote store: the learned token ratios after the first read, and
        the epoch check the interval makes due.

        ``store_worker.wait()`` returns once those submitted have landed (for a reader that must see them).
        """
        if self.store is not None and self.policy is not None and not isinstance(self.store, MemoryBudgetStore):
            self.store_worker = StoreWorker(self.store)
            self._planner.ratios.background = self.store_worker.submit
            if self.guard is not None:
                self.guard.background = self.store_worker.submit
        leased = leased_store_of(self.store)
        if leased is not None:
            leased.alert_sink = self._planner.lease_alert

    @classmethod
    def from_files(
        cls,
        router: str | Path,
        budgets: str | Path | None = None,
        **options: Any,
    ) -> Self:
        """Build from a model-group YAML (either format) and an optional budget policy YAML."""
        config = load_router_config(router)
        policy = load_policy(budgets) if budgets is not None else None
        return cls(config, budgets=policy, source=str(router), budgets_source=str(budgets), **options)

    @property
    def budgets(self) -> BudgetsView | None:
        """Spend, holds and remaining per scope and id (``None`` without a budget policy).

        >>> router.budgets.status("session", "sess-1")[0].remaining_units
        """
        if self.policy is None or self.store is None:
            return None
        return BudgetsView(self.policy, self.store)

    @property
    def planner(self) -> CallPlanner:
        """The decisions of this engine's calls (estimates, budgets, attributes), for :mod:`costrouter.proxy`."""
        return self._planner

    async def arun_flow(self, flow: Flow[T]) -> T:
        """Run one of the planner's flows, awaiting its store ops (:func:`costrouter.ops.adrive`)."""
        return await adrive(flow, self._aexecute)

    def run_flow(self, flow: Flow[T]) -> T:
        """Run one of the planner's flows, blocking on its store ops (:func:`costrouter.ops.drive`)."""
        return drive(flow, self._execute)

    # ---- I/O -----------------------------------------------------------------------------
    def _execute(self, op: Op) -> Any:
        if isinstance(op, RouteOp):
            raise RuntimeError("a Router call on an engine without a Router")  # a flow bug, not a user error
        if isinstance(op, SleepOp):
            return time.sleep(op.seconds)
        if isinstance(op, WaitOp):
            return wait(op)
        return getattr(self._store(), op.method)(*op.args, **op.kwargs)

    async def _aexecute(self, op: Op) -> Any:
        if isinstance(op, RouteOp):
            raise RuntimeError("a Router call on an engine without a Router")  # a flow bug, not a user error
        if isinstance(op, SleepOp):
            return await asyncio.sleep(op.seconds)
        if isinstance(op, WaitOp):
            return await await_wait(op)
        return await getattr(self._store(), f"a{op.method}")(*op.args, **op.kwargs)

    def _store(self) -> BudgetStore:
        if self.store is None:
            raise RuntimeError("a budget operation without a budget store")  # a flow bug, not a user error
        return self.store

    def _drive(self, flow: Any) -> None:
        drive(flow, self._execute)

    async def _adrive(self, flow: Any) -> None:
        await adrive(flow, self._aexecute)

    @property
    def alerts(self) -> AlertDispatcher:
        """The budget alert sender of this router (``flush()``, ``stats``)."""
        return self._planner.alerts

    def shutdown(self) -> None:
        """Flush spans and metrics and close the budget store.

        Providers costrouter set up from settings are shut down; an application's own
        providers are only flushed (they are the application's to shut down).
        """
        if self.telemetry_setup is not None:
            self.telemetry_setup.shutdown()
        else:
            for provider in (self.telemetry.tracer_provider, self.telemetry.meter_provider):
                flush = getattr(provider, "force_flush", None)
                if callable(flush):
                    flush()
        if self._planner.renewer is not None:
            self._planner.renewer.stop()
        if self.store_worker is not None:
            self.store_worker.close()
        if self.guard is not None:
            self.guard.close()
        self._planner.alerts.close()
        if self.store is not None:
            self.store.close()
