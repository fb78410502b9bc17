"""costrouter's errors survive pickling (multiprocessing hands them between processes)."""

from __future__ import annotations

import pickle

from costrouter.errors import (
    BudgetExceededError,
    BudgetStoreError,
    ConfigError,
    ConfigProblem,
    CostRouterError,
    MissingExtraError,
)


def test_every_error_is_a_costrouter_error_and_pickles() -> None:
    errors: list[CostRouterError] = [
        ConfigError("router.yaml", [ConfigProblem("groups.fast", "unknown key", 3)]),
        BudgetExceededError(
            scope="session",
            scope_id="s-1",
            budget="session-total",
            limit_usd=0.5,
            spent_usd=0.4,
            held_usd=0.05,
            estimate_usd=0.1,
        ),
        BudgetStoreError("reserve", ConnectionError("refused")),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy).keys() == vars(error).keys()


def test_messages_name_what_went_wrong() -> None:
    error = ConfigError("router.yaml", [ConfigProblem("groups.fast.pirce", "unknown key", 5)])
    assert str(error) == "invalid configuration in router.yaml:\n  groups.fast.pirce (line 5): unknown key"
    store = BudgetStoreError("settle", TimeoutError("timed out"))
    assert str(store) == "budget store failed during settle: TimeoutError: timed out"


def test_a_missing_extra_names_the_extra_to_install() -> None:
    error = MissingExtraError("anthropic", ["fastapi", "backoff"], "an Anthropic-messages stream")
    assert isinstance(error, CostRouterError)
    assert str(error) == (
        "an Anthropic-messages stream needs fastapi, backoff, not installed: "
        "pip install 'costrouter-litellm[anthropic]'"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.extra, copy.modules, copy.needed_for, str(copy)) == (
        error.extra,
        error.modules,
        error.needed_for,
        str(error),
    )
