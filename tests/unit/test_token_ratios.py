"""The in-process view of learned ratios: few round trips, up at once, down by evidence."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from costrouter.budget.background import MAX_WAITING, StoreWorker
from costrouter.budget.memory import MemoryBudgetStore
from costrouter.config.budgets import PromptEstimate
from costrouter.errors import BudgetStoreError
from costrouter.ops import Op, StoreOp, drive
from costrouter.pricing.ratio_rule import LearnedRatio, RatioRule, aged_ratio, next_token_ratio
from costrouter.pricing.token_ratios import TokenRatios


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Runs store ops on a memory store and keeps their names; can be told to fail."""

    def __init__(self) -> None:
        self.store = MemoryBudgetStore(clock=lambda: 1_700_000_000.0)  # ratios do not age here
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
    store.store.observe_token_ratio("a", 1.4, RatioRule())
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


def test_one_outlier_raises_a_ratio_one_bounded_step_and_never_past_the_cap() -> None:
    rule = RatioRule(prior=2.0, decay=0.02, step=2.0, cap=8.0, half_life_seconds=None)
    # 50,000,000 prompt tokens reported for a 15-token prompt: the first answer starts from the prior.
    assert next_token_ratio(None, 50_000_000 / 15, rule) == 4.0
    assert next_token_ratio(LearnedRatio(4.0, 1, 0.0), 50_000_000 / 15, rule) == 8.0
    assert next_token_ratio(LearnedRatio(8.0, 2, 0.0), 50_000_000 / 15, rule) == 8.0
    assert next_token_ratio(None, 1.25, rule) == 1.25  # below the prior: taken as it is
    assert next_token_ratio(LearnedRatio(1.25, 1, 0.0), 1.75, rule) == 1.75  # a true rise within a step: at once
    assert next_token_ratio(LearnedRatio(4.0, 9, 0.0), 1.0, rule) == 4.0 - 3.0 * 0.02  # down by evidence


def test_a_ratio_ages_back_to_the_prior_by_its_half_life_and_reads_within_the_cap() -> None:
    rule = RatioRule(prior=2.0, cap=8.0, half_life_seconds=3600.0)
    assert aged_ratio(6.0, 0.0, rule) == 6.0
    assert aged_ratio(6.0, 3600.0, rule) == 4.0
    assert aged_ratio(6.0, 7200.0, rule) == 3.0
    assert aged_ratio(1.0, 3600.0, rule) == 1.5  # a low ratio ages up: never below what is safe for long
    assert aged_ratio(3_333_333.0, 0.0, rule) == 8.0  # an earlier version's poisoned record reads capped
    assert aged_ratio(6.0, 1e9, RatioRule(half_life_seconds=None)) == 6.0


def test_a_refresh_replaces_the_copy_so_a_reset_reaches_every_router() -> None:
    ratios, store, clock = make(ratio_refresh_seconds=5)
    store.store.observe_token_ratio("a", 3.0, ratios.rule)
    drive(ratios.refresh_flow(), store)
    assert ratios.ratio(["a"]) == 3.0
    assert store.store.reset_token_ratios("a") == ["a"]
    clock.now += 5
    drive(ratios.refresh_flow(), store)
    assert ratios.ratio(["a"]) == 2.0


def test_the_local_raise_takes_the_same_bounded_step_as_the_store() -> None:
    ratios, store, _ = make(unlearned_ratio=2.0, ratio_step=2.0, ratio_max=8.0)
    drive(ratios.observe_flow("a", 50_000_000, 15), store)
    assert ratios.ratios["a"] == 4.0
    store.failing = True
    drive(ratios.observe_flow("a", 50_000_000, 15), store)
    assert ratios.ratios["a"] == 8.0  # the store is down: the local copy still stops at the cap


class FailingStore(MemoryBudgetStore):
    """A store whose ratio calls fail as a remote store's do when it is down."""

    def token_ratios(self) -> dict[str, LearnedRatio]:
        raise BudgetStoreError("token_ratios", ConnectionError("down"))

    def observe_token_ratio(self, deployment_id: str, ratio: float, rule: RatioRule) -> float:
        raise BudgetStoreError("observe_token_ratio", ConnectionError("down"))


def test_with_a_background_only_the_first_read_is_on_the_call_path() -> None:
    ratios, path, clock = make(ratio_refresh_seconds=5, ratio_decay=0.5)
    worker = StoreWorker(path.store)
    ratios.background = worker.submit
    path.store.observe_token_ratio("a", 1.4, RatioRule())
    drive(ratios.refresh_flow(), path)  # the process's first read: its estimate needs it
    assert path.ops == ["token_ratios"]
    assert ratios.ratio(["a"]) == 1.4

    drive(ratios.observe_flow("a", 200, 100), path)  # higher: raised here at once, taught in the background
    assert ratios.ratios["a"] == 2.0
    path.store.observe_token_ratio("b", 1.1, RatioRule())  # another process taught the store meanwhile
    clock.now += 5
    drive(ratios.refresh_flow(), path)
    assert worker.wait(10)
    assert path.ops == ["token_ratios"]  # nothing more on the call's path
    assert path.store.token_ratios()["a"].ratio == 2.0
    assert ratios.ratio(["b"]) == 1.1  # the background read took the store's copy
    worker.close()
    assert not worker.submit(lambda store: None)  # closed: nothing more runs


def test_a_background_call_that_fails_keeps_the_local_raise_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ratios, path, clock = make(ratio_refresh_seconds=5)
    worker = StoreWorker(FailingStore())
    ratios.background = worker.submit
    drive(ratios.refresh_flow(), path)
    clock.now += 5
    with caplog.at_level(logging.WARNING, logger="costrouter.budget"):
        drive(ratios.refresh_flow(), path)
        drive(ratios.observe_flow("a", 300, 100), path)
        worker.submit(lambda store: 1 / 0)  # type: ignore[func-returns-value]  # a bug in one piece of work
        drive(ratios.observe_flow("b", 300, 100), path)
        assert worker.wait(10)
    assert ratios.ratios["a"] == ratios.ratios["b"] == 3.0
    assert "could not read the learned token ratios" in caplog.text
    assert "could not store the token ratio of b" in caplog.text
    assert "a background budget store call failed" in caplog.text
    worker.close()


def test_the_worker_drops_what_does_not_fit_and_says_so() -> None:
    gate = threading.Event()
    worker = StoreWorker(MemoryBudgetStore())
    assert worker.submit(lambda store: gate.wait(10) and None)
    accepted = sum(worker.submit(lambda store: None) for _ in range(MAX_WAITING + 10))
    assert accepted == MAX_WAITING - 1
    assert worker.dropped == 11
    gate.set()
    assert worker.wait(10)
    worker.close()
