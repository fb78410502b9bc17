"""The model-group YAML: pydantic models, loading, and the LiteLLM proxy format.

Two formats load into one :class:`RouterConfig`:

* costrouter's own (``groups:`` + ``router:``), see ``configs/router.yaml``;
* a LiteLLM proxy ``config.yaml`` (``model_list:`` + ``router_settings:``), so a team
  can point costrouter at the file it already has.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from costrouter._yaml import read_yaml, validate
from costrouter.errors import ConfigError, ConfigProblem
from costrouter.redaction import masked_repr_args

SECRET_PREFIX = "os.environ/"

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


class Deployment(_Strict):
    """One deployment of a model group: a model at a provider, with its own prices."""

    id: str | None = Field(default=None, description="Stable id; default `{group}-{index}`.")
    model: str = Field(description="LiteLLM model string, e.g. `openai/gpt-4o-mini`.")
    priority: StrictInt = Field(default=0, description="Lower serves first; equal priorities share load.")
    api_base: str | None = None
    api_key: str | None = Field(default=None, description="A literal, or `os.environ/NAME`.")
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    timeout: float | None = Field(default=None, gt=0)
    stream_timeout: float | None = Field(default=None, gt=0)
    litellm_params: dict[str, Any] = Field(
        default_factory=dict, description="Further LiteLLM parameters, passed through."
    )

    @property
    def priced(self) -> bool:
        """Whether the file sets both prices (else the public price map is used)."""
        return self.input_cost_per_token is not None and self.output_cost_per_token is not None

    def __repr_args__(self) -> list[tuple[str | None, Any]]:
        return masked_repr_args(super().__repr_args__())


class ModelGroup(_Strict):
    """A model group: what a caller names; its deployments and where it falls back to."""

    deployments: list[Deployment] = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list)


class RouterSettings(_Strict):
    """Router-wide behaviour, mapped onto LiteLLM's Router arguments."""

    num_retries: int = Field(default=2, ge=0)
    retry_after: float = Field(default=0, ge=0, description="Minimum seconds before a retry.")
    allowed_fails: int | None = Field(default=None, ge=0)
    cooldown_time: float | None = Field(default=None, ge=0)
    routing_strategy: RoutingStrategy = "simple-shuffle"
    timeout: float | None = Field(default=None, gt=0)


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
    def _references_resolve(self) -> RouterConfig:
        problems = []
        seen: dict[str, str] = {}
        for group_name, group in self.groups.items():
            for target in group.fallbacks:
                if target not in self.groups:
                    problems.append(f"groups.{group_name}.fallbacks: unknown fallback target {target!r}")
                elif target == group_name:
                    problems.append(f"groups.{group_name}.fallbacks: a group cannot fall back to itself")
            for index, deployment in enumerate(group.deployments):
                deployment_id = deployment_id_of(group_name, index, deployment)
                if deployment_id in seen:
                    problems.append(
                        f"groups.{group_name}.deployments[{index}].id: duplicate deployment id "
                        f"{deployment_id!r} (also in group {seen[deployment_id]!r})"
                    )
                seen[deployment_id] = group_name
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def deployments(self) -> list[tuple[str, str, Deployment]]:
        """Every ``(group, deployment_id, deployment)``, groups in file order."""
        return [
            (group_name, deployment_id_of(group_name, index, deployment), deployment)
            for group_name, group in self.groups.items()
            for index, deployment in enumerate(group.deployments)
        ]

    def reachable_groups(self, group: str) -> list[str]:
        """``group`` and every group its fallbacks can reach, in fallback order."""
        order: list[str] = []
        pending = [group]
        while pending:
            name = pending.pop(0)
            if name in order or name not in self.groups:
                continue
            order.append(name)
            pending.extend(self.groups[name].fallbacks)
        return order


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
_DEPLOYMENT_FIELDS = frozenset(Deployment.model_fields) - {"id", "priority", "litellm_params"}


def _proxy_to_native(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Convert a LiteLLM proxy ``config.yaml`` mapping to costrouter's own layout."""
    unknown = set(data) - _PROXY_IGNORED_SECTIONS - {"model_list", "router_settings"}
    if unknown:
        raise ConfigError(source, [ConfigProblem(key, "unknown key") for key in sorted(unknown)])
    model_list = data.get("model_list")
    if not isinstance(model_list, list):
        raise ConfigError.single(source, "model_list", "must be a list of deployments")
    groups: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(model_list):
        if not isinstance(entry, Mapping) or "model_name" not in entry:
            raise ConfigError.single(source, f"model_list[{index}]", "needs model_name and litellm_params")
        params = dict(entry.get("litellm_params") or {})
        model_info = dict(entry.get("model_info") or {})
        deployment: dict[str, Any] = {key: params.pop(key) for key in list(params) if key in _DEPLOYMENT_FIELDS}
        order = params.pop("order", model_info.get("order"))
        if order is not None:
            deployment["priority"] = order
        if "id" in model_info:
            deployment["id"] = str(model_info["id"])
        deployment["litellm_params"] = params
        group = groups.setdefault(str(entry["model_name"]), {"deployments": []})
        group["deployments"].append(deployment)
    settings = dict(data.get("router_settings") or {})
    for rule in settings.pop("fallbacks", None) or []:
        for group_name, targets in dict(rule).items():
            groups.setdefault(group_name, {"deployments": []})["fallbacks"] = list(targets)
    router = {ours: settings.pop(theirs) for theirs, ours in _PROXY_ROUTER_KEYS.items() if theirs in settings}
    return {"groups": groups, "router": router}


def parse_router_config(data: Any, source: str = "<dict>") -> RouterConfig:
    """Validate a mapping (either format) as a :class:`RouterConfig`."""
    if isinstance(data, RouterConfig):
        return data
    if isinstance(data, Mapping) and "model_list" in data:
        data = _proxy_to_native(data, source)
    return validate(RouterConfig, data, source)


def load_router_config(path: str | Path) -> RouterConfig:
    """Read and validate a model-group YAML file (either format)."""
    return parse_router_config(read_yaml(path), str(path))


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
