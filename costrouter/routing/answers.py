"""What a routed call's answer cost: what it showed, checked for plausibility, priced at the deployment that served it.

:class:`AnswerPricer` turns a response (or what a stream showed, :class:`Observed`) into the
call's :class:`~costrouter.otel.outcome.Outcome`: its usage bounded by the deployment's limits
(:mod:`costrouter.pricing.usage_bounds`), priced by :func:`costrouter.pricing.cost.price_call`.
No I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from costrouter.budget import BudgetPolicy, CostSettings
from costrouter.config.budgets import Defaults
from costrouter.config.image_key import ImageVariant
from costrouter.money import MAX_CALL_UNITS, attos_to_usd, units_to_usd, usd_to_units
from costrouter.otel.models import ModelFacts
from costrouter.otel.outcome import Outcome
from costrouter.pricing.cost import SettledCost, call_usage, price_call, provider_reported_cost
from costrouter.pricing.fields import hidden_params
from costrouter.pricing.prices import Price, response_cost_usd
from costrouter.pricing.service_tiers import call_tier, reported_tier
from costrouter.pricing.usage_bounds import (
    DEFAULT_LIMITS,
    UsageLimits,
    bounded_count,
    choices_asked,
    implausible_charge_units,
    implausible_figures,
    plausible_amount_usd,
)
from costrouter.routing.operations import Reading
from costrouter.routing.routed_call import RoutedCall
from costrouter.routing.wildcards import GroupResolver

logger = logging.getLogger("costrouter")


@dataclass(slots=True)
class Observed:
    """What a response or a stream showed of the call.

    A value: derive a changed one with ``dataclasses.replace``. Not frozen, because it is built on every
    call and a frozen dataclass sets each field through ``object.__setattr__``.
    """

    deployment_id: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: tuple[str, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    litellm_cost: float | None = None
    usage_source: str | None = None
    output_text: str | None = None
    usage: Any = None
    hidden_params: Mapping[str, Any] = field(default_factory=dict)
    units: Mapping[str, Decimal] = field(default_factory=dict)
    variant: ImageVariant | None = None
    service_tier: str | None = None
    """The service tier the provider reported (:func:`costrouter.pricing.service_tiers.reported_tier`)."""


@dataclass(frozen=True)
class DeploymentFacts:
    """What the router knows of a deployment beyond LiteLLM's view."""

    group: str
    model: str
    provider: str
    price: Price | None
    mode: str | None = None


def price_of_policy(policy: BudgetPolicy | None) -> Price | None:
    """The budget policy's price for a model no price list knows (``None`` without a policy)."""
    if policy is None:
        return None
    defaults = policy.defaults
    return Price(defaults.input_cost_per_token, defaults.output_cost_per_token, None, "default")


class AnswerPricer:
    """The outcome of a routed call from its answer: usage read and bounded, the cost priced. No I/O."""

    def __init__(
        self,
        deployments: Mapping[str, DeploymentFacts],
        models: Mapping[str, ModelFacts],
        usage_limits: Mapping[str, UsageLimits],
        resolver: GroupResolver,
        policy: BudgetPolicy | None,
    ) -> None:
        self.deployments = deployments
        self.models = models
        self.usage_limits = usage_limits
        """Each deployment's largest plausible usage figures (:mod:`costrouter.pricing.usage_bounds`)."""
        self.resolver = resolver
        self.policy = policy
        self.default_price = price_of_policy(policy)
        """The policy's price for a model no price list knows; built once (the policy is frozen)."""

    def outcome_of_response(self, call: RoutedCall, response: Any) -> Outcome:
        """What ``call``'s response showed (usage, finish reasons, the deployment), priced (:meth:`outcome_for`)."""
        reading = call.operation.read(response)
        hidden = reading.hidden_params or hidden_params(response) or {}
        call.record.finish(hidden.get("litellm_call_id"), "success")
        attempts = call.record.attempts
        observed = Observed(
            # A binary response (speech) carries no hidden params: the last attempt served it.
            deployment_id=hidden.get("model_id") or (attempts[-1].deployment_id if attempts else None) or None,
            response_model=reading.response_model or getattr(response, "model", None),
            response_id=reading.response_id or getattr(response, "id", None),
            finish_reasons=reading.finish_reasons,
            prompt_tokens=reading.prompt_tokens,
            completion_tokens=reading.completion_tokens,
            litellm_cost=response_cost_usd(response),
            usage_source="reported" if reading.prompt_tokens is not None else None,
            output_text=reading.output_text,
            usage=reading.usage,
            hidden_params=hidden,
            units=self._units(call, response, reading),
            variant=call.operation.variant(call.request, response) if call.operation.variant else None,
            service_tier=reported_tier(response, reading.usage, hidden),
        )
        return self.outcome_for(call, observed)

    def _units(self, call: RoutedCall, response: Any, reading: Reading) -> Mapping[str, Decimal]:
        """The units a call consumed; a response that reports neither units nor tokens is charged its bound."""
        operation = call.operation
        units = operation.units(call.request, response) if operation.units is not None else {}
        if not units and reading.prompt_tokens is None and operation.usage_bound is not None:
            units = operation.usage_bound(call.request, self.policy.defaults if self.policy else Defaults()).units
        return units

    def outcome_for(self, call: RoutedCall, observed: Observed, error: BaseException | None = None) -> Outcome:
        """Price what the deployment did (:func:`costrouter.cost.compute_cost`), else LiteLLM's cost.

        An answer with an implausible figure (:mod:`costrouter.pricing.usage_bounds`) is charged its hold.
        """
        facts = self.deployments.get(observed.deployment_id or "")
        limits = self.usage_limits.get(observed.deployment_id or "", DEFAULT_LIMITS)
        limits = limits.for_choices(choices_asked(call.request))  # a refused request (n: 0) ends here too
        implausible = implausible_figures(
            observed.usage, observed.prompt_tokens, observed.completion_tokens, observed.units, limits
        )
        if implausible:  # nothing of the answer is read but its counts, held at their bounds
            observed = replace(
                observed,
                prompt_tokens=bounded_count(observed.prompt_tokens, limits.prompt_tokens),
                completion_tokens=bounded_count(observed.completion_tokens, limits.completion_tokens),
                usage=None,
                units={},
                litellm_cost=None,
                hidden_params={},
            )
        prompt_tokens, completion_tokens = observed.prompt_tokens, observed.completion_tokens
        provider = facts.provider if facts else None
        price = facts.price if facts else None
        model = self.models.get(observed.deployment_id or "")
        called = call.wildcard.models.get(observed.deployment_id or "") if call.wildcard is not None else None
        if called is not None and observed.deployment_id is not None:
            price = self.resolver.price(observed.deployment_id, called) or self.default_price
            model = self.resolver.facts(observed.deployment_id, called, provider)
        usage = call_usage(observed.usage, prompt_tokens, completion_tokens, observed.units, observed.variant)
        requested = call.request.get("service_tier") or (price.service_tier if price is not None else None)
        if usage is not None and (requested is not None or observed.service_tier is not None):
            usage = replace(usage, service_tier=call_tier(requested, observed.service_tier))
        provider_usd = provider_reported_cost(observed.usage, observed.hidden_params, provider)
        if not plausible_amount_usd(provider_usd):
            implausible, provider_usd = (*implausible, "provider_cost"), None
        breakdown, settled = price_call(
            price,
            usage,
            observed.litellm_cost,
            provider_usd,
            self.policy.cost if self.policy is not None else CostSettings(),
        )
        if not plausible_amount_usd(settled.usd):
            implausible = (*implausible, "cost")
        if implausible:
            breakdown, settled = self._implausible(call, observed, implausible, settled)
        return Outcome(
            served_group=facts.group if facts else call.group,
            deployment_id=observed.deployment_id,
            provider=facts.provider if facts else None,
            response_model=observed.response_model,
            response_id=observed.response_id,
            finish_reasons=observed.finish_reasons,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=settled.usd,
            cost_units=settled.units,
            prompt_cost_usd=attos_to_usd(breakdown.prompt_attos) if breakdown is not None else None,
            completion_cost_usd=attos_to_usd(breakdown.completion_attos) if breakdown is not None else None,
            usage_source="estimated" if implausible else observed.usage_source,
            output_text=observed.output_text,
            error=error,
            extra=call.extra_attributes,
            breakdown=breakdown,
            settled=settled,
            model=model,
            implausible=implausible,
        )

    def _implausible(
        self, call: RoutedCall, observed: Observed, implausible: tuple[str, ...], priced: SettledCost
    ) -> tuple[None, SettledCost]:
        """The charge of an answer that failed a plausibility check (its hold), logged."""
        reservation = call.reservation
        hold = reservation.amount_units if reservation is not None and reservation.outcome != "rejected" else None
        bounded = usd_to_units(priced.usd) if plausible_amount_usd(priced.usd) else MAX_CALL_UNITS
        charge = implausible_charge_units(hold, bounded)
        usd = units_to_usd(charge)
        logger.warning(
            "costrouter: deployment %s answered implausible %s; the call is charged $%.6f (%s)",
            observed.deployment_id,
            ", ".join(implausible),
            usd,
            "its hold" if hold is not None else "its figures held at their bounds",
        )
        return None, SettledCost(usd, "computed", usd, None, mismatch=False, units=charge)
