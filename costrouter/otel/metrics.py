"""The metric instruments of routed calls and their recording.

The histograms (duration, token usage) are aggregated in process and handed to an SDK
provider's readers as finished points (:mod:`costrouter.otel.histograms`); any other
provider gets them through the API's ``Histogram.record``. The counters
(calls, cost, attempts, budget decisions) are summed here, per attribute set, and read by
the SDK through ``ObservableCounter`` callbacks when a reader collects: a synchronous
``Counter.add`` costs about 97 k instructions inside the SDK (a measurement object, an
exemplar check, a copy and hash of the attributes, two locks), a sum here one dict lookup
under a lock. A backend receives the same monotonic Sum, by the same attribute sets.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import INVALID_SPAN, Span
from opentelemetry.util.types import AttributeValue

from costrouter.otel import semconv as sc
from costrouter.otel.attempts import CallRecord
from costrouter.otel.cost_attributes import detail_token_counts
from costrouter.otel.histograms import CARDINALITY_LIMIT, OVERFLOW_ATTRIBUTES, OVERFLOW_KEY, AttributeSet, key_of
from costrouter.otel.metric_producer import in_process_histograms

if TYPE_CHECKING:
    from costrouter.otel.outcome import Outcome


class _Cell:
    __slots__ = ("attributes", "total")

    def __init__(self, attributes: dict[str, AttributeValue], total: float) -> None:
        self.attributes = attributes
        self.total = total


_OVERFLOW_ATTRIBUTES: Final = OVERFLOW_ATTRIBUTES
_OVERFLOW_KEY: Final = OVERFLOW_KEY


class SummedCounter:
    """A monotonic counter summed in process, exported by an ``ObservableCounter``.

    ``add`` has the signature of the API's ``Counter.add``; the context is accepted and
    unused (an observable counter carries no exemplar, as the synchronous counters, always
    given a context without a span, carried none). Thread-safe; its lock is renewed in a
    forked child. Memory is bounded as the SDK bounds a counter's: past
    ``cardinality_limit`` attribute sets, new ones add into the set
    ``{"otel.metric.overflow": True}``.
    """

    def __init__(
        self, meter: Meter, name: str, unit: str, description: str, cardinality_limit: int = CARDINALITY_LIMIT
    ) -> None:
        self._limit = cardinality_limit
        self._lock = threading.Lock()
        self._cells: dict[tuple[tuple[str, AttributeValue], ...], _Cell] = {}
        meter.create_observable_counter(name, callbacks=[self._observe], unit=unit, description=description)
        _ALL_SUMS.add(self)

    def add(self, amount: float, attributes: Mapping[str, AttributeValue], context: Context | None = None) -> None:  # noqa: ARG002
        """Add ``amount`` (finite, >= 0, as the API's counter requires) to the set ``attributes``."""
        if not amount >= 0 or amount == float("inf"):
            return
        key = key_of(attributes)
        with self._lock:
            cell = self._cells.get(key)
            if cell is None:
                if len(self._cells) >= self._limit:  # as the SDK does: the sets past the limit share one
                    key, attributes = _OVERFLOW_KEY, _OVERFLOW_ATTRIBUTES
                    cell = self._cells.get(key)
                if cell is None:
                    self._cells[key] = _Cell(dict(attributes), amount)
                    return
            cell.total += amount

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:  # noqa: ARG002
        with self._lock:
            cells = [(cell.total, cell.attributes) for cell in self._cells.values()]
        return [Observation(total, attributes) for total, attributes in cells]

    def _after_fork(self) -> None:
        self._lock = threading.Lock()


_ALL_SUMS: weakref.WeakSet[SummedCounter] = weakref.WeakSet()


def _renew_locks() -> None:
    for sums in list(_ALL_SUMS):
        sums._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_locks)


class _Counters:
    """The summed counters of one MeterProvider (the SDK keeps one instrument per name)."""

    def __init__(self, meter: Meter) -> None:
        self.cost = SummedCounter(meter, sc.METRIC_COST, sc.METRIC_COST_UNIT, "USD spent on routed calls.")
        self.calls = SummedCounter(meter, sc.METRIC_CALLS, sc.METRIC_CALLS_UNIT, "Routed calls by outcome.")
        self.attempts = SummedCounter(
            meter, sc.METRIC_ATTEMPTS, sc.METRIC_ATTEMPTS_UNIT, "Provider attempts by kind and outcome."
        )
        self.budget_decisions = SummedCounter(
            meter,
            sc.METRIC_BUDGET_DECISIONS,
            sc.METRIC_BUDGET_DECISIONS_UNIT,
            "Budget decisions by scope and outcome.",
        )


_COUNTERS: weakref.WeakKeyDictionary[MeterProvider, _Counters] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def _counters(provider: MeterProvider, meter: Meter) -> _Counters:
    """The counters of ``provider``, shared by every CostRouter recording into it.

    Two routers on one provider add into one sum, as they added into one synchronous
    counter; the entry goes with the provider (weak key).
    """
    with _COUNTERS_LOCK:
        try:
            counters = _COUNTERS.get(provider)
        except TypeError:
            return _Counters(meter)
        if counters is None:
            counters = _COUNTERS[provider] = _Counters(meter)
        return counters


class CallMetrics:
    """The metric instruments of one CostRouter and the recording of a routed call."""

    def __init__(self, meter_provider: MeterProvider, meter: Meter, scope: InstrumentationScope) -> None:
        histograms = in_process_histograms(meter_provider, scope, _HISTOGRAMS)
        self.token_usage: _Recorder
        self.duration: _Recorder
        if histograms is not None:
            self.token_usage = histograms[sc.METRIC_TOKEN_USAGE].record
            self.duration = histograms[sc.METRIC_OPERATION_DURATION].record
        else:
            self.token_usage, self.duration = _api_histograms(meter)
        counters = _counters(meter_provider, meter)
        self.cost = counters.cost
        self.calls = counters.calls
        self.attempts = counters.attempts
        self.budget_decisions = counters.budget_decisions
        self.budget_unheld_settles = meter.create_counter(
            sc.METRIC_BUDGET_UNHELD_SETTLES,
            unit=sc.METRIC_BUDGET_UNHELD_SETTLES_UNIT,
            description="Settles that charged a budget with no live hold for the call (expired, reset).",
        )
        self.implausible_usage = meter.create_counter(
            sc.METRIC_IMPLAUSIBLE_USAGE,
            unit=sc.METRIC_IMPLAUSIBLE_USAGE_UNIT,
            description="Answers with an implausible usage figure or amount, charged their hold.",
        )
        self._sets = _MetricAttributes()
        self.no_exemplar = trace.set_span_in_context(INVALID_SPAN, Context())
        """The context of the token-usage measurements: no span, so no exemplar offered.

        With the SDK's default trace-based exemplar filter each measurement taken while the
        call's span is current samples an exemplar; one per call (the duration) links the
        metrics to the trace, the others would repeat it at ~20 % of each measurement's cost.
        """

    def record(
        self, group: str, outcome: Outcome, record: CallRecord, latency_s: float, result: str, operation: str = "chat"
    ) -> None:
        """Metrics of one routed call, by operation; never a session or user id as an attribute.

        The attribute sets repeat from call to call (a few per group), so each is built once
        and kept (:class:`_MetricAttributes`); the SDK gets the same dict every time.
        """
        sets = self._sets.get(group, outcome, operation)
        self.duration(
            latency_s,
            sets.duration if outcome.error is None else sets.failed(type(outcome.error).__name__),
            trace.get_current_span(),
        )
        self.calls.add(1, self._sets.calls(group, result, operation))
        token_usage = self.token_usage
        if outcome.prompt_tokens is not None:
            token_usage(outcome.prompt_tokens, sets.tokens("input"), INVALID_SPAN)
        if outcome.completion_tokens is not None:
            token_usage(outcome.completion_tokens, sets.tokens("output"), INVALID_SPAN)
        if outcome.breakdown is not None:
            for token_type, count in detail_token_counts(outcome.breakdown).items():
                token_usage(count, sets.tokens(token_type), INVALID_SPAN)
        if outcome.cost_usd:
            self.cost.add(outcome.cost_usd, sets.cost(outcome.deployment_id))
        if outcome.implausible:
            self.implausible_usage.add(
                1, {sc.ROUTER_DEPLOYMENT_ID: outcome.deployment_id or "unknown"}, self.no_exemplar
            )
        for attempt in record.attempts:
            self.attempts.add(
                1,
                self._sets.attempt(
                    attempt.model_group,
                    attempt.deployment_id,
                    attempt.kind,
                    "success" if attempt.outcome == "success" else "failure",
                ),
            )


_Recorder = Callable[[float, Mapping[str, AttributeValue], Span], None]
"""Records one measurement; the span is where an exemplar would come from (``INVALID_SPAN``: none)."""

_HISTOGRAMS: Final = (
    (
        sc.METRIC_TOKEN_USAGE,
        sc.METRIC_TOKEN_USAGE_UNIT,
        "Tokens used per routed call, by token type.",
        tuple(float(bound) for bound in sc.TOKEN_USAGE_BUCKETS),
    ),
    (
        sc.METRIC_OPERATION_DURATION,
        sc.METRIC_OPERATION_DURATION_UNIT,
        "Duration of routed calls, retries and fallbacks included.",
        tuple(sc.OPERATION_DURATION_BUCKETS),
    ),
)


def _api_histograms(meter: Meter) -> tuple[_Recorder, _Recorder]:
    """Token usage and duration through the API's histograms (a provider that is not the SDK's)."""
    token_usage, duration = (
        meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(buckets)
        )
        for name, unit, description, buckets in _HISTOGRAMS
    )

    def record_tokens(value: float, attributes: Mapping[str, AttributeValue], span: Span) -> None:  # noqa: ARG001
        token_usage.record(value, attributes, _NO_SPAN)

    def record_duration(value: float, attributes: Mapping[str, AttributeValue], span: Span) -> None:  # noqa: ARG001
        duration.record(value, attributes)  # in the current context: its span's exemplar links metrics to the trace

    return record_tokens, record_duration


_NO_SPAN: Final = trace.set_span_in_context(INVALID_SPAN, Context())
"""A context without a span: no exemplar offered (the SDK's trace-based filter samples one a span)."""

_MAX_METRIC_SETS = 4096
"""Past this many distinct attribute sets the cache starts over (response models come from providers)."""


class _GroupSets:
    """The metric attribute dicts of one (group, operation, model, provider, response model)."""

    def __init__(self, group: str, outcome: Outcome, operation: str) -> None:
        self.base = metric_attributes(group, outcome, operation)
        self.duration = AttributeSet(self.base)
        self._served = outcome.served_group or group
        self._response_model = outcome.response_model or ""
        self._by_key: dict[tuple[str, str | None], dict[str, AttributeValue]] = {}

    def failed(self, error_type: str) -> dict[str, AttributeValue]:
        return self._set(("error", error_type), lambda: AttributeSet({**self.base, sc.ERROR_TYPE: error_type}))

    def tokens(self, token_type: str) -> dict[str, AttributeValue]:
        return self._set(("tokens", token_type), lambda: AttributeSet({**self.base, sc.GEN_AI_TOKEN_TYPE: token_type}))

    def cost(self, deployment_id: str | None) -> dict[str, AttributeValue]:
        return self._set(
            ("cost", deployment_id),
            lambda: AttributeSet(
                {
                    sc.ROUTER_GROUP: self._served,
                    sc.ROUTER_MODEL_GROUP: self._served,
                    sc.ROUTER_DEPLOYMENT_ID: deployment_id or "",
                    sc.GEN_AI_RESPONSE_MODEL: self._response_model,
                }
            ),
        )

    def _set(
        self, key: tuple[str, str | None], build: Callable[[], dict[str, AttributeValue]]
    ) -> dict[str, AttributeValue]:
        attributes = self._by_key.get(key)
        if attributes is None:
            attributes = self._by_key[key] = build()
        return attributes


class _MetricAttributes:
    """Every metric attribute set built so far, by what decides it."""

    def __init__(self) -> None:
        self._groups: dict[tuple[object, ...], _GroupSets] = {}
        self._calls: dict[tuple[str, str, str], dict[str, AttributeValue]] = {}
        self._attempts: dict[tuple[str, str, str, str], dict[str, AttributeValue]] = {}

    def _room(self) -> None:
        if len(self._groups) + len(self._calls) + len(self._attempts) > _MAX_METRIC_SETS:
            self._groups.clear()
            self._calls.clear()
            self._attempts.clear()

    def get(self, group: str, outcome: Outcome, operation: str) -> _GroupSets:
        key = (group, operation, outcome.model, outcome.provider, outcome.response_model, outcome.served_group)
        sets = self._groups.get(key)
        if sets is None:
            self._room()
            sets = self._groups[key] = _GroupSets(group, outcome, operation)
        return sets

    def calls(self, group: str, result: str, operation: str) -> dict[str, AttributeValue]:
        key = (group, result, operation)
        attributes = self._calls.get(key)
        if attributes is None:
            self._room()
            attributes = self._calls[key] = AttributeSet(
                {
                    sc.ROUTER_GROUP: group,
                    sc.ROUTER_MODEL_GROUP: group,
                    sc.CALL_OUTCOME: result,
                    sc.GEN_AI_OPERATION_NAME: operation,
                }
            )
        return attributes

    def attempt(self, group: str, deployment_id: str, kind: str, outcome: str) -> dict[str, AttributeValue]:
        key = (group, deployment_id, kind, outcome)
        attributes = self._attempts.get(key)
        if attributes is None:
            self._room()
            attributes = self._attempts[key] = AttributeSet(
                {
                    sc.ROUTER_GROUP: group,
                    sc.ROUTER_MODEL_GROUP: group,
                    sc.ROUTER_DEPLOYMENT_ID: deployment_id,
                    sc.ATTEMPT_KIND: kind,
                    sc.ATTEMPT_OUTCOME: outcome,
                }
            )
        return attributes


def metric_attributes(group: str, outcome: Outcome, operation: str = "chat") -> dict[str, AttributeValue]:
    """The GenAI metric attributes of a routed call: operation, group, model, provider, server."""
    base: dict[str, AttributeValue] = {
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.ROUTER_GROUP: group,
        sc.ROUTER_MODEL_GROUP: group,
    }
    model = outcome.model
    if model is not None:
        base[sc.GEN_AI_REQUEST_MODEL] = model.model
        if model.provider:
            base[sc.GEN_AI_PROVIDER_NAME] = model.provider
        if model.server_address:
            base[sc.SERVER_ADDRESS] = model.server_address
        if model.server_port is not None:
            base[sc.SERVER_PORT] = model.server_port
    elif outcome.provider:
        base[sc.GEN_AI_PROVIDER_NAME] = outcome.provider
    if outcome.response_model:
        base[sc.GEN_AI_RESPONSE_MODEL] = outcome.response_model
    return base
