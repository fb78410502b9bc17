"""The in-process view of learned ratios: few round trips, up at once, down by evidence."""

from __future__ import annotations

from typing import Any

from costrouter.budget.memory import MemoryBudgetStore
from costrouter.config.budgets import PromptEstimate
from costrouter.errors import BudgetStoreError
from costrouter.ops import Op, StoreOp, drive
from costrouter.pricing.token_ratios import TokenRatios


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Runs store ops on a memory store and keeps their names; can be told to fail."""

    def __init__(self) -> None:
        self.store = MemoryBudgetStore()
        self.ops: list[str] = []
        self.failing = False

    def __call__(self, op: Op) -> Any:
        assert isinstance(op, StoreOp)
        self.ops.append(op.method)
        if self.failing:
            raise BudgetStoreError(op.method, ConnectionError("down"))
        return getattr(self.store, op.method)(*op.args, **op.kwargs)


def make(**settings: Any) -> tuple[TokenRatios, Recorder, Clock]:
    clock = Clock()
    return TokenRatios(PromptEstimate(**settings), clock=clock), Recorder(), clock


def test_an_unlearned_deployment_counts_the_prior_and_the_max_is_taken() -> None:
    ratios, _, _ = make(unlearned_ratio=2.0)
    assert ratios.ratio(["a", "b"]) == 2.0
    ratios.ratios.update({"a": 1.2, "b": 1.7})
    assert ratios.ratio(["a", "b"]) == 1.7
    assert ratios.ratio(["a", "c"]) == 2.0
    assert ratios.ratio([]) == 2.0


def test_the_store_is_read_once_per_refresh_period() -> None:
    ratios, store, clock = make(ratio_refresh_seconds=5)
    store.store.observe_token_ratio("a", 1.4, 0.02)
    for _ in range(10):
        drive(ratios.refresh_flow(), store)
    assert store.ops == ["token_ratios"]
    assert ratios.ratio(["a"]) == 1.4
    clock.now += 5
    drive(ratios.refresh_flow(), store)
    assert store.ops == ["token_ratios", "token_ratios"]


def test_a_higher_ratio_is_sent_at_once_lower_ones_once_per_period() -> None:
    ratios, store, clock = make(ratio_refresh_seconds=5, ratio_decay=0.5)
    drive(ratios.observe_flow("a", 150, 100), store)
    assert store.ops == ["observe_token_ratio"]
    assert ratios.ratios["a"] == 1.5
    drive(ratios.observe_flow("a", 180, 100), store)  # higher: at once
    assert store.ops == ["observe_token_ratio"] * 2
    for reported in (100, 120, 110):  # lower: kept, the largest of the period is sent later
        drive(ratios.observe_flow("a", reported, 100), store)
    assert store.ops == ["observe_token_ratio"] * 2
    clock.now += 5
    drive(ratios.observe_flow("a", 100, 100), store)
    assert store.ops == ["observe_token_ratio"] * 3
    assert ratios.ratios["a"] == 1.8 - (1.8 - 1.2) * 0.5


def test_nothing_is_learned_without_a_reported_count_or_when_learning_is_off() -> None:
    ratios, store, _ = make()
    drive(ratios.observe_flow(None, 10, 10), store)
    drive(ratios.observe_flow("a", None, 10), store)
    drive(ratios.observe_flow("a", 10, 0), store)
    off, off_store, _ = make(learn=False)
    drive(off.observe_flow("a", 10, 10), off_store)
    assert store.ops == off_store.ops == []


def test_a_failing_store_never_fails_the_call_and_the_raise_is_kept_locally() -> None:
    ratios, store, _ = make()
    store.failing = True
    drive(ratios.refresh_flow(), store)
    drive(ratios.observe_flow("a", 300, 100), store)
    assert store.ops == ["token_ratios", "observe_token_ratio"]
    assert ratios.ratios["a"] == 3.0


def test_a_deployment_not_yet_learned_takes_the_ratio_of_its_model() -> None:
    models = {"us": "openai/llama-3", "eu": "openai/llama-3", "other": "openai/gpt-4o"}
    ratios = TokenRatios(PromptEstimate(unlearned_ratio=2.0), models)
    ratios.ratios["us"] = 1.4
    assert ratios.ratio(["eu"]) == 1.4
    assert ratios.ratio(["other"]) == 2.0
    assert ratios.ratio(["eu", "other"]) == 2.0
    ratios.ratios["eu"] = 1.1  # its own, once learned
    assert ratios.ratio(["eu"]) == 1.1
