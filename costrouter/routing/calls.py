"""One routed call, from context to settled cost, as a flow of I/O ops (see :mod:`ops`).

Everything here is plain computation; the only I/O (budget store, LiteLLM Router)
is yielded as ops, so the sync and async entry points share all of it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import litellm
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from costrouter.budget import BudgetPolicy, BudgetRef, ReserveOutcome
from costrouter.budget.alerts import AlertDispatcher, AlertSettings
from costrouter.budget.alerts.message import budget_alert
from costrouter.budget.renewal import HoldRenewer
from costrouter.budget.reserving import (
    Refusal,
    Reservation,
    note_unheld_settle,
    reserve_flow,
    settle_attributes,
    settle_flow,
)
from costrouter.budget.settling import StoreGuard
from costrouter.config.budgets import PromptEstimate
from costrouter.config.groups import RouterConfig
from costrouter.config.reachability import reachable_group_sets
from costrouter.context import Caller
from costrouter.errors import BudgetExceededError, BudgetStoreError
from costrouter.money import units_to_usd, usd_to_units
from costrouter.ops import Flow, RouteOp
from costrouter.otel import semconv as sc
from costrouter.otel.attempts import CALL_ID_KEY, AttemptTracker
from costrouter.otel.histograms import AttributeSet
from costrouter.otel.models import model_facts, primary_deployment_id
from costrouter.otel.outcome import Outcome
from costrouter.otel.span_attributes import set_attributes
from costrouter.otel.telemetry import Telemetry
from costrouter.pricing.prices import PriceBook, WorstCase, estimate_units, output_cap
from costrouter.pricing.token_ratios import TokenRatios
from costrouter.pricing.tokens import prompt_token_bound
from costrouter.pricing.usage_bounds import (
    deployment_limits,
)
from costrouter.routing.answers import AnswerPricer, DeploymentFacts, Observed
from costrouter.routing.interruptions import charge_estimated, interrupted_call_charge
from costrouter.routing.needs import check_extras
from costrouter.routing.operations import CHAT, Operation
from costrouter.routing.operations.modes import check_mode, deployment_mode
from costrouter.routing.routed_call import RoutedCall
from costrouter.routing.wildcards import GroupResolver

logger = logging.getLogger("costrouter")

_MAX_DOWNGRADES = 3
_BUDGET_SETS = 4096
"""The most callers' budget instances :meth:`CallPlanner._budgets_of` keeps (then it starts over)."""


def _provider_of(model: str) -> str:
    if "/" in model:
        return model.split("/", 1)[0]
    try:
        return str(litellm.get_llm_provider(model)[1])
    except Exception:  # an unknown bare model name has no provider LiteLLM can tell
        return "unknown"


class CallPlanner:
    """The decisions of routed calls: estimates, budgets, attributes. No I/O."""

    def __init__(
        self,
        config: RouterConfig,
        telemetry: Telemetry,
        tracker: AttemptTracker,
        policy: BudgetPolicy | None,
    ) -> None:
        self.config = config
        self.telemetry = telemetry
        self.tracker = tracker
        self.policy = policy
        self.renewer: HoldRenewer | None = None
        """Keeps live calls' holds from expiring (set by the router when it has a store)."""
        self.guard: StoreGuard | None = None
        if policy is None:  # written with the span's other start attributes, not by a call of its own
            telemetry.start_attributes[sc.BUDGET_OUTCOME] = "unbudgeted"
        self.prices = PriceBook.from_config(config)
        self._budget_sets: dict[tuple[str | None, str | None, str | None, tuple[str, ...]], tuple[BudgetRef, ...]] = {}
        """The budget instances of each caller's ids met (:meth:`_budgets_of`)."""
        self.resolver = GroupResolver(config)
        self.alerts = AlertDispatcher(policy.alerts if policy else AlertSettings(), telemetry.meter_provider)
        self._reachable = reachable_group_sets(config.fallback_graph())
        self._worst_by_reach: dict[frozenset[str], tuple[WorstCase, tuple[str, ...]]] = {}
        """Each reachable set's worst case and deployment ids (groups of one fallback ring share one set)."""
        self.deployments = {
            deployment_id: DeploymentFacts(
                group,
                deployment.model,
                _provider_of(deployment.model),
                self.prices.prices[deployment_id],
                deployment_mode(deployment),
            )
            for group, deployment_id, deployment in config.deployments()
        }
        self.models = {
            deployment_id: model_facts(deployment, self.deployments[deployment_id].provider)
            for _, deployment_id, deployment in config.deployments()
        }
        largest_outputs = {d: price.max_output_tokens if price else None for d, price in self.prices.prices.items()}
        self.usage_limits = {
            deployment_id: deployment_limits(deployment.model, largest_outputs[deployment_id])
            for _, deployment_id, deployment in config.deployments()
        }
        """Each deployment's largest plausible usage figures (:mod:`costrouter.pricing.usage_bounds`)."""
        self.answers = AnswerPricer(self.deployments, self.models, self.usage_limits, self.resolver, policy)
        """Prices each call's answer (:meth:`AnswerPricer.outcome_for`)."""
        self._primary_models = {
            group: self.models[primary_deployment_id(config, group)] for group, _, _ in config.deployments()
        }
        """Each group's first-priority deployment's model (what a call span starts naming)."""
        self._decision_sets: dict[tuple[str, str], AttributeSet] = {}
        """The budget-decision metric's attribute sets (a few scopes and outcomes: never many)."""
        self._mode_checked: set[tuple[str, str]] = set()
        """(operation, group) pairs whose deployments' modes were found to serve the operation."""
        model_names = {deployment_id: facts.model for deployment_id, facts in self.deployments.items()}
        self.ratios = TokenRatios(policy.defaults.prompt if policy else PromptEstimate(), model_names)
        unpriced = self.prices.unpriced()
        if unpriced:
            logger.warning(
                "costrouter: deployments %s have no price in the file nor in LiteLLM's price map; "
                "estimates use the budget policy's default price",
                ", ".join(unpriced),
            )
        for warning in (*self.prices.suspect_free(), *self.prices.inexact()):
            logger.warning("costrouter: %s", warning)

    # ---- the whole call ----------------------------------------------------------------
    def completion_flow(
        self,
        group: str,
        messages: Sequence[Mapping[str, Any]],
        caller: Caller,
        request: dict[str, Any],
    ) -> Flow[Any]:
        """:meth:`call_flow` of a chat completion."""
        return self.call_flow(CHAT, group, messages, caller, request)

    def call_flow(
        self,
        operation: Operation,
        group: str,
        messages: Sequence[Mapping[str, Any]],
        caller: Caller,
        request: dict[str, Any],
    ) -> Flow[Any]:
        """Route one call of ``operation``'s kind: span, budgets, the Router call, settle, record.

        Returns LiteLLM's response; for a stream, ``(call, stream)`` so the caller
        can wrap the stream and finish the call when it ends.
        """
        call = self._begin(operation, group, messages, caller, request)
        token = otel_context.attach(trace.set_span_in_context(call.span))
        try:
            try:
                yield from self._reserve(call)
                call.record.group = call.group
                response = yield RouteOp(self.route_kwargs(call), operation.method, operation.sync_through_loop)
            except BaseException as exc:
                yield from self.fail_flow(call, exc)
                raise
            if call.stream:
                return call, response
            yield from self.finish_flow(call, self.answers.outcome_of_response(call, response))
            return response
        finally:
            otel_context.detach(token)

    def hold_flow(
        self,
        operation: Operation,
        group: str,
        messages: Sequence[Mapping[str, Any]],
        caller: Caller,
        request: dict[str, Any],
    ) -> Flow[RoutedCall]:
        """The first half of :meth:`call_flow` for a router that is not ours (the LiteLLM proxy's).

        Starts the span and holds every applicable budget; a refusal or a failed store
        finishes the call (span, metrics) and raises. :meth:`route_kwargs` then says what
        the Router must be called with, :meth:`response_flow`, :meth:`fail_flow` or
        :func:`costrouter.routing.streaming.stream_finish_flow` end the call.
        """
        call = self._begin(operation, group, messages, caller, request)
        try:
            yield from self._reserve(call)
        except BaseException as exc:
            yield from self.fail_flow(call, exc)
            raise
        call.record.group = call.group
        return call

    def response_flow(self, call: RoutedCall, response: Any) -> Flow[None]:
        """Settle and record a call held by :meth:`hold_flow` from the response the Router returned."""
        yield from self.finish_flow(call, self.answers.outcome_of_response(call, response))

    def _begin(
        self,
        operation: Operation,
        group: str,
        messages: Sequence[Mapping[str, Any]],
        caller: Caller,
        request: dict[str, Any],
    ) -> RoutedCall:
        requested = group
        resolved = self.resolver.resolve(requested)
        if resolved is None:
            known = ", ".join(sorted(self.config.groups))
            raise ValueError(f"unknown model group {requested!r}; the router has: {known}")
        group = resolved.group
        check_extras(operation.name, request)
        if (operation.name, group) not in self._mode_checked:
            check_mode(operation, group, {d: f.mode for d, f in self.deployments.items() if f.group == group})
            self._mode_checked.add((operation.name, group))
        call_id = os.urandom(16).hex()  # 128 random bits, as uuid4 without building a UUID
        stream = bool(request.get("stream"))
        model = self._primary_models.get(group) or self.models[primary_deployment_id(self.config, group)]
        wildcard = resolved if resolved.wildcard else None
        if wildcard is not None:
            primary = primary_deployment_id(self.config, group)
            model = self.resolver.facts(primary, wildcard.models[primary], self.deployments[primary].provider)
        span = self.telemetry.start_call_span(
            group,
            messages,
            caller,
            request,
            call_id,
            stream=stream,
            model=model,
            operation=(operation.name, operation.genai_name),
        )
        record = self.tracker.open(call_id)
        return RoutedCall(
            call_id=call_id,
            requested_group=group,
            group=group,
            messages=messages,
            request=dict(request),
            caller=caller,
            stream=stream,
            span=span,
            record=record,
            started=time.perf_counter(),
            operation=operation,
            model=model,
            routed_name=requested,
            wildcard=wildcard,
        )

    def route_kwargs(self, call: RoutedCall) -> dict[str, Any]:
        """The Router's arguments for ``call``: its group, the call id in metadata, the output cap, usage in streams."""
        kwargs = dict(call.request)
        kwargs["model"] = call.routed_name or call.group
        if call.operation.takes_messages:
            kwargs["messages"] = list(call.messages)
        key = call.operation.metadata_arg
        kwargs[key] = {**(kwargs.get(key) or {}), CALL_ID_KEY: call.call_id}
        if call.stream and call.operation.takes_messages:
            stream_options = dict(kwargs.get("stream_options") or {})
            stream_options.setdefault("include_usage", True)
            kwargs["stream_options"] = stream_options
        return kwargs

    # ---- budgets -----------------------------------------------------------------------
    def _estimate_units(self, policy: BudgetPolicy, call: RoutedCall, group: str) -> int:
        defaults = policy.defaults
        groups = self._reachable.get(group) or frozenset((group,))
        reach = self._worst_by_reach.get(groups)
        if reach is None:  # the policy's default price is fixed with the planner: built on a miss only
            deployment_ids = tuple(d for g in groups for d in self.prices.group_deployments.get(g, ()))
            worst_case = self.prices.worst_case(groups, self.answers.default_price)
            reach = self._worst_by_reach[groups] = (worst_case, deployment_ids)
        worst, deployment_ids = reach
        wildcard = call.wildcard
        if wildcard is not None and group == wildcard.group:
            # The hold covers the model the caller named, not the pattern: priced per call.
            called = {d: self.resolver.price(d, model) for d, model in wildcard.models.items()}
            worst = self.prices.worst_case(groups, self.answers.default_price, called)
        operation = call.operation
        if operation.usage_bound is not None:
            bound = operation.usage_bound(call.request, defaults)
            tier = call.request.get("service_tier")
            return estimate_units(bound.prompt_tokens, bound.output_tokens, worst, bound.units, bound.variant, tier)
        if call.prompt_tokens is None:
            call.prompt_tokens = operation.prompt_tokens(call.messages, call.request, defaults.prompt)
        ratio = self.ratios.ratio(deployment_ids)
        cap = 0
        if operation.output_arg is not None:
            requested = operation.requested_output(call.request)
            cap = output_cap(requested, worst, defaults.max_output_tokens)
            if requested is None:
                # Pass the cap on, so the hold is a true upper bound of what the call can cost.
                call.request[operation.output_arg] = cap
        prompt_bound = prompt_token_bound(call.prompt_tokens, ratio, defaults.prompt)
        output_bound = cap * operation.output_count(call.request)
        tier = call.request.get("service_tier")
        return estimate_units(prompt_bound, output_bound, worst, service_tier=tier)

    def _reserve(self, call: RoutedCall) -> Flow[None]:
        call.operation.check(call.messages, call.request)
        policy = self.policy
        if policy is None:  # budget.outcome=unbudgeted is a start attribute (__init__)
            return
        yield from self.ratios.refresh_flow()
        budgets = self._budgets_of(policy, call.caller)
        tried = {call.group}
        reservation_id = call.call_id
        downgraded_to: str | None = None
        while True:
            amount = self._estimate_units(policy, call, call.group)
            reservation = Reservation(reservation_id, budgets, amount, downgraded_to=downgraded_to)
            call.reservation = reservation
            if self.guard is not None:
                yield from self.guard.epoch_flow(call.span)
            try:
                result = yield from reserve_flow(budgets, reservation_id, amount)
            except BudgetStoreError as exc:
                self._on_store_error(call, reservation, exc, policy.store.on_store_error)
                return
            if self.guard is not None:  # a reserve that reconnected may have met an empty store
                yield from self.guard.after_reserve_flow(call.span)
            if not isinstance(result, Refusal):
                self._on_reserved(call, reservation, result)
                return
            target = result.budget.downgrade_to if result.budget.on_exceeded == "downgrade" else None
            if target is None or target in tried or len(tried) > _MAX_DOWNGRADES:
                reservation.outcome = "rejected"
                reservation.outcomes = [result.outcome]
                reservation.budgets = [result.budget]
                raise result.error()
            tried.add(target)
            call.group = call.routed_name = downgraded_to = target
            call.wildcard = None
            reservation_id = f"{call.call_id}~{target}"
            call.span.add_event(
                sc.EVENT_BUDGET_WARNING,
                {"budget": result.budget.name, "scope": result.budget.scope, "action": "downgrade", "to": target},
            )

    def _on_reserved(self, call: RoutedCall, reservation: Reservation, outcomes: list[ReserveOutcome]) -> None:
        reservation.outcomes = outcomes
        if self.renewer is not None:
            self.renewer.track(reservation.reservation_id, reservation.budgets)
        over = [budget for budget, outcome in zip(reservation.budgets, outcomes, strict=True) if not outcome.granted]
        if reservation.downgraded_to is not None:
            reservation.outcome = "downgraded"
        elif over:
            reservation.outcome = "warned"
            for budget in over:
                logger.warning(
                    "costrouter: budget %s for %s %r is over its limit (on_exceeded: warn)",
                    budget.name,
                    budget.scope,
                    budget.scope_id,
                )
                call.span.add_event(
                    sc.EVENT_BUDGET_WARNING, {"budget": budget.name, "scope": budget.scope, "scope_id": budget.scope_id}
                )
        set_attributes(call.span, reservation.attributes(), plain_values=True)

    def _on_store_error(self, call: RoutedCall, reservation: Reservation, error: BudgetStoreError, mode: str) -> None:
        reservation.outcome = "store_error"
        reservation.store_error = error
        call.span.add_event(sc.EVENT_STORE_ERROR, {"error": str(error), "on_store_error": mode})
        set_attributes(call.span, reservation.attributes())
        logger.warning("costrouter: budget store failed (%s): %s", mode, error)
        if mode == "fail_closed":
            raise error

    def _budgets_of(self, policy: BudgetPolicy, caller: Caller) -> list[BudgetRef]:
        """The budget instances ``caller``'s calls are charged to (:meth:`BudgetPolicy.budgets_for`), memoized.

        The policy is frozen, so the instances depend on the caller's ids alone; a session's calls
        (and a user's, a team's) meet the same ones, built once. At most ``_BUDGET_SETS`` sets are kept.
        """
        key = (caller.session_id, caller.user_id, caller.team_id, caller.tags)
        budgets = self._budget_sets.get(key)
        if budgets is None:
            budgets = tuple(
                policy.budgets_for(
                    session_id=caller.session_id, user_id=caller.user_id, team_id=caller.team_id, tags=caller.tags
                )
            )
            if len(self._budget_sets) >= _BUDGET_SETS:
                self._budget_sets.clear()
            self._budget_sets[key] = budgets
        return list(budgets)

    # ---- the end of a call ---------------------------------------------------------------
    def finish_flow(self, call: RoutedCall, outcome: Outcome, result: str | None = None) -> Flow[None]:
        """Settle the budgets with the actual cost, then write the span and the metrics."""
        if call.finished:
            return
        call.finished = True
        call.record.close_pending("failure" if outcome.error else "success", outcome.error)
        reservation = call.reservation
        if reservation is not None and reservation.outcome != "rejected":
            amount = outcome.cost_units if outcome.cost_units is not None else usd_to_units(outcome.cost_usd)
            if self.renewer is not None:
                self.renewer.forget(reservation.reservation_id)
            settled = yield from settle_flow(reservation, amount, self.guard)
            set_attributes(call.span, settle_attributes(reservation, settled, amount), plain_values=True)
            for journaled in reservation.journaled:
                call.span.add_event(sc.EVENT_SETTLE_JOURNALED, journaled.event_attributes())
            if self.guard is not None:
                self.guard.note_lease_fault(call.span, settled)
            for budget, settle in zip(reservation.budgets, settled, strict=False):
                for threshold in settle.alerts:
                    self._alert(call, budget, threshold, settle.spent_units, settle.window_id)
                if settle.unheld:
                    note_unheld_settle(call.span, self.telemetry.budget_unheld_settles, budget, settle)
            if outcome.usage_source == "reported":
                yield from self.ratios.observe_flow(outcome.deployment_id, outcome.prompt_tokens, call.prompt_tokens)
        latency = time.perf_counter() - call.started
        call_result = result or ("success" if outcome.error is None else "error")
        self.telemetry.end_call_span(call.span, outcome, call.record, latency, call.caller, started_model=call.model)
        self.telemetry.record_metrics(
            call.requested_group, outcome, call.record, latency, call_result, call.operation.genai_name
        )
        self._record_budget_metric(call)
        self.tracker.close(call.call_id)

    def fail_flow(self, call: RoutedCall, error: BaseException) -> Flow[None]:
        """End a call that failed before any output: release its holds, record the error.

        A call interrupted after a provider got it is charged instead (:mod:`costrouter.interruptions`).
        """
        rejected = isinstance(error, BudgetExceededError)
        if rejected and call.reservation is not None:
            set_attributes(call.span, call.reservation.attributes())
        outcome = self.answers.outcome_for(call, Observed(litellm_cost=0.0), error)
        mode = self.policy.defaults.on_interrupted if self.policy is not None else "release"
        charge = interrupted_call_charge(error, call.record.attempts, call.reservation, mode)
        if charge is not None:
            outcome = charge_estimated(outcome, call.span, charge, mode)
        yield from self.finish_flow(call, outcome, "rejected" if rejected else "error")

    def lease_alert(self, budget: BudgetRef, threshold: float, spent_units: int, window: str) -> None:
        """An alert a lease message found (off any call: no span event, the dispatcher and a log line)."""
        self.alerts.submit(budget_alert(budget, threshold, spent_units, window))
        logger.warning(
            "costrouter: budget %s for %s %r reached %.0f%% of its limit ($%.6f of $%.6f)",
            budget.name,
            budget.scope,
            budget.scope_id,
            threshold * 100,
            units_to_usd(spent_units),
            units_to_usd(budget.limit_units),
        )

    def _alert(self, call: RoutedCall, budget: BudgetRef, threshold: float, spent_units: int, window: str) -> None:
        """An alert a call's settle found: a span event on the call, then what every alert gets."""
        attributes: dict[str, AttributeValue] = {
            "budget": budget.name,
            "scope": budget.scope,
            "scope_id": budget.scope_id,
            "threshold": threshold,
            "spent_usd": units_to_usd(spent_units),
            "limit_usd": units_to_usd(budget.limit_units),
        }
        call.span.add_event(sc.EVENT_BUDGET_ALERT, attributes)
        self.lease_alert(budget, threshold, spent_units, window)

    def _record_budget_metric(self, call: RoutedCall) -> None:
        reservation = call.reservation
        if reservation is None:
            return
        for scope in sorted({budget.scope for budget in reservation.budgets}) or ["none"]:
            key = (scope, reservation.outcome)
            attributes = self._decision_sets.get(key)
            if attributes is None:
                attributes = self._decision_sets[key] = AttributeSet(
                    {sc.BUDGET_SCOPE: scope, sc.BUDGET_OUTCOME: reservation.outcome}
                )
            self.telemetry.budget_decisions.add(1, attributes, self.telemetry.no_exemplar)
