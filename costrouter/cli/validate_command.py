"""``costrouter validate``: check the model groups and the budget policy, print what they configure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from costrouter.cli.output import EXIT_CODES, ExitCode, config_errors, console_for, heading, new_table
from costrouter.config.redaction import mask_url
from costrouter.errors import ConfigProblem

if TYPE_CHECKING:
    from costrouter.budget import BudgetPolicy
    from costrouter.config.groups import RouterConfig
    from costrouter.pricing.prices import Price, PriceSource


def _secret(value: str | None) -> str:
    from costrouter.config.groups import SECRET_PREFIX

    if value is None:
        return "-"
    if value.startswith(SECRET_PREFIX):
        name = value.removeprefix(SECRET_PREFIX)
        return value if name in os.environ else f"{value} (not set)"
    return "***"


def _per_million(value: float) -> str:
    text = f"{value * 1_000_000:,.4f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"


_SOURCE_LABELS = {
    "deployment": "file",
    "litellm_params": "file: litellm_params",
    "model_info": "file: model_info",
    "price_map": "LiteLLM price map",
    "derived": "rule",
    "default": "rule",
}


def _source_label(price: Price, source: PriceSource) -> str:
    """Where a price came from; the price map's as ``base_model <name>`` when the deployment names one."""
    if source == "price_map" and price.base_model is not None:
        return f"base_model {price.base_model}"
    return _SOURCE_LABELS[source]


def _price_cells(price: Price | None) -> tuple[str, str, str]:
    if price is None:
        return "-", "-", "unpriced: policy default"
    source = _source_label(price, price.source)
    return _per_million(price.input_per_token), _per_million(price.output_per_token), source


def _dimension_rows(deployment_id: str, price: Price | None) -> list[tuple[str, str, str, str]]:
    """One row per price dimension of the deployment: name, price, where it came from."""
    from costrouter.config.price_fields import PER_MILLION_UNIT_FIELDS, REQUEST, UNIT_FIELDS, unit_name

    if price is None:
        return [(deployment_id, "every dimension", "-", "unpriced: policy default")]
    rows = []
    for position, (key, value, source) in enumerate(price.dimensions()):
        if key.startswith("image "):
            shown = f"{_usd(value)} / image"
        elif key in UNIT_FIELDS:
            unit = unit_name(key)
            shown = (
                f"{_per_million(value)} / 1M {unit}s" if key in PER_MILLION_UNIT_FIELDS else f"{_usd(value)} / {unit}"
            )
        else:
            shown = _usd(value) if key == REQUEST else _per_million(value)
        label = _source_label(price, source)
        if source == "derived":
            label = "rule: as " + ("output" if key.startswith("output") else "input")
        rows.append((deployment_id if position == 0 else "", key, shown, label))
    return rows


def _missing_env(config: RouterConfig) -> list[ConfigProblem]:
    """Every ``os.environ/NAME`` reference whose variable is not set (values are never kept)."""
    from costrouter.config.groups import resolve_secrets

    problems: list[ConfigProblem] = []
    for group, group_config in config.groups.items():
        for index, deployment in enumerate(group_config.deployments):
            params = {**deployment.litellm_params, "api_base": deployment.api_base, "api_key": deployment.api_key}
            resolve_secrets(params, f"groups.{group}.deployments[{index}]", "", problems)
    return problems


_CHAIN_SHOWN = 4
"""How many groups of a fallback chain ``validate`` shows."""


_GROUPS_SHOWN = 50
"""How many model groups ``validate`` lists without ``--all``."""


_WILDCARD_CELLS = ("per model", "per model", "the model a call names")


def _print_groups(console: Console, config: RouterConfig, *, show_all: bool = False) -> list[str]:
    """Print the groups, their prices and endpoints; return the warnings of their prices.

    A deployment priced $0 by mistake, and one whose prices are finer than an atto-dollar (rounded).
    """
    from costrouter.config.groups import WILDCARD
    from costrouter.pricing.prices import (  # LiteLLM's price map: only validate
        deployment_price,
        free_warning,
        inexact_warning,
    )

    warnings: list[str] = []
    groups = new_table(console)
    for name in (
        "group",
        "priority",
        "deployment",
        "model",
        "in $/1M tok",
        "out $/1M tok",
        "price from",
        "falls back to",
    ):
        groups.add_column(name, justify="right" if "$" in name or name == "priority" else "left")
    prices = new_table(console)
    for name in ("deployment", "price", "$/1M tok ($ per request)", "from"):
        prices.add_column(name, justify="right" if "$" in name else "left")
    endpoints = new_table(console)
    for name in ("deployment", "api_base", "api_key", "other LiteLLM params"):
        endpoints.add_column(name)
    shown = list(config.groups.items())
    hidden = 0 if show_all else max(0, len(shown) - _GROUPS_SHOWN)
    for group, group_config in shown[: len(shown) - hidden]:
        ranked = sorted(enumerate(group_config.deployments), key=lambda item: item[1].priority)
        reach = config.reachable_groups(group, limit=_CHAIN_SHOWN + 2)[1:]
        chain = " → ".join(reach[:_CHAIN_SHOWN]) + (" → …" if len(reach) > _CHAIN_SHOWN else "") or "-"
        for position, (index, deployment) in enumerate(ranked):
            deployment_id = deployment.id or f"{group}-{index}"
            price = None if WILDCARD in group else deployment_price(deployment)
            if price is not None and price.suspect_free:
                warnings.append(free_warning(deployment_id, price))
            if price is not None and price.inexact:
                warnings.append(inexact_warning(deployment_id, price))
            groups.add_row(
                group if position == 0 else "",
                str(deployment.priority),
                deployment_id,
                deployment.model,
                *(_WILDCARD_CELLS if WILDCARD in group else _price_cells(price)),
                chain if position == 0 else "",
            )
            for row in [] if WILDCARD in group else _dimension_rows(deployment_id, price):
                prices.add_row(*row)
            endpoints.add_row(
                deployment_id,
                mask_url(deployment.api_base) if deployment.api_base else "-",
                _secret(deployment.api_key),
                ", ".join(sorted(deployment.litellm_params)) or "-",
            )
    heading(console, "Model groups (deployments in priority order: lower serves first)")
    console.print(groups)
    heading(console, "Prices: every dimension and where it came from (file, then LiteLLM's price map)")
    console.print(prices)
    heading(console, "Endpoints and secrets (values of secrets are never shown)")
    console.print(endpoints)
    if hidden:
        console.print(f"… and {hidden:,} more model groups, all valid (--all lists them)", markup=False)
    return warnings


def _print_router(console: Console, config: RouterConfig) -> None:
    """The router settings: costrouter's own, those passed to LiteLLM's Router, those left out and why."""
    from costrouter.config.groups import OWNED_ROUTER_ARGS, literal_secrets
    from costrouter.routing.building import router_args

    router = config.router
    console.print(
        f"router: num_retries {router.num_retries}, retry_after {router.retry_after:g} s, "
        f"allowed_fails {router.allowed_fails}, cooldown {router.cooldown_time} s, {router.routing_strategy}, "
        f"timeout {router.timeout} s",
        markup=False,
    )
    passed, left_out = router_args(config)
    if passed:
        console.print(f"router: passed to LiteLLM's Router as written: {', '.join(passed)}", markup=False)
    for key, reason in left_out.items():
        console.print(f"router: left out {key}: {reason}", markup=False)
    owned = ", ".join(f"{key} ({reason})" for key, reason in OWNED_ROUTER_ARGS.items())
    console.print(f"router: costrouter sets {owned}", markup=False)
    wildcards = config.wildcard_groups()
    if wildcards:
        console.print(
            f"wildcard groups: {', '.join(wildcards)}: each serves any model its pattern matches, "
            "held and priced per the model a call names (the budget policy's default price when no price "
            "list knows it)",
            markup=False,
        )
    for entry in config.custom_provider_map:
        console.print(f"custom provider {entry.provider}: {entry.custom_handler} (registered)", markup=False)
    literal = literal_secrets(config)
    if literal:
        shown = ", ".join(literal[:5]) + (f" and {len(literal) - 5} more" if len(literal) > 5 else "")
        console.print(f"note: secrets written as literals in the file: {shown}: prefer os.environ/NAME", markup=False)


def _store_line(policy: BudgetPolicy) -> str:
    store = policy.store
    if store.backend == "memory":
        return "store: memory (counters live in the routing process)"
    return f"store: redis at {mask_url(store.redis_url)}, key prefix {store.key_prefix!r}, {store.on_store_error}"


def _usd(value: float) -> str:
    whole, _, decimals = f"{value:,.6f}".rstrip("0").partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"


def _budgets_table(console: Console, policy: BudgetPolicy) -> Table:
    table = new_table(console)
    for name in ("budget", "scope", "id", "limit", "window", "on exceeded", "alerts at"):
        table.add_column(name, justify="right" if name == "limit" else "left")
    for budget in policy.budgets:
        action = f"downgrade to {budget.downgrade_to}" if budget.on_exceeded == "downgrade" else budget.on_exceeded
        table.add_row(
            budget.budget_name,
            budget.scope,
            budget.id or ("-" if budget.scope == "global" else "(each)"),
            _usd(budget.limit_usd),
            budget.window,
            action,
            ", ".join(f"{threshold:.0%}" for threshold in budget.alert_at) or "-",
        )
    return table


VALIDATE_EPILOG = (
    "Examples:\n\n"
    "  costrouter validate\n\n"
    "  costrouter validate configs/router.yaml configs/budgets.yaml\n\n"
    "  costrouter validate my-litellm-proxy-config.yaml --strict\n\n"
    f"{EXIT_CODES}"
)
"""The examples ``costrouter validate --help`` ends with."""


def validate(
    router_file: Annotated[
        Path | None, typer.Argument(help="Model-group YAML (default: COSTROUTER_CONFIG or configs/router.yaml).")
    ] = None,
    budgets_file: Annotated[
        Path | None, typer.Argument(help="Budget policy YAML (default: COSTROUTER_BUDGETS; optional).")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail when an os.environ/NAME secret is not set.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help=f"List every model group (default: the first {_GROUPS_SHOWN}).")
    ] = False,
) -> None:
    """Check the model groups and the budget policy; print what they configure, never a secret.

    A malformed file prints the file, the line where known, the field path and the reason,
    and exits 1. Secrets show as their ``os.environ/NAME`` reference, literals as ``***``.
    """
    from costrouter.budget import load_policy
    from costrouter.config.groups import read_router_config
    from costrouter.config.settings import Settings
    from costrouter.routing.building import register_custom_providers

    settings = Settings()
    router_path = router_file or settings.config
    budgets_path = budgets_file or settings.budgets
    with config_errors():
        config, notes = read_router_config(router_path)
        register_custom_providers(config, str(router_path))
        policy = load_policy(budgets_path) if budgets_path is not None else None
        if policy is not None:
            policy.check_downgrade_targets(config.groups, str(budgets_path))
    console = console_for()
    deployments = len(config.deployments())
    console.print(f"{router_path}: {len(config.groups)} model groups, {deployments} deployments: valid", markup=False)
    _print_router(console, config)
    for note in notes:
        console.print(f"note: {note}", markup=False)
    warnings = _print_groups(console, config, show_all=show_all)
    if policy is not None:
        heading(console, f"{budgets_path}: {len(policy.budgets)} budgets: valid; {_store_line(policy)}")
        console.print(_budgets_table(console, policy))
        sinks = (
            ", ".join(f"{sink.type} {sink.label!r}" for sink in policy.alerts.sinks)
            or "none (span events and logs only)"
        )
        console.print(f"alert sinks: {sinks}", markup=False)
    else:
        console.print("no budget policy given: spend is traced, nothing is enforced", markup=False)
    missing = _missing_env(config)
    errors = console_for(stderr=True)
    for warning in warnings:
        errors.print(f"warning: {router_path}: {warning}", markup=False)
    for problem in missing:
        errors.print(f"{'error' if strict else 'warning'}: {router_path}: {problem}", markup=False)
    if missing and strict:
        raise typer.Exit(int(ExitCode.INVALID))
