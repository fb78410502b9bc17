"""The lease sizing rule and its settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from costrouter.budget.lease_message import BASE_SPARE_CALLS, LeaseMessage, applied_seq, spare_calls, spare_room
from costrouter.config.budgets import BudgetPolicy, LeaseSettings


def test_the_spare_is_capped_by_calls_then_by_the_free_share() -> None:
    settings = LeaseSettings(enabled=True, max_calls=16, fraction=0.25, min_calls=2)
    assert spare_room(settings, 100, 1_000_000) == 1600  # max_calls x estimate
    assert spare_room(settings, 100, 4000) == 1000  # a quarter of what is free
    assert spare_room(settings, 100, 800) == 200  # still two estimates
    assert spare_room(settings, 100, 799) == 0  # below min_calls estimates: the call reserves alone
    assert spare_room(settings, 100, -5) == 0


def test_the_spare_follows_the_lease_demand_up_to_max_calls() -> None:
    settings = LeaseSettings()  # the defaults: 16 estimates, up to 256 when the lease's calls need more
    assert spare_calls(settings, 0) == BASE_SPARE_CALLS == 16
    assert spare_calls(settings, 9) == 16  # a session's ten calls fit the base slice
    assert spare_calls(settings, 120) == 120  # a shared lease under load: its calls between two messages
    assert spare_calls(settings, 5_000) == settings.max_calls == 256
    assert spare_room(settings, 100, 10_000_000, demand=120) == 12_000
    assert spare_room(settings, 100, 40_000, demand=120) == 10_000  # still at most a quarter of what is free
    explicit = LeaseSettings(max_calls=8)  # an explicit cap below the base slice is kept as it was
    assert spare_calls(explicit, 0) == spare_calls(explicit, 500) == 8


def test_a_message_asks_the_script_for_its_demand_in_estimates() -> None:
    policy = BudgetPolicy.model_validate(
        {"store": {"backend": "redis"}, "budgets": [{"scope": "global", "limit_usd": 1}]}
    )
    budget = policy.budgets_for()[0]
    extra_max_at = 8  # ARGV index of ``extra max`` (lua/lease.lua)

    def extra_max(demand: int, *, give_back: bool = False) -> str:
        message = LeaseMessage("o", "", 1, 0, 0, 100, True, 100, give_back=give_back, demand=demand)
        return message.args("base", budget, policy.store)[extra_max_at]

    assert extra_max(0) == "1600"
    assert extra_max(40) == "4000"
    assert extra_max(10_000) == "25600"
    assert extra_max(40, give_back=True) == "0"


def test_unknown_or_out_of_range_lease_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        LeaseSettings.model_validate({"enabled": True, "size": 3})
    with pytest.raises(ValidationError, match="fraction"):
        LeaseSettings.model_validate({"fraction": 0})
    with pytest.raises(ValidationError, match="ttl_seconds"):
        LeaseSettings.model_validate({"ttl_seconds": 1})


def test_a_policy_takes_a_lease_block_under_store() -> None:
    policy = BudgetPolicy.model_validate(
        {
            "store": {"backend": "redis", "lease": {"enabled": False, "max_calls": 8}},
            "budgets": [{"scope": "global", "limit_usd": 1}],
        }
    )
    assert not policy.store.lease.enabled
    assert policy.store.lease.max_calls == 8


def test_leases_are_on_and_the_top_index_off_by_default() -> None:
    store = BudgetPolicy.model_validate({"store": {"backend": "redis"}, "budgets": []}).store
    assert store.lease.enabled
    assert not store.top_index


def test_the_applied_seq_of_a_lease_field() -> None:
    assert applied_seq(None) == 0
    assert applied_seq("l|1700|1700000000|7") == 7
    assert applied_seq("x|0|1700000000|12") == 12
