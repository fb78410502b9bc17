"""The budget policy file: validation, derived names and which budgets apply to a call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from costrouter.config.budget_ref import budget_key
from costrouter.config.budgets import BudgetPolicy, load_policy
from costrouter.config.reader import validate
from costrouter.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "budgets.yaml"


def policy(*budgets: dict[str, Any], **sections: Any) -> BudgetPolicy:
    return BudgetPolicy.model_validate({"budgets": list(budgets), **sections})


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "budgets.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert caught.value.source == str(path)
    return [str(problem) for problem in caught.value.problems]


def test_the_example_file_is_valid() -> None:
    loaded = load_policy(EXAMPLE)
    assert loaded.store.backend == "memory"
    assert loaded.store.on_store_error == "fail_closed"
    assert loaded.defaults.max_output_tokens == 4096
    names = [budget.budget_name for budget in loaded.budgets]
    assert names == ["session-total", "user-daily", "team-research-monthly", "batch-hourly", "global-30d"]
    user = loaded.budgets[1]
    assert (user.on_exceeded, user.downgrade_to, user.alert_at) == ("downgrade", "fast", (0.5, 0.8, 1.0))


def test_defaults_apply_to_an_empty_policy() -> None:
    empty = BudgetPolicy()
    assert empty.budgets == ()
    assert empty.store.hold_ttl_seconds == 300
    assert empty.store.record_ttl_seconds == 86400
    assert empty.budgets_for(session_id="s") == []


def test_unknown_keys_name_the_field_and_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "store:\n  backend: memory\n  colour: red\nbudgets:\n  - scope: session\n    limit_usd: 1\n    limt: 2\n",
    )
    assert found == ["store.colour (line 3): unknown key", "budgets[0].limt (line 7): unknown key"]


@pytest.mark.parametrize(
    ("budget", "reason"),
    [
        ({"scope": "session", "limit_usd": 0}, "greater than 0"),
        ({"scope": "session", "limit_usd": -1}, "greater than 0"),
        ({"scope": "session", "limit_usd": float("inf")}, "finite"),
        ({"scope": "planet", "limit_usd": 1}, "'session', 'user', 'team', 'tag' or 'global'"),
        ({"scope": "user", "limit_usd": 1, "window": "weekly"}, "window must be"),
        ({"scope": "user", "limit_usd": 1, "on_exceeded": "downgrade"}, "downgrade_to"),
        ({"scope": "user", "limit_usd": 1, "downgrade_to": "fast"}, "only allowed when on_exceeded is downgrade"),
        ({"scope": "global", "id": "x", "limit_usd": 1}, "a global budget has no id"),
        ({"scope": "user", "limit_usd": 1, "alert_at": [0.8, 0.5]}, "sorted and unique"),
        ({"scope": "user", "limit_usd": 1, "alert_at": [0.5, 0.5]}, "sorted and unique"),
        ({"scope": "user", "limit_usd": 1, "alert_at": [0]}, "in (0, 1]"),
        ({"scope": "user", "limit_usd": 1, "alert_at": [1.5]}, "in (0, 1]"),
        ({"scope": "user", "limit_usd": 1, "name": "has space"}, "should match pattern"),
        ({"scope": "user", "limit_usd": 1, "id": ""}, "at least 1 character"),
        ({"scope": "user"}, "required field is missing"),
    ],
)
def test_invalid_budgets_are_refused(budget: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _validate({"budgets": [budget]})
    text = str(caught.value)
    assert "budgets[0]" in text
    assert reason in text


def _validate(data: dict[str, Any]) -> BudgetPolicy:
    return validate(BudgetPolicy, data, "<dict>")


@pytest.mark.parametrize(
    ("store", "field"),
    [
        ({"backend": "etcd"}, "store.backend"),
        ({"hold_ttl_seconds": 0}, "store.hold_ttl_seconds"),
        ({"timeout_seconds": 0}, "store.timeout_seconds"),
        ({"connect_timeout_seconds": 0}, "store.connect_timeout_seconds"),
        ({"connect_timeout_seconds": 1e9}, "store.connect_timeout_seconds"),
        ({"max_connections": 0}, "store.max_connections"),
        ({"pool_timeout_seconds": -1}, "store.pool_timeout_seconds"),
        ({"warm_connections": -1}, "store.warm_connections"),
        ({"on_store_error": "ignore"}, "store.on_store_error"),
        ({"key_prefix": "a{b}"}, "store.key_prefix"),
    ],
)
def test_invalid_store_settings_are_refused(store: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        _validate({"store": store})


def test_duplicate_names_are_refused_even_when_derived() -> None:
    with pytest.raises(ConfigError, match=r"budget name 'user-daily' of budgets\[1\] is already used by budgets\[0\]"):
        _validate(
            {
                "budgets": [
                    {"scope": "user", "limit_usd": 1, "window": "daily"},
                    {"scope": "team", "name": "user-daily", "limit_usd": 2},
                ]
            }
        )


def test_names_are_derived_from_scope_id_and_window() -> None:
    loaded = policy(
        {"scope": "session", "limit_usd": 1},
        {"scope": "team", "id": "research", "limit_usd": 1, "window": "monthly"},
        {"scope": "tag", "limit_usd": 1, "window": "1h"},
        {"scope": "user", "name": "vip", "limit_usd": 1, "window": "daily"},
    )
    assert [b.budget_name for b in loaded.budgets] == ["session-total", "team-research-monthly", "tag-1h", "vip"]


def test_a_budget_ref_carries_the_limit_in_units_and_the_parsed_window() -> None:
    loaded = policy({"scope": "user", "limit_usd": 0.1 + 0.2, "window": "1h", "alert_at": [0.5]})
    (ref,) = loaded.budgets_for(user_id="u1")
    assert ref.limit_units == 300_000_000
    assert (ref.window.kind, ref.window.seconds) == ("fixed", 3600)
    assert (ref.name, ref.scope, ref.scope_id, ref.alert_at) == ("user-1h", "user", "u1", (0.5,))


FULL = policy(
    {"scope": "session", "limit_usd": 1},
    {"scope": "user", "limit_usd": 2, "window": "daily"},
    {"scope": "team", "id": "research", "limit_usd": 3, "window": "monthly"},
    {"scope": "tag", "limit_usd": 4},
    {"scope": "tag", "id": "batch", "limit_usd": 5, "window": "1h"},
    {"scope": "global", "limit_usd": 6, "window": "30d"},
)


def keys(refs: list[Any]) -> list[tuple[str, str]]:
    return [(ref.name, ref.scope_id) for ref in refs]


def test_every_applicable_budget_instance_is_listed() -> None:
    refs = FULL.budgets_for(session_id="s1", user_id="u1", team_id="research", tags=["batch", "eu", "batch"])
    assert sorted(keys(refs)) == sorted(
        [
            ("session-total", "s1"),
            ("user-daily", "u1"),
            ("team-research-monthly", "research"),
            ("tag-total", "batch"),
            ("tag-total", "eu"),
            ("tag-batch-1h", "batch"),
            ("global-30d", "*"),
        ]
    )


def test_missing_ids_and_other_ids_are_skipped() -> None:
    refs = FULL.budgets_for(session_id="", team_id="marketing")
    assert keys(refs) == [("global-30d", "*")]


def test_the_order_is_the_store_key_order_whatever_the_input_order() -> None:
    first = FULL.budgets_for(session_id="s1", user_id="u1", tags=["b", "a"])
    second = FULL.budgets_for(user_id="u1", session_id="s1", tags=("a", "b"))
    assert first == second
    prefix = FULL.store.key_prefix
    assert [budget_key(prefix, ref) for ref in first] == sorted(budget_key(prefix, ref) for ref in first)


@pytest.mark.parametrize(
    ("yaml_text", "field", "reason"),
    [
        ("store:\n  hold_ttl_seconds: 1.0e+23\n", "store.hold_ttl_seconds (line 2)", "integer"),
        ("store:\n  hold_ttl_seconds: 1.0e+12\n", "store.hold_ttl_seconds (line 2)", "less than or equal to 315360000"),
        ("store:\n  settle_record_ttl_seconds: 10000000000000000000\n", "store.settle_record_ttl_seconds", "315360000"),
        ("store:\n  timeout_seconds: .inf\n", "store.timeout_seconds (line 2)", "finite number"),
        ("store:\n  timeout_seconds: .nan\n", "store.timeout_seconds (line 2)", "finite number"),
        ("defaults:\n  max_output_tokens: 1.0e+12\n", "defaults.max_output_tokens (line 2)", "1000000"),
        ("defaults:\n  output_cost_per_token: .inf\n", "defaults.output_cost_per_token (line 2)", "finite number"),
        ("defaults:\n  input_cost_per_token: 15\n", "defaults.input_cost_per_token", "less than or equal to 0.01"),
        ("budgets:\n  - scope: user\n    limit_usd: 1.0e-10\n", "budgets[0].limit_usd (line 3)", "one nano-dollar"),
        (
            "budgets:\n  - scope: user\n    limit_usd: 0.0000000004\n",
            "budgets[0].limit_usd (line 3)",
            "one nano-dollar",
        ),
        ("budgets:\n  - scope: user\n    limit_usd: 1.0e+7\n", "budgets[0].limit_usd (line 3)", "9000000"),
        ("budgets:\n  - scope: user\n    limit_usd: .nan\n", "budgets[0].limit_usd (line 3)", "finite number"),
        ("budgets:\n  - scope: user\n    limit_usd: 1\n    window: 99999d\n", "budgets[0].window", "at most 3650d"),
        ("budgets:\n  - scope: user\n    limit_usd: 1\n    alert_at: [.nan]\n", "budgets[0].alert_at", "in (0, 1]"),
    ],
)
def test_every_number_is_range_checked_at_load(tmp_path: Path, yaml_text: str, field: str, reason: str) -> None:
    (problem,) = problems(tmp_path, yaml_text)
    assert problem.startswith(field)
    assert reason in problem


def test_the_bounds_themselves_load() -> None:
    loaded = policy(
        {"scope": "user", "limit_usd": 1e-9, "window": "3650d"},
        {"scope": "team", "limit_usd": 9e6},
        store={"hold_ttl_seconds": 315360000, "settle_record_ttl_seconds": 315360000},
        defaults={"max_output_tokens": 1_000_000, "input_cost_per_token": 0.01},
    )
    assert [ref.limit_units for ref in loaded.budgets_for(user_id="u", team_id="t")] == [9 * 10**15, 1]
