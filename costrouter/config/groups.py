"""The model-group YAML: pydantic models, loading, and the LiteLLM proxy format.

Two formats load into one :class:`RouterConfig`:

* costrouter's own (``groups:`` + ``router:``), see ``configs/router.yaml``;
* a LiteLLM proxy ``config.yaml`` (``model_list:`` + ``router_settings:``), so a team
  can point costrouter at the file it already has.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator, model_validator

from costrouter.config import price_fields as pf
from costrouter.config.image_key import variant_key
from costrouter.config.modes import canonical_mode, mode_problem
from costrouter.config.reader import format_location, line_of, lined, read_yaml_and_problems, validate
from costrouter.config.redaction import masked_repr_args
from costrouter.errors import ConfigProblem

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


class RouterConfig(_Strict):
    """The whole model-group file."""

    groups: dict[str, ModelGroup] = Field(min_length=1)
    router: RouterSettings = Field(default_factory=RouterSettings)

    @field_validator("groups")
    @classmethod
    def _names_are_words(cls, groups: dict[str, ModelGroup]) -> dict[str, ModelGroup]:
        for name in groups:
            if not name or "/" in name:
                raise ValueError(f"group name {name!r} must be non-empty and contain no '/'")
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
        """Each group's fallback targets."""
        return {name: group.fallbacks for name, group in self.groups.items()}

    def reachable_groups(self, group: str, limit: int | None = None) -> list[str]:
        """``group`` and every group its fallbacks can reach, in fallback order (at most ``limit``)."""
        order: list[str] = []
        seen: set[str] = set()
        pending = deque([group])
        while pending and (limit is None or len(order) < limit):
            name = pending.popleft()
            if name in seen or name not in self.groups:
                continue
            seen.add(name)
            order.append(name)
            pending.extend(self.groups[name].fallbacks)
        return order


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
    return problems


def deployment_id_of(group: str, index: int, deployment: Deployment) -> str:
    """The deployment's configured id, else ``{group}-{index}``."""
    return deployment.id or f"{group}-{index}"


# ---- loading ---------------------------------------------------------------------------

_PROXY_IGNORED_SECTIONS = frozenset(
    {"litellm_settings", "general_settings", "environment_variables", "include", "mcp_servers"}
)
_PROXY_ROUTER_KEYS = {
    "num_retries": "num_retries",
    "retry_after": "retry_after",
    "allowed_fails": "allowed_fails",
    "cooldown_time": "cooldown_time",
    "routing_strategy": "routing_strategy",
    "timeout": "timeout",
}
_DEPLOYMENT_FIELDS = frozenset(
    key
    for key in Deployment.model_fields
    if key not in {"id", "priority", "litellm_params", "model_info", pf.PRICE_MAP_FALLBACK}
    and not pf.is_price_field(key)
)
_MODEL_INFO_READ = frozenset({"id", "order", pf.PRICE_MAP_FALLBACK})


def _proxy_to_native(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """A LiteLLM proxy ``config.yaml`` mapping in costrouter's own layout, and what is wrong with it.

    The converted mapping keeps the proxy file's lines, so later problems still point at it.
    """
    problems = [
        ConfigProblem(str(key), "unknown key", line_of(data, (key,)))
        for key in data
        if key not in _PROXY_IGNORED_SECTIONS | {"model_list", "router_settings"}
    ]
    model_list = data.get("model_list")
    if not isinstance(model_list, list):
        problems.append(ConfigProblem("model_list", "must be a list of deployments", line_of(data, ("model_list",))))
        model_list = []
    groups: dict[str, Any] = {}
    group_lines: dict[str, int | None] = {}
    for index, entry in enumerate(model_list):
        where = ("model_list", index)
        deployment = _proxy_deployment(data, index, entry, problems)
        if deployment is None:
            continue
        name = str(entry["model_name"])
        group_lines.setdefault(name, line_of(data, (*where, "model_name")))
        group = groups.setdefault(name, lined({"deployments": []}, {"deployments": group_lines[name]}))
        group["deployments"].append(deployment)
    settings = data.get("router_settings") or {}
    if not isinstance(settings, Mapping):
        problems.append(ConfigProblem("router_settings", "must be a mapping", line_of(data, ("router_settings",))))
        settings = {}
    _proxy_fallbacks(data, settings.get("fallbacks") or [], groups, group_lines, problems)
    router = lined(
        {ours: settings[theirs] for theirs, ours in _PROXY_ROUTER_KEYS.items() if theirs in settings},
        {ours: line_of(data, ("router_settings", theirs)) for theirs, ours in _PROXY_ROUTER_KEYS.items()},
    )
    native = lined(
        {"groups": lined(groups, group_lines), "router": router},
        {"groups": line_of(data, ("model_list",)), "router": line_of(data, ("router_settings",))},
    )
    return native, problems


def _proxy_deployment(
    data: Mapping[str, Any], index: int, entry: Any, problems: list[ConfigProblem]
) -> dict[str, Any] | None:
    """One ``model_list`` entry as a native deployment mapping; ``None`` (and a problem) when unusable."""
    where = ("model_list", index)
    if not isinstance(entry, Mapping) or "model_name" not in entry:
        problems.append(
            ConfigProblem(format_location(where), "needs model_name and litellm_params", line_of(data, where))
        )
        return None
    sections: dict[str, dict[str, Any]] = {}
    for section in ("litellm_params", "model_info"):
        value = entry.get(section)
        if value is not None and not isinstance(value, Mapping):
            location = (*where, section)
            kind = next(t.__name__ for t in type(value).__mro__ if t.__module__ == "builtins")
            reason = f"must be a mapping of parameters, not {kind} {value!r}"
            problems.append(ConfigProblem(format_location(location), reason, line_of(data, location)))
            return None
        sections[section] = dict(value or {})
    params, model_info = sections["litellm_params"], sections["model_info"]
    param_lines = {key: line_of(data, (*where, "litellm_params", key)) for key in params}
    deployment: dict[str, Any] = {key: params.pop(key) for key in list(params) if key in _DEPLOYMENT_FIELDS}
    lines: dict[str, int | None] = {key: param_lines[key] for key in deployment}
    if "mode" not in deployment and "mode" in model_info:  # LiteLLM's place for it; kept for LiteLLM too
        deployment["mode"] = model_info["mode"]
        lines["mode"] = line_of(data, (*where, "model_info", "mode"))
    order = params.pop("order", model_info.get("order"))
    if order is not None:
        deployment["priority"] = order
        lines["priority"] = param_lines.get("order") or line_of(data, (*where, "model_info", "order"))
    if pf.PRICE_MAP_FALLBACK in model_info:  # costrouter's own key: model_info, where LiteLLM sends nothing on
        deployment[pf.PRICE_MAP_FALLBACK] = model_info[pf.PRICE_MAP_FALLBACK]
        lines[pf.PRICE_MAP_FALLBACK] = line_of(data, (*where, "model_info", pf.PRICE_MAP_FALLBACK))
    if "id" in model_info:
        deployment["id"] = str(model_info["id"])
        lines["id"] = line_of(data, (*where, "model_info", "id"))
    deployment["litellm_params"] = params
    lines["litellm_params"] = line_of(data, (*where, "litellm_params"))
    rest = {key: value for key, value in model_info.items() if key not in _MODEL_INFO_READ}
    if rest:
        deployment["model_info"] = rest
        lines["model_info"] = line_of(data, (*where, "model_info"))
    return lined(deployment, lines)


def _proxy_fallbacks(
    data: Mapping[str, Any],
    rules: Any,
    groups: dict[str, Any],
    group_lines: dict[str, int | None],
    problems: list[ConfigProblem],
) -> None:
    """``router_settings.fallbacks`` (a list of ``{group: [targets]}``) into each native group."""
    where: tuple[str | int, ...] = ("router_settings", "fallbacks")
    if not isinstance(rules, list):
        problems.append(
            ConfigProblem(format_location(where), "must be a list of {group: [fallbacks]}", line_of(data, where))
        )
        return
    for index, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            location = (*where, index)
            problems.append(
                ConfigProblem(format_location(location), "must be {group: [fallbacks]}", line_of(data, location))
            )
            continue
        for group_name, targets in rule.items():
            location = (*where, index, group_name)
            line = line_of(data, location)
            if not isinstance(targets, list):
                problems.append(ConfigProblem(format_location(location), "must be a list of group names", line))
                continue
            group_lines.setdefault(str(group_name), line)
            group = groups.setdefault(str(group_name), lined({"deployments": []}, {"deployments": line}))
            group["fallbacks"] = targets
            group.lines["fallbacks"] = line


def parse_router_config(data: Any, source: str = "<dict>", problems: Sequence[ConfigProblem] = ()) -> RouterConfig:
    """Validate a mapping (either format) as a :class:`RouterConfig`; every problem in one ConfigError."""
    if isinstance(data, RouterConfig):
        return data
    found = list(problems)
    if isinstance(data, Mapping) and "model_list" in data:
        data, converted = _proxy_to_native(data)
        found += converted
    found += reference_problems(data)
    return validate(RouterConfig, data, source, found, context=_REFERENCES_CHECKED)


def load_router_config(path: str | Path) -> RouterConfig:
    """Read and validate a model-group YAML file (either format)."""
    data, problems = read_yaml_and_problems(path)
    return parse_router_config(data, str(path), problems)


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
