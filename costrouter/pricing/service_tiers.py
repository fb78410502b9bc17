"""Service tiers: which tiers a request may be served at, and which one a finished call is billed at.

LiteLLM's rules (``litellm/cost_calculator.py``): the tier the provider reports wins when it is a
priced tier or says standard (``_resolve_billable_service_tier``); it is read from the response,
then its usage block, then Gemini's ``trafficType`` (``_served_service_tier``); else the request's
tier decides, ``auto`` meaning standard (``_normalize_service_tier``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from costrouter.config import price_fields as pf
from costrouter.pricing.fields import field_of

STANDARD: Final = "default"
"""The tier name a call billed at the standard price carries (OpenAI's name for it)."""

_GEMINI_TRAFFIC_TYPES: Final = {
    "ON_DEMAND": STANDARD,
    "ON_DEMAND_PRIORITY": "priority",
    "ON_DEMAND_FLEX": "flex",
    "FLEX": "flex",
    "BATCH": "flex",
}
"""Gemini / Vertex AI ``usageMetadata.trafficType`` as a tier (``_GEMINI_TRAFFIC_TYPE_TO_SERVICE_TIER``)."""


_field = field_of


def reported_tier(response: Any, usage: Any = None, hidden_params: Mapping[str, Any] | None = None) -> str | None:
    """The ``service_tier`` the provider reported: on the response, else its usage, else Gemini's traffic type.

    Untrusted: only a string comes back, and :func:`call_tier` maps it onto the priced tiers.
    """
    for source in (response, usage):
        tier = _field(source, "service_tier") if source is not None else None
        if isinstance(tier, str):
            return tier
    if not hidden_params:
        return None
    specific = hidden_params.get("provider_specific_fields")
    traffic = specific.get("traffic_type") if isinstance(specific, Mapping) else None
    return _GEMINI_TRAFFIC_TYPES.get(traffic.upper(), STANDARD) if isinstance(traffic, str) else None


def call_tier(requested: object, served: object) -> str | None:
    """The tier a call is billed at: a priced tier (``flex`` …), :data:`STANDARD`, or ``None`` when nothing says.

    ``served`` is :func:`reported_tier`; ``requested`` the request's ``service_tier`` (or the deployment's).
    """
    for name in (served, requested):
        if not isinstance(name, str):
            continue
        tier = pf.billed_tier(name)
        if tier is not None:
            return tier
        if name.lower() in pf.STANDARD_TIERS:
            return STANDARD
    return None


def servable_tiers(requested: str | None) -> tuple[str | None, ...]:
    """The priced tiers a request asking for ``requested`` may be served (and billed) at; ``None`` is standard.

    OpenAI's documented behaviour: ``auto`` (the default) serves at the project's tier, ``default``
    unless the project is set otherwise (name the tier on the deployment then); ``flex`` serves at
    flex or refuses (429 ``resource unavailable``), it never upgrades; ``priority`` may be served at
    standard when the priority ramp is exceeded. A tier with no price of its own bills as standard.
    """
    tier = pf.billed_tier(requested)
    if tier is None:
        return (None,)
    if tier == "flex":
        return ("flex",)
    return (tier, None)
