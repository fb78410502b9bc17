"""The model-group YAML: pydantic models, loading, and the LiteLLM proxy format.

Two formats load into one :class:`RouterConfig`:

* costrouter's own (``groups:`` + ``router:``), see ``configs/router.yaml``;
* a LiteLLM proxy ``config.yaml`` (``model_list:`` + ``router_settings:``), so a team
  can point costrouter at the file it already has.
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator, model_validator

from costrouter.config import price_fields as pf
from costrouter.config.image_key import variant_key
from costrouter.config.modes import canonical_mode, mode_problem
from costrouter.config.proxy_format import is_proxy_format, proxy_to_native
from costrouter.config.proxy_includes import with_includes
from costrouter.config.reader import by_line, format_location, line_of, read_yaml_and_problems, validate
from costrouter.config.redaction import is_secret_name, masked_repr_args
from costrouter.errors import ConfigError, ConfigProblem

logger = logging.getLogger("costrouter")

SECRET_PREFIX = "os.environ/"
BASE_MODEL: Final = "base_model"
"""The ``model_info`` / ``litellm_params`` key naming the model a deployment is priced as."""

MAX_RETRIES: Final = 100
"""More retries than this is a typo: each one is a billed request."""
MAX_SECONDS: Final = 86400.0
"""Timeouts, waits and cooldowns are at most a day."""

RoutingStrategy = Literal[
    "simple-shuffle",
    "least-busy",
    "usage-based-routing",
    "usage-based-routing-v2",
    "latency-based-routing",
    "cost-based-routing",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _per_token(description: str) -> Any:
    return Field(default=None, ge=0, le=pf.MAX_PER_TOKEN_USD, allow_inf_nan=False, description=description)


def _per_item(description: str) -> Any:
    return Field(default=None, ge=0, le=pf.MAX_PER_REQUEST_USD, allow_inf_nan=False, description=description)


class Deployment(_Strict):
    """One deployment of a model group: a model at a provider, with its own prices."""

    id: str | None = Field(default=None, description="Stable id; default `{group}-{index}`.")
    model: str = Field(description="LiteLLM model string, e.g. `openai/gpt-4o-mini`.")
    model_name: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "The model name spans carry (gen_ai.request.model, llm.model_name) and backends price by; "
            "default: `model` without its provider prefix. Give two deployments of one model at "
            "different prices distinct names, so `costrouter prices push` can register both."
        ),
    )
    priority: StrictInt = Field(default=0, description="Lower serves first; equal priorities share load.")
    api_base: str | None = None
    api_key: str | None = Field(default=None, description="A literal, or `os.environ/NAME`.")
    input_cost_per_token: float | None = _per_token("USD per prompt token.")
    output_cost_per_token: float | None = _per_token("USD per completion token.")
    cache_read_input_token_cost: float | None = _per_token("USD per prompt token read from the cache.")
    cache_creation_input_token_cost: float | None = _per_token("USD per prompt token written to the cache.")
    cache_creation_input_token_cost_above_1hr: float | None = _per_token("USD per token written for an hour.")
    output_cost_per_reasoning_token: float | None = _per_token("USD per reasoning token, when priced apart.")
    input_cost_per_audio_token: float | None = _per_token("USD per audio prompt token.")
    output_cost_per_audio_token: float | None = _per_token("USD per audio completion token.")
    input_cost_per_image_token: float | None = _per_token("USD per image prompt token.")
    output_cost_per_image_token: float | None = _per_token("USD per image completion token.")
    input_cost_per_token_above_200k_tokens: float | None = _per_token("Input price once the prompt passes 200k.")
    output_cost_per_token_above_200k_tokens: float | None = _per_token("Output price once the prompt passes 200k.")
    cache_read_input_token_cost_above_200k_tokens: float | None = _per_token("Cache read price past 200k.")
    cache_creation_input_token_cost_above_200k_tokens: float | None = _per_token("Cache write price past 200k.")
    input_cost_per_request: float | None = Field(
        default=None, ge=0, le=pf.MAX_PER_REQUEST_USD, allow_inf_nan=False, description="USD per request."
    )
    input_cost_per_query: float | None = _per_item("USD per rerank search unit (a query over up to 100 documents).")
    input_cost_per_second: float | None = _per_item("USD per second of audio transcribed.")
    output_cost_per_second: float | None = _per_item("USD per second of audio, billed instead of the input second.")
    input_cost_per_character: float | None = _per_token("USD per character of text turned into speech.")
    input_cost_per_image: float | None = _per_item("USD per image generated (read before the output price).")
    output_cost_per_image: float | None = _per_item("USD per image generated.")
    input_cost_per_pixel: float | None = _per_token("USD per pixel generated, when no price per image is set.")
    image_prices: dict[str, float] = Field(
        default_factory=dict,
        description="USD per image by variant: `quality/WxH` or `WxH` (e.g. `hd/1024x1792: 0.12`).",
    )
    prices_from_price_map: bool = Field(
        default=False, description="Take the prices the file leaves out (even output) from LiteLLM's price map."
    )
    model_info: dict[str, Any] = Field(
        default_factory=dict, description="A LiteLLM proxy's `model_info` (prices it holds are read)."
    )
    mode: str | None = Field(
        default=None,
        description=(
            "The kind of call it serves (`chat`, `embedding` …, in costrouter's or LiteLLM's spelling); "
            "default: `model_info.mode`, else the price map's."
        ),
    )
    max_output_tokens: int | None = Field(default=None, gt=0)
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    stream_timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    litellm_params: dict[str, Any] = Field(
        default_factory=dict, description="Further LiteLLM parameters, passed through."
    )

    @field_validator("image_prices", mode="before")
    @classmethod
    def _image_price_keys(cls, value: object) -> object:
        if not isinstance(value, Mapping):
            return value
        problems = [
            f"{key}: {problem}"
            for key, price in value.items()
            if (problem := pf.price_problem(pf.OUTPUT_PER_IMAGE, price)) is not None
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return {variant_key(str(key)): float(price) for key, price in value.items()}

    @field_validator("mode")
    @classmethod
    def _mode_is_routed(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = mode_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return canonical_mode(value)

    @model_validator(mode="before")
    @classmethod
    def _mode_from_model_info(cls, data: Any) -> Any:
        """A proxy's ``model_info.mode`` is the deployment's mode when it sets none itself (checked as one)."""
        if isinstance(data, Mapping) and data.get("mode") is None:
            model_info = data.get("model_info")
            if isinstance(model_info, Mapping) and model_info.get("mode") is not None:
                return {**data, "mode": model_info["mode"]}
        return data

    @field_validator("model_info", "litellm_params")
    @classmethod
    def _base_model_is_a_name(cls, value: dict[str, Any]) -> dict[str, Any]:
        base_model = value.get(BASE_MODEL)
        if base_model is not None and (not isinstance(base_model, str) or not base_model.strip()):
            raise ValueError(f"{BASE_MODEL}: must be a model name such as azure/o1, not {base_model!r}")
        return value

    @property
    def base_model(self) -> str | None:
        """The model LiteLLM prices this deployment as (Azure and other custom deployment names).

        LiteLLM's cost path reads ``litellm_params.base_model`` first, then ``model_info.base_model``
        (``litellm.utils.get_base_model_from_metadata``; the Router puts the deployment's
        ``model_info`` into the call's metadata); its own prices, when the deployment sets them,
        come before either (``litellm.cost_calculator.select_model_name_for_cost_calc``).
        """
        return self.litellm_params.get(BASE_MODEL) or self.model_info.get(BASE_MODEL) or None

    @model_validator(mode="after")
    def _prices_are_sane(self) -> Deployment:
        problems = [
            f"{section}.{key}: {problem}"
            for section, mapping in (("litellm_params", self.litellm_params), ("model_info", self.model_info))
            for key, value in mapping.items()
            if pf.is_price_field(key) and value is not None and (problem := pf.price_problem(key, value))
        ]
        if problems:
            raise ValueError("; ".join(problems))
        file_prices = self.file_prices()
        if not self.prices_from_price_map and (pf.INPUT in file_prices) != (pf.OUTPUT in file_prices):
            given, missing = (pf.INPUT, pf.OUTPUT) if pf.INPUT in file_prices else (pf.OUTPUT, pf.INPUT)
            problems.append(
                f"{missing}: the deployment sets {given} but not {missing}; set it, or set "
                f"{pf.PRICE_MAP_FALLBACK}: true to take it from LiteLLM's price map"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def price_layers(self) -> list[tuple[pf.PriceLayer, dict[str, float]]]:
        """The prices the file writes, by layer, highest precedence first.

        Top-level fields, then ``litellm_params``, then a proxy's ``model_info``.
        """
        top = {
            key: float(value)
            for key in type(self).model_fields
            if pf.is_price_field(key) and (value := getattr(self, key)) is not None
        }
        return [
            ("deployment", top),
            ("litellm_params", pf.prices_in(self.litellm_params)),
            ("model_info", pf.prices_in(self.model_info)),
        ]

    def file_prices(self) -> dict[str, float]:
        """Every price the file writes for this deployment, layers merged by precedence."""
        merged: dict[str, float] = {}
        for _, prices in reversed(self.price_layers()):
            merged.update(prices)
        return merged

    @property
    def priced(self) -> bool:
        """Whether the file sets both the input and the output price (else the public price map is used)."""
        prices = self.file_prices()
        return pf.INPUT in prices and pf.OUTPUT in prices

    def __repr_args__(self) -> list[tuple[str | None, Any]]:
        return masked_repr_args(super().__repr_args__())


class ModelGroup(_Strict):
    """A model group: what a caller names; its deployments and where it falls back to."""

    deployments: list[Deployment] = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list)


class RouterSettings(_Strict):
    """Router-wide behaviour, mapped onto LiteLLM's Router arguments; every number bounded."""

    num_retries: int = Field(default=2, ge=0, le=MAX_RETRIES)
    retry_after: float = Field(
        default=0, ge=0, le=MAX_SECONDS, allow_inf_nan=False, description="Minimum seconds before a retry."
    )
    allowed_fails: int | None = Field(default=None, ge=0, le=1_000_000)
    cooldown_time: float | None = Field(default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    routing_strategy: RoutingStrategy = "simple-shuffle"
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    litellm_args: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Further arguments of LiteLLM's `Router` (`enable_pre_call_checks`, `stream_timeout`, "
            "`context_window_fallbacks` …), passed through as is; a name the installed Router does not "
            "take is left out with a warning, as LiteLLM's proxy does."
        ),
    )

    @field_validator("litellm_args")
    @classmethod
    def _args_costrouter_does_not_own(cls, args: dict[str, Any]) -> dict[str, Any]:
        problems = [
            f"{key}: {OWNED_ROUTER_ARGS[key]}" if key in OWNED_ROUTER_ARGS else f"{key}: set it as router.{key}"
            for key in args
            if key in OWNED_ROUTER_ARGS or key in cls.model_fields
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return args

    def fallback_args(self) -> dict[str, list[Any]]:
        """The fallback-shaped Router arguments (``default_fallbacks`` and rules of other errors)."""
        return {key: value for key in FALLBACK_ARGS if isinstance(value := self.litellm_args.get(key), list)}


OWNED_ROUTER_ARGS: Final = {
    "model_list": "costrouter builds it from the groups",
    "fallbacks": "write each group's fallbacks under the group (a LiteLLM proxy file's router_settings.fallbacks "
    "is read into them)",
}
"""LiteLLM Router arguments costrouter sets itself, and why."""

FALLBACK_ARGS: Final = ("default_fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
"""Router arguments that send a failed call to other groups, which its hold must cover."""

WILDCARD: Final = "*"
"""A group name holding it is a pattern (``openai/*``): it serves every model the pattern matches."""


class CustomProvider(_Strict):
    """One ``custom_provider_map`` entry: a provider name served by a ``CustomLLM`` handler."""

    provider: str = Field(min_length=1, description="The provider prefix deployments use (`my-llm/model`).")
    custom_handler: str = Field(description="`module.instance`: a module next to the config file, else importable.")

    @field_validator("custom_handler")
    @classmethod
    def _dotted_path(cls, value: str) -> str:
        if not _DOTTED.fullmatch(value):
            raise ValueError(
                f"{value!r} must be module.instance (a module next to the config file, or importable); "
                "costrouter does not load handlers from s3:// or gcs://"
            )
        return value


_DOTTED: Final = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


class RouterConfig(_Strict):
    """The whole model-group file."""

    groups: dict[str, ModelGroup] = Field(min_length=1)
    router: RouterSettings = Field(default_factory=RouterSettings)
    custom_provider_map: list[CustomProvider] = Field(
        default_factory=list, description="LiteLLM custom providers, registered when the router is built."
    )

    @field_validator("groups")
    @classmethod
    def _names_are_not_empty(cls, groups: dict[str, ModelGroup]) -> dict[str, ModelGroup]:
        if "" in groups:
            raise ValueError("a group name must not be empty")
        return groups

    @model_validator(mode="after")
    def _references_resolve(self, info: ValidationInfo) -> RouterConfig:
        if info.context is _REFERENCES_CHECKED:
            return self
        problems = reference_problems(self.model_dump(include={"groups"}))
        if problems:
            raise ValueError("; ".join(f"{problem.location}: {problem.reason}" for problem in problems))
        return self

    def deployments(self) -> list[tuple[str, str, Deployment]]:
        """Every ``(group, deployment_id, deployment)``, groups in file order."""
        return [
            (group_name, deployment_id_of(group_name, index, deployment), deployment)
            for group_name, group in self.groups.items()
            for index, deployment in enumerate(group.deployments)
        ]

    def fallback_graph(self) -> dict[str, list[str]]:
        """Each group's fallback targets: its own (else the default fallbacks), then other errors' rules."""
        args = self.router.fallback_args()
        default = [str(target) for target in args.get("default_fallbacks", [])]
        rules = [rule for key in FALLBACK_ARGS[1:] for rule in args.get(key, []) if isinstance(rule, Mapping)]
        graph: dict[str, list[str]] = {}
        for name, group in self.groups.items():
            targets = list(group.fallbacks) or [target for target in default if target != name]
            for rule in rules:
                extra = rule.get(name)
                if isinstance(extra, list):
                    targets.extend(str(target) for target in extra if str(target) not in targets)
            graph[name] = targets
        return graph

    def reachable_groups(self, group: str, limit: int | None = None) -> list[str]:
        """``group`` and every group its fallbacks can reach, in fallback order (at most ``limit``)."""
        graph = self.fallback_graph()
        order: list[str] = []
        seen: set[str] = set()
        pending = deque([group])
        while pending and (limit is None or len(order) < limit):
            name = pending.popleft()
            if name in seen or name not in self.groups:
                continue
            seen.add(name)
            order.append(name)
            pending.extend(graph[name])
        return order

    def wildcard_groups(self) -> list[str]:
        """The groups whose name is a pattern (``openai/*``, ``*``)."""
        return [name for name in self.groups if WILDCARD in name]


_REFERENCES_CHECKED: Final = object()
"""Validation context of a file whose references :func:`parse_router_config` checks itself (with lines)."""


def reference_problems(data: Any) -> list[ConfigProblem]:
    """Fallback targets that do not exist or point back, and deployment ids given twice.

    ``data`` is the raw mapping of the native format; what is not shaped right is left to
    field validation. Each problem carries the source line when ``data`` came from a file.
    """
    groups = data.get("groups") if isinstance(data, Mapping) else None
    if not isinstance(groups, Mapping):
        return []
    problems: list[ConfigProblem] = []
    seen: dict[str, str] = {}
    for group_name, group in groups.items():
        if not isinstance(group, Mapping):
            continue
        fallbacks = group.get("fallbacks")
        for index, target in enumerate(fallbacks if isinstance(fallbacks, list) else []):
            where = ("groups", group_name, "fallbacks", index)
            if target == group_name:
                reason = "a group cannot fall back to itself"
            elif not isinstance(target, str) or target not in groups:
                reason = f"unknown fallback target {target!r}"
            else:
                continue
            problems.append(ConfigProblem(format_location(where), reason, line_of(data, where)))
        deployments = group.get("deployments")
        for index, deployment in enumerate(deployments if isinstance(deployments, list) else []):
            if not isinstance(deployment, Mapping):
                continue
            deployment_id = str(deployment.get("id") or f"{group_name}-{index}")
            id_at = ("groups", group_name, "deployments", index, "id")
            if deployment_id in seen:
                reason = f"duplicate deployment id {deployment_id!r} (also in group {seen[deployment_id]!r})"
                problems.append(ConfigProblem(format_location(id_at), reason, line_of(data, id_at)))
            seen[deployment_id] = str(group_name)
    return problems + _fallback_arg_problems(data, groups)


def _fallback_arg_problems(data: Mapping[str, Any], groups: Mapping[str, Any]) -> list[ConfigProblem]:
    """Targets of ``router.litellm_args``' fallback rules that name no group."""
    router = data.get("router")
    args = router.get("litellm_args") if isinstance(router, Mapping) else None
    if not isinstance(args, Mapping):
        return []
    found: list[tuple[tuple[str | int, ...], Any]] = []
    for key in FALLBACK_ARGS:
        value = args.get(key)
        base: tuple[str | int, ...] = ("router", "litellm_args", key)
        if key == "default_fallbacks" and isinstance(value, list):
            found += [((*base, index), target) for index, target in enumerate(value)]
        elif isinstance(value, list):
            for index, rule in enumerate(value):
                for source, targets in rule.items() if isinstance(rule, Mapping) else ():
                    if isinstance(targets, list):
                        found += [((*base, index, source), target) for target in targets]
    return [
        ConfigProblem(format_location(where), f"unknown fallback target {target!r}", line_of(data, where))
        for where, target in found
        if not isinstance(target, str) or target not in groups
    ]


def deployment_id_of(group: str, index: int, deployment: Deployment) -> str:
    """The deployment's configured id, else ``{group}-{index}``."""
    return deployment.id or f"{group}-{index}"


# ---- loading ---------------------------------------------------------------------------

_DEPLOYMENT_FIELDS = frozenset(
    key
    for key in Deployment.model_fields
    if key not in {"id", "priority", "litellm_params", "model_info", pf.PRICE_MAP_FALLBACK}
    and not pf.is_price_field(key)
)


def parse_router_config(data: Any, source: str = "<dict>", problems: Sequence[ConfigProblem] = ()) -> RouterConfig:
    """Validate a mapping (either format) as a :class:`RouterConfig`; every problem in one ConfigError."""
    return _parse(data, source, problems)[0]


def _parse(data: Any, source: str, problems: Sequence[ConfigProblem]) -> tuple[RouterConfig, list[ConfigProblem]]:
    if isinstance(data, RouterConfig):
        return data, []
    found = list(problems)
    notes: list[ConfigProblem] = []
    if is_proxy_format(data):
        conversion = proxy_to_native(data, _DEPLOYMENT_FIELDS)
        data, notes = conversion.native, conversion.notes
        found += conversion.problems
        if "groups" not in data:  # no model_list: its problem says it all
            raise ConfigError(source, by_line(found))
    found += reference_problems(data)
    return validate(RouterConfig, data, source, found, context=_REFERENCES_CHECKED), notes


def read_router_config(path: str | Path) -> tuple[RouterConfig, list[ConfigProblem]]:
    """Read and validate a model-group YAML file (either format), with notes on what it leaves aside.

    A LiteLLM proxy file's notes name the sections that configure the proxy server only; its
    ``include`` files are read and merged as the proxy merges them (:mod:`costrouter.config.proxy_includes`).
    """
    data, problems = read_yaml_and_problems(path)
    data, problems = with_includes(data, path, problems)
    return _parse(data, str(path), problems)


def load_router_config(path: str | Path) -> RouterConfig:
    """Read and validate a model-group YAML file (either format); its notes go to the log, one line each."""
    config, notes = read_router_config(path)
    for note in notes:
        logger.info("costrouter: %s: %s", path, note)
    return config


def literal_secrets(config: RouterConfig) -> list[str]:
    """``group[index].param`` of every secret written in the file as a literal, not ``os.environ/NAME``."""
    found = []
    for group, group_config in config.groups.items():
        for index, deployment in enumerate(group_config.deployments):
            params = {"api_key": deployment.api_key, **deployment.litellm_params}
            found += [
                f"{group}[{index}].{key}"
                for key, value in params.items()
                if isinstance(value, str) and value and is_secret_name(key) and not value.startswith(SECRET_PREFIX)
            ]
    return found


def resolve_secrets(value: Any, location: str, source: str, problems: list[ConfigProblem]) -> Any:
    """Replace every ``os.environ/NAME`` in ``value`` by the variable's value.

    A missing variable is added to ``problems`` (the value itself is never printed).
    """
    if isinstance(value, str) and value.startswith(SECRET_PREFIX):
        name = value.removeprefix(SECRET_PREFIX)
        resolved = os.environ.get(name)
        if resolved is None:
            problems.append(ConfigProblem(location, f"environment variable {name} is not set"))
        return resolved
    if isinstance(value, Mapping):
        return {key: resolve_secrets(item, f"{location}.{key}", source, problems) for key, item in value.items()}
    return value
