"""Service tiers: which tier a response reports, which one a call is billed at, which ones a request may reach."""

from __future__ import annotations

from typing import Any

import litellm
import pytest

from costrouter.pricing.service_tiers import STANDARD, call_tier, reported_tier, servable_tiers


class _Response:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


@pytest.mark.parametrize(
    ("requested", "served", "billed"),
    [
        ("flex", "flex", "flex"),
        ("priority", "default", STANDARD),  # downgraded past the priority ramp: billed standard
        ("priority", None, "priority"),  # nothing reported: the request decides
        ("auto", None, None),
        (None, "priority", "priority"),  # a project set to priority reports it
        (None, "FAST", "priority"),  # LiteLLM prices "fast" as priority
        ("flex", "scale", "flex"),  # a tier with no price of its own: the request decides
        (None, "standard", STANDARD),
        ("default", None, STANDARD),
        (None, None, None),
        (None, 7, None),  # not a string: ignored
    ],
)
def test_the_billed_tier_follows_litellms_rule(requested: object, served: object, billed: str | None) -> None:
    assert call_tier(requested, served) == billed


def test_the_reported_tier_is_read_from_the_response_then_usage_then_geminis_traffic_type() -> None:
    assert reported_tier(_Response(service_tier="flex"), {"service_tier": "priority"}) == "flex"
    assert reported_tier(_Response(), {"service_tier": "priority"}) == "priority"
    assert reported_tier({"service_tier": "default"}) == "default"
    hidden = {"provider_specific_fields": {"traffic_type": "ON_DEMAND_PRIORITY"}}
    assert reported_tier(_Response(), None, hidden) == "priority"
    assert reported_tier(_Response(), None, {"provider_specific_fields": {"traffic_type": "ON_DEMAND"}}) == STANDARD
    assert reported_tier(_Response(service_tier=["flex"]), None, {"provider_specific_fields": "junk"}) is None


@pytest.mark.parametrize(
    ("requested", "tiers"),
    [
        (None, (None,)),
        ("auto", (None,)),
        ("flex", ("flex",)),
        ("priority", ("priority", None)),
        ("fast", ("priority", None)),
    ],
)
def test_the_tiers_a_request_may_be_served_at(requested: str | None, tiers: tuple[str | None, ...]) -> None:
    assert servable_tiers(requested) == tiers


def test_the_tier_is_read_from_litellms_objects_where_they_keep_it() -> None:
    served = litellm.ModelResponse(model="gpt-5", service_tier="flex")  # a pydantic extra
    chunk = litellm.ModelResponseStream(model="gpt-5", service_tier="priority")
    plain = litellm.ModelResponse(model="gpt-5", usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    assert reported_tier(served) == "flex"
    assert reported_tier(chunk) == "priority"
    assert reported_tier(plain, plain.usage, {}) is None
