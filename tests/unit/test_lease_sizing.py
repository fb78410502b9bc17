"""The lease sizing rule and its settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from costrouter.budget.lease_message import applied_seq, spare_room
from costrouter.config.budgets import BudgetPolicy, LeaseSettings


def test_the_spare_is_capped_by_calls_then_by_the_free_share() -> None:
    settings = LeaseSettings(enabled=True, max_calls=16, fraction=0.25, min_calls=2)
    assert spare_room(settings, 100, 1_000_000) == 1600  # max_calls x estimate
    assert spare_room(settings, 100, 4000) == 1000  # a quarter of what is free
    assert spare_room(settings, 100, 800) == 200  # still two estimates
    assert spare_room(settings, 100, 799) == 0  # below min_calls estimates: the call reserves alone
    assert spare_room(settings, 100, -5) == 0


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
