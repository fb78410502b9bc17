"""Prices per deployment, the worst-case estimate before a call, the actual cost after it."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any, Final, Literal

import litellm

from costrouter.config import price_fields as pf
from costrouter.config.groups import Deployment, RouterConfig
from costrouter.money import attos_to_units_ceil, attos_to_usd, usd_to_attos
from costrouter.pricing.fields import hidden_params
from costrouter.pricing.image_prices import ImageVariant, price_map_variants, variant_rate
from costrouter.pricing.service_tiers import servable_tiers

PriceSource = Literal["deployment", "litellm_params", "model_info", "price_map", "derived", "default"]
"""Where one price came from: a layer of the file (highest first), LiteLLM's price map, a rule
(``derived``: a cache or modality price that falls back to the input or output price, as LiteLLM
bills it), or the budget policy's default price for unpriced models."""

_INPUT_SIDE = (pf.INPUT, pf.CACHE_READ, pf.CACHE_CREATION, pf.CACHE_CREATION_1H, pf.INPUT_AUDIO, pf.INPUT_IMAGE)
_OUTPUT_SIDE = (pf.OUTPUT, pf.REASONING, pf.OUTPUT_AUDIO, pf.OUTPUT_IMAGE)
_INCLUSIVE_THRESHOLD_PROVIDERS = frozenset({"xai"})  # bill the higher tier once the prompt reaches it


@dataclass(frozen=True)
class Price:
    """Every price of one deployment (USD, by LiteLLM's price-map names) and its largest output.

    ``rates`` holds each dimension the file or the price map gives (input and output always);
    ``sources`` says where each came from. :meth:`tier` resolves the prices one call pays.
    """

    input_per_token: float
    output_per_token: float
    max_output_tokens: int | None
    source: PriceSource
    rates: Mapping[str, float] = field(default_factory=dict)
    sources: Mapping[str, PriceSource] = field(default_factory=dict)
    inclusive_threshold: bool = False
    image_rates: Mapping[str, float] = field(default_factory=dict)
    """USD per image by variant (``quality/WxH`` or ``WxH``): :mod:`costrouter.image_prices`."""
    image_source: PriceSource = "deployment"
    base_model: str | None = None
    """The model the price map priced the deployment as, when it names a ``base_model``."""
    service_tier: str | None = None
    """The service tier the deployment asks for by default (its ``litellm_params.service_tier``)."""
    suspect_free: bool = False
    """$0 from the price map for a model the map does not list as free (:func:`free_warning`)."""
    _tiers: tuple[tuple[int, Mapping[str, float]], ...] = field(init=False, repr=False, compare=False)
    _service: Mapping[str, Mapping[str, float]] = field(init=False, repr=False, compare=False)
    """Each service tier's own flat prices (``input_cost_per_token_flex`` under ``flex``, by base name)."""
    _service_tiers: Mapping[str, tuple[tuple[int, Mapping[str, float]], ...]] = field(
        init=False, repr=False, compare=False
    )
    """Each service tier's own threshold prices."""
    _all_thresholds: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _atto_tiers: dict[tuple[str | None, int], Mapping[str, int]] = field(init=False, repr=False, compare=False)
    units: Mapping[str, int] = field(init=False, repr=False, compare=False)
    """The price of each unit in atto-dollars (:func:`unit_rates`)."""
    inexact: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The file's prices finer than an atto-dollar, rounded to one at load (:func:`costrouter.money.usd_to_attos`)."""

    def __post_init__(self) -> None:
        rates = {**self.rates, pf.INPUT: self.input_per_token, pf.OUTPUT: self.output_per_token}
        sources = {pf.INPUT: self.source, pf.OUTPUT: self.source, **self.sources}
        tiers: dict[int, dict[str, float]] = {}
        service: dict[str, dict[str, float]] = {}
        service_tiers: dict[str, dict[int, dict[str, float]]] = {}
        for key, value in rates.items():
            parsed = pf.parse_threshold(key)
            if parsed is not None:
                tiers.setdefault(parsed[1], {})[parsed[0]] = value
                continue
            tiered = pf.parse_service_tier(key)
            if tiered is None:
                continue
            base, service_tier = tiered
            above = pf.parse_threshold(base)
            if above is None:
                service.setdefault(service_tier, {})[base] = value
            else:
                service_tiers.setdefault(service_tier, {}).setdefault(above[1], {})[above[0]] = value
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "_tiers", tuple(sorted(tiers.items())))
        object.__setattr__(self, "_service", service)
        object.__setattr__(
            self, "_service_tiers", {name: tuple(sorted(found.items())) for name, found in service_tiers.items()}
        )
        everything = {threshold for threshold, _ in self._tiers}
        everything.update(threshold for found in service_tiers.values() for threshold in found)
        object.__setattr__(self, "_all_thresholds", tuple(sorted(everything)))
        object.__setattr__(self, "_atto_tiers", {})
        object.__setattr__(self, "units", unit_rates(rates))
        # The price map's own (LiteLLM's float noise such as 1.5000020000000002e-05) round silently.
        inexact = [key for key, value in rates.items() if sources.get(key) != "price_map" and usd_to_attos(value)[1]]
        if self.image_source != "price_map":
            inexact += [f"image {key}" for key, value in self.image_rates.items() if usd_to_attos(value)[1]]
        object.__setattr__(self, "inexact", tuple(inexact))

    @property
    def thresholds(self) -> tuple[int, ...]:
        """The prompt-token thresholds past which other prices apply (of any service tier), ascending."""
        return self._all_thresholds

    @property
    def service_tiers(self) -> tuple[str, ...]:
        """The service tiers priced apart from the standard price (``flex``, ``priority`` …)."""
        return tuple(name for name in pf.SERVICE_TIERS if name in self._service or name in self._service_tiers)

    def crosses(self, prompt_tokens: int, threshold: int) -> bool:
        """Whether a prompt of ``prompt_tokens`` pays the prices above ``threshold``."""
        return prompt_tokens > threshold or (self.inclusive_threshold and prompt_tokens == threshold)

    def tier(self, prompt_tokens: int, service_tier: str | None = None) -> dict[str, float]:
        """The price of each dimension for a call whose prompt has ``prompt_tokens`` tokens.

        LiteLLM's rules (``litellm_core_utils/llm_cost_calc/utils.py``, ``_get_token_base_cost``):
        a service tier's price (``input_cost_per_token_flex``) replaces the standard one it names;
        every threshold the prompt passes overrides the prices it names, the tier's own threshold
        price first; a missing cache price is the input price; a missing audio or image price is
        the input or output price; a missing reasoning price is the output price.
        ``service_tier`` is a priced tier (:func:`costrouter.config.price_fields.billed_tier`).
        """
        service = self._service.get(service_tier, {}) if service_tier is not None else {}
        flat = {key: self.rates[key] for key in pf.TIERED_FIELDS if key in self.rates}
        flat.update((key, value) for key, value in service.items() if key in pf.TIERED_FIELDS)
        if flat[pf.OUTPUT] == 0 and pf.OUTPUT_IMAGE in self.rates:
            flat[pf.OUTPUT] = self.rates[pf.OUTPUT_IMAGE]  # LiteLLM: an image model bills output as image tokens
        if service_tier is None or service_tier not in self._service_tiers:
            for threshold, prices in self._tiers:
                if self.crosses(prompt_tokens, threshold):
                    flat.update(prices)
        else:
            standard = dict(self._tiers)
            own = dict(self._service_tiers[service_tier])
            for threshold in sorted(standard.keys() | own.keys()):
                if self.crosses(prompt_tokens, threshold):
                    flat.update(standard.get(threshold, {}))
                    flat.update(own.get(threshold, {}))
        return _resolved(flat, self.rates, service)

    def atto_tier(self, prompt_tokens: int, service_tier: str | None = None) -> Mapping[str, int]:
        """:meth:`tier` in atto-dollars (cached per service tier and threshold), for the cost function."""
        crossed = 0
        for threshold in self._all_thresholds:
            crossed += self.crosses(prompt_tokens, threshold)
        cached = self._atto_tiers.get((service_tier, crossed))
        if cached is None:
            cached = {key: usd_to_attos(value)[0] for key, value in self.tier(prompt_tokens, service_tier).items()}
            self._atto_tiers[service_tier, crossed] = cached
        return cached

    def unit_rates_for(self, variant: ImageVariant | None) -> Mapping[str, int]:
        """:attr:`units`, with the price of an image of ``variant`` (quality, size) when priced by variant."""
        if variant is None or not self.image_rates:
            return self.units
        rate = variant_rate(self.image_rates, variant[0], variant[1])
        if rate is None:
            return self.units
        return {**self.units, "images": usd_to_attos(rate)[0], "pixels": 0}

    def upper_bound_usd(
        self,
        prompt_tokens: int,
        max_output_tokens: int,
        units: Mapping[str, Decimal] | None = None,
        variant: ImageVariant | None = None,
        service_tier: str | None = None,
    ) -> float:
        """:meth:`upper_bound_attos` in USD (the nearest float)."""
        return attos_to_usd(self.upper_bound_attos(prompt_tokens, max_output_tokens, units, variant, service_tier))

    def upper_bound_attos(
        self,
        prompt_tokens: int,
        max_output_tokens: int,
        units: Mapping[str, Decimal] | None = None,
        variant: ImageVariant | None = None,
        service_tier: str | None = None,
    ) -> int:
        """The most a call can cost (atto-dollars), whatever its usage turns out to be.

        Every prompt token at the dearest input-side price, every output token at the dearest
        output-side price (of any threshold ``prompt + output`` can reach, and of any service
        tier the request may be served at: :func:`servable_tiers` of ``service_tier``, else of the
        deployment's own), plus the per-request fee, plus each unit bound (``search_units``,
        ``audio_seconds`` … see :func:`unit_rates`) at its price (a fractional count of units
        rounds up to the atto-dollar).
        """
        reach = prompt_tokens + max_output_tokens
        tiers = [
            self.atto_tier(prompt, served)
            for served in servable_tiers(service_tier or self.service_tier)
            for prompt in (0, *(threshold + 1 for threshold in self.thresholds if reach >= threshold))
        ]
        input_rate = max(tier[key] for tier in tiers for key in _INPUT_SIDE)
        output_rate = max(tier[key] for tier in tiers for key in _OUTPUT_SIDE)
        fee = tiers[0][pf.REQUEST]
        unit_rate = self.unit_rates_for(variant)
        per_unit = sum(
            int((count * unit_rate[name]).to_integral_value(rounding=ROUND_CEILING))
            for name, count in (units or {}).items()
        )
        return prompt_tokens * input_rate + max_output_tokens * output_rate + fee + per_unit

    def dimensions(self) -> list[tuple[str, float, PriceSource]]:
        """Every price of the deployment, derived ones included, with where it came from."""
        rows: list[tuple[str, float, PriceSource]] = []
        base = self.tier(0)
        for key in (*pf.PER_TOKEN_FIELDS, pf.REQUEST):
            if key in self.rates:
                rows.append((key, self.rates[key], self.sources.get(key, "derived")))
            elif key in base:
                rows.append((key, base[key], "derived"))
        rows.extend(
            (key, self.rates[key], self.sources.get(key, "derived")) for key in pf.UNIT_FIELDS if key in self.rates
        )
        rows.extend((f"image {key}", value, self.image_source) for key, value in sorted(self.image_rates.items()))
        rows.extend(
            (key, value, self.sources.get(key, "derived"))
            for key, value in sorted(self.rates.items())
            if pf.parse_threshold(key) is not None or pf.parse_service_tier(key) is not None
        )
        return rows


UNITS: Final = ("search_units", "audio_seconds", "characters", "images", "pixels")
"""What a call priced per unit consumes, besides tokens (the names of :func:`unit_rates`)."""


def unit_rates(rates: Mapping[str, float]) -> dict[str, int]:
    """The price of each unit in atto-dollars, by LiteLLM's rules.

    A second of audio costs ``output_cost_per_second`` when it is set above zero, else
    ``input_cost_per_second``; an image costs ``input_cost_per_image``, else
    ``output_cost_per_image``; pixels are billed only when neither price per image is set.
    """

    def rate(key: str) -> int:
        return usd_to_attos(rates.get(key, 0.0))[0]

    per_image = rates.get(pf.INPUT_PER_IMAGE, rates.get(pf.OUTPUT_PER_IMAGE))
    return {
        "search_units": rate(pf.QUERY),
        "audio_seconds": rate(pf.OUTPUT_SECOND) if rates.get(pf.OUTPUT_SECOND) else rate(pf.INPUT_SECOND),
        "characters": rate(pf.CHARACTER),
        "images": usd_to_attos(per_image)[0] if per_image is not None else 0,
        "pixels": rate(pf.PIXEL) if per_image is None else 0,
    }


def _resolved(
    flat: Mapping[str, float], rates: Mapping[str, float], service: Mapping[str, float] | None = None
) -> dict[str, float]:
    input_rate, output_rate = flat[pf.INPUT], flat[pf.OUTPUT]
    cache_creation = flat.get(pf.CACHE_CREATION, input_rate)
    service = service or {}
    if pf.REASONING in service:
        reasoning = service[pf.REASONING]
    elif pf.OUTPUT in service:  # LiteLLM: a tier that prices output apart bills reasoning at that output price
        reasoning = output_rate
    else:
        reasoning = rates.get(pf.REASONING, output_rate)
    return {
        pf.INPUT: input_rate,
        pf.OUTPUT: output_rate,
        pf.CACHE_READ: flat.get(pf.CACHE_READ, input_rate),
        pf.CACHE_CREATION: cache_creation,
        pf.CACHE_CREATION_1H: flat.get(pf.CACHE_CREATION_1H, cache_creation),
        pf.INPUT_AUDIO: service.get(pf.INPUT_AUDIO, rates.get(pf.INPUT_AUDIO, input_rate)),
        pf.INPUT_IMAGE: service.get(pf.INPUT_IMAGE, rates.get(pf.INPUT_IMAGE, input_rate)),
        pf.REASONING: reasoning,
        pf.OUTPUT_AUDIO: rates.get(pf.OUTPUT_AUDIO, output_rate),
        pf.OUTPUT_IMAGE: rates.get(pf.OUTPUT_IMAGE, output_rate),
        pf.REQUEST: rates.get(pf.REQUEST, 0.0),
    }


def price_map_entry(model: str) -> Mapping[str, Any] | None:
    """LiteLLM's price-map entry of ``model`` (``litellm.get_model_info``), ``None`` when unmapped."""
    try:
        info = litellm.get_model_info(model)
    except Exception:  # LiteLLM raises a bare Exception for unmapped models
        return None
    return info


def price_map_model(deployment: Deployment) -> str:
    """The model whose price-map entry prices ``deployment``: its ``base_model``, else its ``model``.

    A ``base_model`` without a provider LiteLLM knows takes the deployment's provider, as
    ``litellm.cost_calculator.select_model_name_for_cost_calc`` prefixes it (``o1`` on Azure is
    ``azure/o1``).
    """
    base_model = deployment.base_model
    if base_model is None:
        return deployment.model
    provider = deployment.litellm_params.get("custom_llm_provider") or (
        deployment.model.split("/", 1)[0] if "/" in deployment.model else None
    )
    if provider is None or base_model.split("/", 1)[0] in litellm.provider_list:
        return base_model
    return f"{provider}/{base_model}"


def known_free(entry: Mapping[str, Any] | None) -> bool:
    """Whether LiteLLM means the entry's $0 (a listed free model, a self-hosted provider's) or made it up.

    LiteLLM answers some names it does not list (``azure/o_series/o1``) with an entry of zero
    prices and no ``mode``; an entry it prices at $0 on purpose (``ollama/llama3.2``, listed or
    by the provider's rule) says which kind of call it serves.
    """
    return entry is not None and entry.get("mode") is not None


def free_warning(deployment_id: str, price: Price) -> str:
    """The load-time warning for a deployment priced at $0 by a price-map entry that lists no price."""
    model = f"base_model {price.base_model}" if price.base_model else "its model"
    return (
        f"deployment {deployment_id} is priced at $0 by LiteLLM's price map, which lists no price for "
        f"{model}: its calls would be traced and budgeted as free. Set its prices (an explicit 0 if it is "
        f"free), a base_model the map prices, or {pf.PRICE_MAP_FALLBACK}: true to accept the map's $0."
    )


def inexact_warning(deployment_id: str, price: Price) -> str:
    """The load-time warning for prices finer than an atto-dollar (rounded to one: :attr:`Price.inexact`)."""
    return (
        f"deployment {deployment_id}: {', '.join(price.inexact)} carry more than 18 decimal places of a "
        "dollar; costrouter prices in atto-dollars (1e-18 USD) and rounds them to the nearest one"
    )


def deployment_price(deployment: Deployment) -> Price | None:
    """Every price of ``deployment``, field by field: the file's layers, then the price map.

    Precedence, highest first: the deployment's top-level fields, ``litellm_params``, a proxy's
    ``model_info``, LiteLLM's public price map entry of its ``base_model``, else of its model
    (:func:`price_map_model`). ``None`` when no layer has an input price (unpriced: the budget
    policy's default price applies).
    """
    map_model = price_map_model(deployment)
    entry = price_map_entry(map_model)
    map_prices = pf.prices_in(entry or {})
    rates: dict[str, float] = {}
    sources: dict[str, PriceSource] = {}
    layers: list[tuple[PriceSource, Mapping[str, float]]] = [*deployment.price_layers(), ("price_map", map_prices)]
    for name, prices in layers:
        for key, value in prices.items():
            if key not in rates:
                rates[key] = value
                sources[key] = name
    image_rates: dict[str, float] = dict(deployment.image_prices)
    image_source: PriceSource = "deployment"
    if not image_rates and not any(key in deployment.file_prices() for key in pf.IMAGE_FIELDS):
        image_rates, image_source = price_map_variants(map_model), "price_map"
    if pf.INPUT not in rates:
        if not image_rates and not any(key in rates for key in pf.UNIT_FIELDS):
            return None
        rates[pf.INPUT] = 0.0  # priced per unit only (search units, seconds, characters, images)
        sources[pf.INPUT] = "default"
    if pf.OUTPUT not in rates:
        rates[pf.OUTPUT] = 0.0  # a price-map entry without an output price: LiteLLM bills output at 0
        sources[pf.OUTPUT] = "default"
    map_max_output = (entry.get("max_output_tokens") or entry.get("max_tokens")) if entry is not None else None
    max_output = deployment.max_output_tokens or map_max_output
    provider = str(deployment.litellm_params.get("custom_llm_provider") or deployment.model.split("/", 1)[0])
    from_map_only = not deployment.file_prices() and not deployment.image_prices
    requested_tier = deployment.litellm_params.get("service_tier")
    return Price(
        rates[pf.INPUT],
        rates[pf.OUTPUT],
        int(max_output) if max_output else None,
        sources[pf.INPUT],
        rates,
        sources,
        inclusive_threshold=provider in _INCLUSIVE_THRESHOLD_PROVIDERS,
        image_rates=image_rates,
        image_source=image_source,
        base_model=map_model if deployment.base_model is not None else None,
        service_tier=requested_tier if isinstance(requested_tier, str) else None,
        suspect_free=from_map_only
        and not deployment.prices_from_price_map
        and not any(rates.values())
        and not any(image_rates.values())
        and not known_free(entry),
    )


@dataclass(frozen=True)
class HoldLine:
    """One price's :meth:`Price.upper_bound_attos` without units, as integers looked up by reach.

    ``thresholds`` are the price's (ascending); ``input_rates[k]`` and ``output_rates[k]`` the
    dearest input-side and output-side prices of the tiers a call reaching ``k`` thresholds may
    pay (the running maximum), ``fee`` the per-request fee: the bound of ``prompt`` and ``output``
    tokens is ``prompt x input_rates[k] + output x output_rates[k] + fee`` with
    ``k = bisect_right(thresholds, prompt + output)``, exactly :meth:`Price.upper_bound_attos`.
    """

    thresholds: tuple[int, ...]
    input_rates: tuple[int, ...]
    output_rates: tuple[int, ...]
    fee: int

    @classmethod
    def of(cls, price: Price, served: tuple[str | None, ...]) -> HoldLine:
        """The line of ``price`` for a call that may be served at the tiers ``served`` (:func:`servable_tiers`)."""
        input_rates: list[int] = []
        output_rates: list[int] = []
        input_rate = output_rate = 0
        for index, prompt in enumerate((0, *(threshold + 1 for threshold in price.thresholds))):
            tiers = [price.atto_tier(prompt, tier) for tier in served]
            reached_input = max(tier[key] for tier in tiers for key in _INPUT_SIDE)
            reached_output = max(tier[key] for tier in tiers for key in _OUTPUT_SIDE)
            input_rate = reached_input if index == 0 else max(input_rate, reached_input)
            output_rate = reached_output if index == 0 else max(output_rate, reached_output)
            input_rates.append(input_rate)
            output_rates.append(output_rate)
        fee = price.atto_tier(0, served[0])[pf.REQUEST]
        return cls(price.thresholds, tuple(input_rates), tuple(output_rates), fee)

    def attos(self, prompt_tokens: int, max_output_tokens: int) -> int:
        """The bound of a call of ``prompt_tokens`` and ``max_output_tokens`` (no units), in atto-dollars."""
        reached = bisect_right(self.thresholds, prompt_tokens + max_output_tokens) if self.thresholds else 0
        return prompt_tokens * self.input_rates[reached] + max_output_tokens * self.output_rates[reached] + self.fee


@dataclass(frozen=True)
class WorstCase:
    """The prices a call may end up paying (every deployment it can reach), for its estimate."""

    prices: tuple[Price, ...]
    max_output_tokens: int | None
    _lines: dict[tuple[str | None, ...] | None, tuple[HoldLine, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    """Each request tier's :class:`HoldLine` per price, keyed by :func:`servable_tiers` of the
    request's tier (``None``: the request names none, each deployment's own applies). Prices
    never change once loaded, so a line is computed once per worst case and tier."""

    def hold_attos(self, prompt_tokens: int, max_output_tokens: int, service_tier: str | None = None) -> int:
        """:func:`estimate_attos` of a call without units: the largest :class:`HoldLine` bound of the prices."""
        if not self.prices:
            return 0
        key = servable_tiers(service_tier) if service_tier else None
        lines = self._lines.get(key)
        if lines is None:
            lines = tuple(
                HoldLine.of(price, key if key is not None else servable_tiers(price.service_tier))
                for price in self.prices
            )
            self._lines[key] = lines
        if len(lines) == 1:
            return lines[0].attos(prompt_tokens, max_output_tokens)
        return max(line.attos(prompt_tokens, max_output_tokens) for line in lines)


@dataclass(frozen=True)
class PriceBook:
    """Every deployment's price and which deployments each group holds."""

    prices: Mapping[str, Price | None]
    group_deployments: Mapping[str, Sequence[str]]

    @classmethod
    def from_config(cls, config: RouterConfig) -> PriceBook:
        """Look every deployment's price up once, when the router is built."""
        prices: dict[str, Price | None] = {}
        groups: dict[str, list[str]] = {}
        for group, deployment_id, deployment in config.deployments():
            prices[deployment_id] = deployment_price(deployment)
            groups.setdefault(group, []).append(deployment_id)
        return cls(prices, groups)

    def unpriced(self) -> list[str]:
        """Deployments with no price in the file nor in the price map."""
        return [deployment_id for deployment_id, price in self.prices.items() if price is None]

    def suspect_free(self) -> list[str]:
        """Warnings for deployments priced at $0 by a price-map entry that lists no price (:func:`free_warning`)."""
        return [
            free_warning(deployment_id, price)
            for deployment_id, price in self.prices.items()
            if price is not None and price.suspect_free
        ]

    def inexact(self) -> list[str]:
        """Warnings for deployments whose prices were rounded to the atto-dollar (:func:`inexact_warning`)."""
        return [
            inexact_warning(deployment_id, price)
            for deployment_id, price in self.prices.items()
            if price is not None and price.inexact
        ]

    def worst_case(
        self, groups: Iterable[str], default: Price | None, called: Mapping[str, Price | None] | None = None
    ) -> WorstCase:
        """Every price a call over ``groups`` may pay, and the largest output among them.

        An unpriced deployment counts at ``default`` (a policy price); with no default
        it counts as free, which the router reports at build time. ``called`` replaces the
        price of a wildcard group's deployments by that of the model the call names.
        """
        prices: list[Price] = []
        max_output: int | None = None
        for group in groups:
            for deployment_id in self.group_deployments.get(group, ()):
                price = (
                    called[deployment_id] if called and deployment_id in called else self.prices.get(deployment_id)
                ) or default
                if price is None:
                    continue
                prices.append(price)
                if price.max_output_tokens is not None:
                    max_output = max(max_output or 0, price.max_output_tokens)
        return WorstCase(tuple(prices), max_output)


def output_cap(requested: int | None, worst: WorstCase, policy_default: int) -> int:
    """The most output tokens a call can produce: ``max_tokens``, else a capped default."""
    if requested is not None:
        return requested
    if worst.max_output_tokens is not None:
        return min(policy_default, worst.max_output_tokens)
    return policy_default


def estimate_attos(
    prompt_tokens: int,
    max_output_tokens: int,
    worst: WorstCase,
    units: Mapping[str, Decimal] | None = None,
    variant: ImageVariant | None = None,
    service_tier: str | None = None,
) -> int:
    """Worst-case cost in atto-dollars: the highest upper bound (:meth:`Price.upper_bound_attos`) of the prices.

    ``service_tier`` is the request's (each deployment's own applies when the request names none).
    Without units it is :meth:`WorstCase.hold_attos` (the same figure, from lines cached per tier).
    """
    if not units:
        return worst.hold_attos(prompt_tokens, max_output_tokens, service_tier)
    return max(
        (
            price.upper_bound_attos(prompt_tokens, max_output_tokens, units, variant, service_tier)
            for price in worst.prices
        ),
        default=0,
    )


def estimate_units(
    prompt_tokens: int,
    max_output_tokens: int,
    worst: WorstCase,
    units: Mapping[str, Decimal] | None = None,
    variant: ImageVariant | None = None,
    service_tier: str | None = None,
) -> int:
    """:func:`estimate_attos` in units, rounded up: the hold of a call."""
    if not units:  # estimate_attos's own shortcut, one call fewer on every chat call's estimate
        return attos_to_units_ceil(worst.hold_attos(prompt_tokens, max_output_tokens, service_tier))
    return attos_to_units_ceil(estimate_attos(prompt_tokens, max_output_tokens, worst, units, variant, service_tier))


def estimate_usd(
    prompt_tokens: int,
    max_output_tokens: int,
    worst: WorstCase,
    units: Mapping[str, Decimal] | None = None,
    variant: ImageVariant | None = None,
    service_tier: str | None = None,
) -> float:
    """:func:`estimate_attos` in USD (the nearest float)."""
    return attos_to_usd(estimate_attos(prompt_tokens, max_output_tokens, worst, units, variant, service_tier))


def response_cost_usd(response: Any) -> float | None:
    """The cost LiteLLM computed for ``response`` with the deployment's own prices."""
    hidden = hidden_params(response)
    cost = hidden.get("response_cost") if isinstance(hidden, Mapping) else None
    return float(cost) if isinstance(cost, (int, float)) else None
