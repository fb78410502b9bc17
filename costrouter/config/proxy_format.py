"""A LiteLLM proxy ``config.yaml`` read into costrouter's own layout, with what it leaves aside.

The proxy builds its Router from ``model_list`` and ``router_settings`` (``ProxyConfig.load_config``
in LiteLLM's ``proxy/proxy_server.py``); every other section configures the proxy server
(keys, database, guardrails, MCP …) and is left aside here, named in one note. Of
``litellm_settings`` only ``custom_provider_map`` shapes the calls a Router makes, so it is
read; its other keys set LiteLLM's process-wide module settings, which a library does not
change behind its caller's back: they are named in a note too.

A ``router_settings`` key costrouter maps (retries, cooldowns, timeout, strategy, fallbacks)
becomes a checked field; every other key passes to LiteLLM's ``Router`` as is
(``router.litellm_args``). The conversion keeps the proxy file's lines, so later problems
still point at it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from costrouter.config import price_fields as pf
from costrouter.config.reader import format_location, line_of, lined
from costrouter.errors import ConfigProblem

__all__ = [
    "MAPPED_ROUTER_KEYS",
    "PROXY_ONLY_SECTIONS",
    "ProxyConversion",
    "is_proxy_format",
    "proxy_to_native",
]

MAPPED_ROUTER_KEYS: Final = frozenset(
    {"num_retries", "retry_after", "allowed_fails", "cooldown_time", "routing_strategy", "timeout"}
)
"""``router_settings`` keys that become costrouter's own checked router fields."""

PROXY_ONLY_SECTIONS: Final = frozenset(
    {
        "general_settings",
        "environment_variables",
        "callback_settings",
        "guardrails",
        "policies",
        "policy_attachments",
        "prompts",
        "credential_list",
        "mcp_servers",
        "mcp_tools",
        "search_tools",
        "sandbox_tools",
        "vector_store_registry",
        "assistant_settings",
        "finetune_settings",
        "files_settings",
        "default_vertex_config",
        "agents",
        "agent_list",
        "worker_registry",
        "pass_through_endpoints",
        "health_check",
        "alerting",
    }
)
"""Top-level sections LiteLLM's proxy server reads for itself (never for its Router)."""

_READ_SECTIONS: Final = frozenset({"model_list", "router_settings", "litellm_settings", "include"})
_KNOWN_SECTIONS: Final = PROXY_ONLY_SECTIONS | _READ_SECTIONS
_PROXY_MARKERS: Final = _KNOWN_SECTIONS - {"include"}
_REFUSED_ROUTER_KEYS: Final = {
    "health_check_interval": "belongs in general_settings (LiteLLM's proxy refuses it here too)",
    "health_check_concurrency": "belongs in general_settings (LiteLLM's proxy refuses it here too)",
}
_MODEL_INFO_READ: Final = frozenset({"id", "order", pf.PRICE_MAP_FALLBACK})


@dataclass
class ProxyConversion:
    """The native mapping of a proxy file, the problems found, and notes on what was left aside."""

    native: dict[str, Any]
    problems: list[ConfigProblem] = field(default_factory=list)
    notes: list[ConfigProblem] = field(default_factory=list)


def is_proxy_format(data: Any) -> bool:
    """Whether ``data`` is a LiteLLM proxy file (``model_list``, or proxy sections and no ``groups``)."""
    if not isinstance(data, Mapping) or "groups" in data:
        return False
    return "model_list" in data or any(key in _PROXY_MARKERS for key in data)


def proxy_to_native(data: Mapping[str, Any], deployment_fields: frozenset[str]) -> ProxyConversion:
    """A LiteLLM proxy ``config.yaml`` mapping in costrouter's own layout.

    ``deployment_fields`` are the ``litellm_params`` keys that become a deployment's own fields.
    """
    result = ProxyConversion({})
    _sections(data, result)
    if "model_list" not in data:
        result.problems.append(
            ConfigProblem(
                "model_list",
                "missing: costrouter builds its Router from the deployments this file lists, and this file "
                "lists none (a proxy that keeps its models in its database, general_settings.store_model_in_db, "
                "still needs them here: copy them in as model_list entries)",
            )
        )
        return result
    model_list = data.get("model_list")
    if not isinstance(model_list, list):
        where = line_of(data, ("model_list",))
        result.problems.append(ConfigProblem("model_list", "must be a list of deployments", where))
        model_list = []
    groups: dict[str, Any] = {}
    group_lines: dict[str, int | None] = {}
    placed: list[tuple[str, int, dict[str, Any]]] = []
    for index, entry in enumerate(model_list):
        deployment = _deployment(data, index, entry, deployment_fields, result.problems)
        if deployment is None:
            continue
        name = str(entry["model_name"])
        placed.append((name, index, deployment))
        group_lines.setdefault(name, line_of(data, ("model_list", index, "model_name")))
        group = groups.setdefault(name, lined({"deployments": []}, {"deployments": group_lines[name]}))
        group["deployments"].append(deployment)
    result.notes += _unordered(data, placed)
    settings = data.get("router_settings") or {}
    if not isinstance(settings, Mapping):
        result.problems.append(
            ConfigProblem("router_settings", "must be a mapping", line_of(data, ("router_settings",)))
        )
        settings = {}
    router = _router(data, settings, groups, group_lines, result.problems)
    native: dict[str, Any] = {"groups": lined(groups, group_lines), "router": router}
    native_lines = {"groups": line_of(data, ("model_list",)), "router": line_of(data, ("router_settings",))}
    providers = _custom_providers(data)
    if providers is not None:
        native["custom_provider_map"] = providers
        native_lines["custom_provider_map"] = line_of(data, ("litellm_settings", "custom_provider_map"))
    result.native = lined(native, native_lines)
    return result


def _sections(data: Mapping[str, Any], result: ProxyConversion) -> None:
    """Proxy-only sections: one note naming them; a near miss of a known section is a problem."""
    ignored: list[str] = []
    for key in data:
        name = str(key)
        if name in _READ_SECTIONS:
            continue
        if name not in PROXY_ONLY_SECTIONS:
            close = difflib.get_close_matches(name, sorted(_KNOWN_SECTIONS), n=1, cutoff=0.8)
            if close:
                reason = f"unknown key (did you mean {close[0]!r}? LiteLLM's proxy would ignore it silently)"
                result.problems.append(ConfigProblem(name, reason, line_of(data, (key,))))
                continue
        ignored.append(name)
    if ignored:
        result.notes.append(
            ConfigProblem(
                ", ".join(ignored),
                "ignored: sections of LiteLLM's proxy server, not of its Router "
                "(costrouter reads model_list, router_settings and litellm_settings.custom_provider_map)",
                line_of(data, (ignored[0],)),
            )
        )
    settings = data.get("litellm_settings")
    if isinstance(settings, Mapping):
        rest = [str(key) for key in settings if key != "custom_provider_map"]
        if rest:
            result.notes.append(
                ConfigProblem(
                    "litellm_settings",
                    f"ignored: {', '.join(rest)}: LiteLLM's process-wide settings, which costrouter does not "
                    "change for you (set them on the litellm module, or per deployment in litellm_params; "
                    "costrouter's own span and cost replace LiteLLM callbacks)",
                    line_of(data, ("litellm_settings",)),
                )
            )
    elif settings is not None:
        where = line_of(data, ("litellm_settings",))
        result.problems.append(ConfigProblem("litellm_settings", "must be a mapping", where))


def _deployment(
    data: Mapping[str, Any],
    index: int,
    entry: Any,
    deployment_fields: frozenset[str],
    problems: list[ConfigProblem],
) -> dict[str, Any] | None:
    """One ``model_list`` entry as a native deployment mapping; ``None`` (and a problem) when unusable."""
    where = ("model_list", index)
    if not isinstance(entry, Mapping) or "model_name" not in entry:
        problems.append(
            ConfigProblem(format_location(where), "needs model_name and litellm_params", line_of(data, where))
        )
        return None
    if not str(entry["model_name"]):
        location = (*where, "model_name")
        problems.append(ConfigProblem(format_location(location), "must not be empty", line_of(data, location)))
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
    deployment: dict[str, Any] = {key: params.pop(key) for key in list(params) if key in deployment_fields}
    lines: dict[str, int | None] = {key: param_lines[key] for key in deployment}
    if "model" not in deployment:
        lines["model"] = line_of(data, (*where, "litellm_params")) or line_of(data, where)
    if "mode" not in deployment and "mode" in model_info:  # LiteLLM's place for it; kept for LiteLLM too
        deployment["mode"] = model_info["mode"]
        lines["mode"] = line_of(data, (*where, "model_info", "mode"))
    order = params.get("order", model_info.get("order"))
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


def _unordered(data: Mapping[str, Any], placed: list[tuple[str, int, dict[str, Any]]]) -> list[ConfigProblem]:
    """Deployments without ``order`` in a group whose others have one: LiteLLM never serves them.

    LiteLLM's Router serves the lowest ``order`` and, on failure, the next orders; a deployment
    without one is in no order level. Each gets a priority after the group's orders (so costrouter
    shows it last; the ``order`` LiteLLM gets stays as written) and a note.
    """
    orders: dict[str, list[int]] = {}
    for name, _, deployment in placed:
        if isinstance(deployment.get("priority"), int):
            orders.setdefault(name, []).append(deployment["priority"])
    notes: list[ConfigProblem] = []
    for name, index, deployment in placed:
        if name in orders and "priority" not in deployment:
            deployment["priority"] = max(orders[name]) + 1
            reason = f"no order, while other deployments of {name!r} have one: LiteLLM's Router never serves it"
            notes.append(ConfigProblem(f"model_list[{index}]", reason, line_of(data, ("model_list", index))))
    return notes


def _router(
    data: Mapping[str, Any],
    settings: Mapping[str, Any],
    groups: dict[str, Any],
    group_lines: dict[str, int | None],
    problems: list[ConfigProblem],
) -> dict[str, Any]:
    """``router_settings``: mapped keys as fields, fallbacks into groups, the rest passed through."""
    mapped = {key: value for key, value in settings.items() if key in MAPPED_ROUTER_KEYS}
    lines: dict[str, int | None] = {key: line_of(data, ("router_settings", key)) for key in mapped}
    passed: dict[str, Any] = {}
    passed_lines: dict[str, int | None] = {}
    for key, value in settings.items():
        where = ("router_settings", key)
        if key in MAPPED_ROUTER_KEYS or key == "fallbacks":
            continue
        if key in _REFUSED_ROUTER_KEYS:
            problems.append(ConfigProblem(format_location(where), _REFUSED_ROUTER_KEYS[key], line_of(data, where)))
            continue
        passed[str(key)] = value
        passed_lines[str(key)] = line_of(data, where)
    default = _fallbacks(data, settings.get("fallbacks") or [], groups, group_lines, problems)
    if default is not None:
        passed.setdefault("default_fallbacks", default)
        passed_lines.setdefault("default_fallbacks", line_of(data, ("router_settings", "fallbacks")))
    if passed:
        mapped["litellm_args"] = lined(passed, passed_lines)
        lines["litellm_args"] = line_of(data, ("router_settings",))
    return lined(mapped, lines)


def _fallbacks(
    data: Mapping[str, Any],
    rules: Any,
    groups: dict[str, Any],
    group_lines: dict[str, int | None],
    problems: list[ConfigProblem],
) -> list[Any] | None:
    """``router_settings.fallbacks`` (a list of ``{group: [targets]}``) into each native group.

    Returns the targets of a ``"*"`` rule (LiteLLM's default fallbacks, for every group
    without its own), if any.
    """
    where: tuple[str | int, ...] = ("router_settings", "fallbacks")
    if not isinstance(rules, list):
        problems.append(
            ConfigProblem(format_location(where), "must be a list of {group: [fallbacks]}", line_of(data, where))
        )
        return None
    default: list[Any] | None = None
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
            if group_name == "*":
                default = targets
                continue
            group_lines.setdefault(str(group_name), line)
            group = groups.setdefault(str(group_name), lined({"deployments": []}, {"deployments": line}))
            group["fallbacks"] = targets
            group.lines["fallbacks"] = line
    return default


def _custom_providers(data: Mapping[str, Any]) -> Any:
    """``litellm_settings.custom_provider_map`` as it stands (its entries are checked by the model)."""
    settings = data.get("litellm_settings")
    if not isinstance(settings, Mapping) or "custom_provider_map" not in settings:
        return None
    return settings["custom_provider_map"]
