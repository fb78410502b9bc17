"""How ``costrouter budget migrate`` reads 0.2's key names and records (any unit factor)."""

from __future__ import annotations

import re

import pytest

from costrouter.budget.layout import layout_problem
from costrouter.budget.migrate import FACTOR, LegacyGroup, convert_lease, convert_record, new_tag, parse_key, scale
from costrouter.money import LEGACY_UNITS_PER_USD, MAX_COUNTER_UNITS, UNITS_PER_USD


def test_the_factor_is_the_ratio_of_the_units() -> None:
    assert FACTOR * LEGACY_UNITS_PER_USD == UNITS_PER_USD


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("{p:daily:user:alice}:w:2026-12-06", (LegacyGroup("instance", "{p:daily:user:alice}", None), ":w:2026-12-06")),
        ("{p:s:session:x%3Ay}:calls", (LegacyGroup("instance", "{p:s:session:x%3Ay}", None), ":calls")),
        (
            "{p:v2:session:a}:expiry",
            (LegacyGroup("instance", "{p:v2:session:a}", None), ":expiry"),
        ),  # a budget named v2
        ("{p:top:daily}:total", (LegacyGroup("top", "{p:top:daily}", None), ":total")),
        ("{p:token-ratios}", (LegacyGroup("ratios", "{p:token-ratios}", None), "")),
        ("{p:s:session:a}:m:run1:w:total", (LegacyGroup("instance", "{p:s:session:a}", "run1"), ":w:total")),
        ("{p:token-ratios}:m:run1", (LegacyGroup("ratios", "{p:token-ratios}", "run1"), "")),
    ],
)
def test_0_2_keys_are_grouped_by_their_hash_tag(key: str, expected: tuple[LegacyGroup, str]) -> None:
    assert parse_key("p", key) == expected


@pytest.mark.parametrize(
    "key",
    [
        "{p:epoch}",  # the fence, not data
        "{p:epoch}:lost",
        "{p:v2:s:session:a}:c",  # the current layout
        "{p:v2:top:daily}:total",
        "{p:v2:token-ratios}",
        "{p:x:top:daily}:total",  # another prefix (p:x) under this one
        "{pq:s:session:a}:calls",
        "{p:s:session:a}:mig:run1",
    ],
)
def test_other_keys_are_left_alone(key: str) -> None:
    assert parse_key("p", key) is None


def test_a_prefix_with_a_colon() -> None:
    assert parse_key("a:b", "{a:b:s:session:z}:calls") == (LegacyGroup("instance", "{a:b:s:session:z}", None), ":calls")
    assert new_tag("a:b", "{a:b:s:session:z}") == "{a:b:v2:s:session:z}"


def test_amounts_are_converted_and_saturate() -> None:
    record = "held|400|total|0|1|1000|300|0|0|0|"
    assert convert_record(record) == f"held|{400 * FACTOR}|total|0|1|{1000 * FACTOR}|{300 * FACTOR}|0|0|0|"
    settled = "settled|400|2026-12-06|1765065600|1|10|20|250|260|0|0.5,0.8"
    converted = convert_record(settled).split("|")
    assert converted[7:10] == [str(250 * FACTOR), str(260 * FACTOR), "0"]
    assert converted[10] == "0.5,0.8"
    assert convert_lease("l|700|1765000000|3") == f"l|{700 * FACTOR}|1765000000|3"
    assert scale(str(MAX_COUNTER_UNITS)) == str(MAX_COUNTER_UNITS)  # a counter saturates, never wraps
    assert scale("-3") == str(-3 * FACTOR)


def test_a_record_that_is_not_one_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=re.escape("11 fields, not 3: 'a|b|c'")):
        convert_record("a|b|c")


def test_a_router_refuses_until_the_0_2_layout_is_migrated() -> None:
    url = "redis://:secret@host:6379/0"
    assert layout_problem(None, None, url, "p") is None
    assert layout_problem("migrated:abc", None, url, "p") is None
    live = layout_problem("0123abcd", None, url, "p")
    assert live is not None
    assert "costrouter budget migrate" in str(live)
    assert "{p:epoch}" in str(live)
    assert "secret" not in str(live)
    unfinished = layout_problem("migrating:abc", None, url, "p")
    assert unfinished is not None
    assert "did not finish" in str(unfinished)
    accepted = layout_problem("migrated:abc", "migrated:abc", url, "p")
    assert accepted is not None
    assert "accept-loss" in str(accepted)
