"""Property: with max_tokens set, the hold made before a call covers what the call costs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costrouter import CostRouter
from costrouter import semconv as sc
from costrouter.money import usd_to_micros
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.routing import router_config

words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=12)
contents = st.lists(words, min_size=1, max_size=60).map(" ".join)
roles = st.sampled_from(["user", "system", "assistant"])
messages_strategy = st.lists(st.fixed_dictionaries({"role": roles, "content": contents}), min_size=1, max_size=5)


@pytest.fixture(scope="module")
def routed(provider: ProviderDouble) -> Iterator[tuple[CostRouter, TelemetryCapture]]:
    capture = TelemetryCapture()
    router = CostRouter(
        router_config(provider.base_url, num_retries=0),
        budgets={"budgets": [{"scope": "session", "limit_usd": 1_000_000, "window": "total"}]},
        tracer_provider=capture.tracer_provider,
    )
    yield router, capture
    router.shutdown()
    capture.shutdown()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=messages_strategy,
    max_tokens=st.integers(min_value=1, max_value=500),
    fraction=st.floats(min_value=0, max_value=1),
    group=st.sampled_from(["fast", "capable", "flaky"]),
    flaky_fails=st.booleans(),
)
def test_estimate_covers_the_actual_cost(
    routed: tuple[CostRouter, TelemetryCapture],
    provider: ProviderDouble,
    messages: list[dict[str, str]],
    max_tokens: int,
    fraction: float,
    group: str,
    flaky_fails: bool,
) -> None:
    router, capture = routed
    capture.clear()
    provider.reset()
    completion_tokens = round(max_tokens * fraction)
    answer = Reply(completion_tokens=completion_tokens)
    for model in ("fast-model", "capable-model", "flaky-model"):
        provider.set_default(model, answer)
    if flaky_fails:  # the flaky group falls back to fast, which must be covered by the estimate too
        provider.set_default("flaky-model", Fail(500))

    router.route_completion(group, messages, max_tokens=max_tokens, session_id="property")

    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    estimate = usd_to_micros(float(attributes[sc.BUDGET_ESTIMATE_USD]))  # type: ignore[arg-type]
    settled = usd_to_micros(float(attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type]
    assert settled <= estimate
