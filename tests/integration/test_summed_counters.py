"""The counters summed in process export what synchronous SDK counters export (real SDK)."""

from __future__ import annotations

import gc
import os
import signal
import threading
import weakref
from typing import Any

from opentelemetry.metrics import Counter
from opentelemetry.sdk.metrics import Counter as SdkCounter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics import ObservableCounter as SdkObservableCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, Sum

from costrouter.otel import metrics as costrouter_metrics
from costrouter.otel import semconv as sc
from costrouter.otel.metrics import SummedCounter
from costrouter.otel.telemetry import Telemetry

A = {sc.ROUTER_GROUP: "fast", sc.CALL_OUTCOME: "success"}
B = {sc.ROUTER_GROUP: "fast", sc.CALL_OUTCOME: "error"}
C = {sc.ROUTER_GROUP: "capable", sc.CALL_OUTCOME: "success"}
STEPS: list[list[tuple[float, dict[str, str]]]] = [[(1, A), (1, B), (1, A)], [(2.5, C), (1, A)], [], [(0.25, C)]]


def reader_for(temporality: AggregationTemporality) -> InMemoryMetricReader:
    classes = (SdkCounter, SdkObservableCounter)
    return InMemoryMetricReader(preferred_temporality=dict.fromkeys(classes, temporality))


def exported(reader: InMemoryMetricReader, drop_zero: bool = False) -> list[tuple[Any, ...]]:
    """Each metric as a backend sees it: name, unit, description, kind, points by attribute set."""
    data = reader.get_metrics_data()
    out: list[tuple[Any, ...]] = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                assert isinstance(metric.data, Sum)
                points = {
                    frozenset((point.attributes or {}).items()): (type(point.value), point.value)
                    for point in metric.data.data_points
                    if not (drop_zero and point.value == 0)
                }
                if points:
                    kind = (metric.data.is_monotonic, metric.data.aggregation_temporality)
                    out.append((metric.name, metric.unit, metric.description, kind, points))
    return out


def test_summed_counter_exports_the_synchronous_counter_data_cumulative_and_delta() -> None:
    for temporality in (AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA):
        summed_reader, sync_reader = reader_for(temporality), reader_for(temporality)
        summed_provider = MeterProvider(metric_readers=[summed_reader], shutdown_on_exit=False)
        sync_provider = MeterProvider(metric_readers=[sync_reader], shutdown_on_exit=False)
        summed = SummedCounter(summed_provider.get_meter("costrouter"), "costrouter.calls", "{call}", "Calls.")
        synchronous: Counter = sync_provider.get_meter("costrouter").create_counter(
            "costrouter.calls", unit="{call}", description="Calls."
        )
        delta = temporality is AggregationTemporality.DELTA
        for batch in STEPS:
            for amount, attributes in batch:
                summed.add(amount, attributes)
                synchronous.add(amount, attributes)
            # Under delta an observable counter reports an unchanged series as a 0 point,
            # where the synchronous counter reported none (docs/telemetry.md).
            assert exported(summed_reader, drop_zero=delta) == exported(sync_reader), temporality
        summed_provider.shutdown()
        sync_provider.shutdown()


def test_routers_on_one_provider_add_into_one_sum_from_many_threads() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    first, second = Telemetry(meter_provider=provider), Telemetry(meter_provider=provider)

    def add(telemetry: Telemetry) -> None:
        for _ in range(2000):
            telemetry.metrics.calls.add(1, A)

    threads = [threading.Thread(target=add, args=(t,)) for t in (first, second) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    (calls,) = [m for m in exported(reader) if m[0] == sc.METRIC_CALLS]
    assert calls[4] == {frozenset(A.items()): (int, 16000)}
    provider.shutdown()


def test_the_sums_of_a_provider_go_with_it() -> None:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
    telemetry = Telemetry(meter_provider=provider)
    telemetry.metrics.cost.add(0.5, A)
    assert provider in costrouter_metrics._COUNTERS
    gone = weakref.ref(provider)
    before = len(costrouter_metrics._COUNTERS)

    provider.shutdown()
    del telemetry, provider
    gc.collect()

    assert gone() is None  # nothing of costrouter's (the sums, their callbacks) kept the provider alive
    assert len(costrouter_metrics._COUNTERS) <= before - 1  # its sums went with it (others' may go too)


def test_a_forked_child_adds_though_a_thread_held_the_lock_at_fork() -> None:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
    calls = Telemetry(meter_provider=provider).metrics.calls
    calls._lock.acquire()
    try:
        pid = os.fork()
        if pid == 0:
            signal.alarm(30)  # a child stuck on the inherited lock dies instead of hanging the run
            calls.add(1, A)
            os._exit(0)
    finally:
        calls._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    provider.shutdown()


def test_past_the_cardinality_limit_new_sets_fold_into_the_overflow_set_as_the_sdk_folds_them() -> None:
    """Memory stays bounded; the export is the synchronous SDK counter's, overflow point included."""
    summed_reader = reader_for(AggregationTemporality.CUMULATIVE)
    sync_reader = reader_for(AggregationTemporality.CUMULATIVE)
    summed_provider = MeterProvider(metric_readers=[summed_reader], shutdown_on_exit=False)
    sync_provider = MeterProvider(metric_readers=[sync_reader], shutdown_on_exit=False)
    summed = SummedCounter(summed_provider.get_meter("costrouter"), "costrouter.calls", "{call}", "Calls.")
    synchronous = sync_provider.get_meter("costrouter").create_counter(
        "costrouter.calls", unit="{call}", description="Calls."
    )
    limit = costrouter_metrics.CARDINALITY_LIMIT
    for number in [*range(limit + 50), 7, limit + 10]:  # a kept set and a folded one, again
        attributes = {sc.GEN_AI_RESPONSE_MODEL: f"model-{number}"}
        summed.add(1, attributes)
        synchronous.add(1, attributes)
    assert len(summed._cells) == limit + 1
    [(*_, points)] = exported(summed_reader)
    assert points == exported(sync_reader)[0][-1]
    assert points[frozenset({("otel.metric.overflow", True)})] == (int, 51)
    assert points[frozenset({(sc.GEN_AI_RESPONSE_MODEL, "model-7")})] == (int, 2)
