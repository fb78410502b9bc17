"""The ``costrouter`` command: validate configs, run the demo, inspect budgets, report costs.

Exit codes: 0 ok; 1 invalid configuration or input (also a declined confirmation);
2 usage error; 3 budget store unavailable; 4 the budget store is the in-process memory
store, which another process cannot inspect. When stdout is not a terminal the output has
no colours, no progress bar, and ASCII tables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from costrouter.config.redaction import mask_url
from costrouter.errors import BudgetStoreError, ConfigError, ConfigProblem
from costrouter.money import units_to_usd
from costrouter.prices_push.command import prices_app
from costrouter.report.html import report_html
from costrouter.report.read import stream_report
from costrouter.report.summary import (
    DEFAULT_BREAKDOWNS,
    Dimension,
    Report,
    breakdown_title,
    format_usd,
    parse_breakdowns,
    report_csv,
    report_json,
    report_table,
)
from costrouter.report.terminal import cell, printable
from costrouter.report.times import parse_instant

# The budget, config and settings modules (pydantic models, the alert sinks, YAML) load in the
# commands that use them, so `costrouter report` on a large file starts in a fraction of a second.
if TYPE_CHECKING:
    from costrouter.budget import Budget, BudgetPolicy, BudgetStore
    from costrouter.budget.journal import PendingSettle
    from costrouter.cli.demo import DemoResult
    from costrouter.config.groups import RouterConfig
    from costrouter.pricing.prices import Price, PriceSource


class ExitCode(IntEnum):
    """The command's exit codes."""

    OK = 0
    INVALID = 1
    USAGE = 2
    STORE_UNAVAILABLE = 3
    MEMORY_STORE = 4


EXIT_CODES = (
    "Exit codes: 0 ok · 1 invalid configuration or input · 2 usage error · "
    "3 budget store unavailable · 4 budget store is in-process memory"
)

app = typer.Typer(
    name="costrouter",
    help="Trace, price and budget every LLM call routed through a LiteLLM Router.",
    epilog=(
        "Start here:  costrouter demo  ·  costrouter validate configs/router.yaml configs/budgets.yaml  ·  "
        f"costrouter report costrouter-demo-spans.jsonl\n\n{EXIT_CODES}"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
budget_app = typer.Typer(
    help="Look at and reset budget counters in the policy's store (Redis).",
    epilog=f"Examples:  costrouter budget status session sess-42 --budgets configs/budgets.yaml\n\n{EXIT_CODES}",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(budget_app, name="budget")
app.add_typer(prices_app, name="prices")


class Scope(StrEnum):
    """A budget scope."""

    session = "session"
    user = "user"
    team = "team"
    tag = "tag"
    global_ = "global"


class ReportFormat(StrEnum):
    """Output formats of ``report``."""

    table = "table"
    csv = "csv"
    json = "json"
    html = "html"


class DemoExporterChoice(StrEnum):
    """Where the demo's spans go."""

    file = "file"
    console = "console"
    otlp = "otlp"


# ---- output ---------------------------------------------------------------------------------
def _console(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr): plain and wide when it is not a terminal."""
    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, highlight=False, soft_wrap=False, width=200, no_color=True)
    return console


def _table(console: Console) -> Table:
    return Table(box=box.ROUNDED if console.is_terminal else box.ASCII)


def _heading(console: Console, text: str) -> None:
    """A heading; ids in ``text`` are escaped (control characters and rich markup alike)."""
    console.print()
    safe = printable(text)
    console.print(f"[bold]{escape(safe)}[/bold]" if console.is_terminal else safe, markup=console.is_terminal)


def _fail(message: str, code: ExitCode = ExitCode.INVALID) -> NoReturn:
    _console(stderr=True).print(f"error: {printable(message)}", markup=False)
    raise typer.Exit(int(code))


def _problem_line(source: str, problem: ConfigProblem) -> str:
    where = f"{getattr(problem.line, 'file', None) or source}:{problem.line}" if problem.line is not None else source
    return f"{where}: {problem.location}: {problem.reason}" if problem.location else f"{where}: {problem.reason}"


def _config_failure(error: ConfigError) -> NoReturn:
    console = _console(stderr=True)
    console.print(f"error: invalid configuration in {error.source}", markup=False)
    for problem in error.problems:
        console.print(f"  {_problem_line(error.source, problem)}", markup=False)
    raise typer.Exit(int(ExitCode.INVALID))


@contextmanager
def _config_errors() -> Iterator[None]:
    """Turn a ConfigError into its printed problems and exit code 1."""
    try:
        yield
    except ConfigError as error:
        _config_failure(error)


# ---- validate -------------------------------------------------------------------------------
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
    groups = _table(console)
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
    prices = _table(console)
    for name in ("deployment", "price", "$/1M tok ($ per request)", "from"):
        prices.add_column(name, justify="right" if "$" in name else "left")
    endpoints = _table(console)
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
    _heading(console, "Model groups (deployments in priority order: lower serves first)")
    console.print(groups)
    _heading(console, "Prices: every dimension and where it came from (file, then LiteLLM's price map)")
    console.print(prices)
    _heading(console, "Endpoints and secrets (values of secrets are never shown)")
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
    table = _table(console)
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


@app.command(
    epilog=(
        "Examples:\n\n"
        "  costrouter validate\n\n"
        "  costrouter validate configs/router.yaml configs/budgets.yaml\n\n"
        "  costrouter validate my-litellm-proxy-config.yaml --strict\n\n"
        f"{EXIT_CODES}"
    )
)
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
    with _config_errors():
        config, notes = read_router_config(router_path)
        register_custom_providers(config, str(router_path))
        policy = load_policy(budgets_path) if budgets_path is not None else None
        if policy is not None:
            policy.check_downgrade_targets(config.groups, str(budgets_path))
    console = _console()
    deployments = len(config.deployments())
    console.print(f"{router_path}: {len(config.groups)} model groups, {deployments} deployments: valid", markup=False)
    _print_router(console, config)
    for note in notes:
        console.print(f"note: {note}", markup=False)
    warnings = _print_groups(console, config, show_all=show_all)
    if policy is not None:
        _heading(console, f"{budgets_path}: {len(policy.budgets)} budgets: valid; {_store_line(policy)}")
        console.print(_budgets_table(console, policy))
        sinks = (
            ", ".join(f"{sink.type} {sink.label!r}" for sink in policy.alerts.sinks)
            or "none (span events and logs only)"
        )
        console.print(f"alert sinks: {sinks}", markup=False)
    else:
        console.print("no budget policy given: spend is traced, nothing is enforced", markup=False)
    missing = _missing_env(config)
    errors = _console(stderr=True)
    for warning in warnings:
        errors.print(f"warning: {router_path}: {warning}", markup=False)
    for problem in missing:
        errors.print(f"{'error' if strict else 'warning'}: {router_path}: {problem}", markup=False)
    if missing and strict:
        raise typer.Exit(int(ExitCode.INVALID))


# ---- demo -----------------------------------------------------------------------------------
def _print_demo(console: Console, result: DemoResult) -> None:
    from costrouter.cli.demo import budget_alerts, budget_outcomes

    report = result.report
    calls = report.calls
    sessions = {call.session for call in calls}
    users = {call.user for call in calls}
    total = report.total
    console.print(
        f"costrouter demo: {total.calls} routed calls in {len(sessions)} sessions of {len(users)} users, "
        f"{result.seconds:.1f} s, {result.store} budget store",
        markup=False,
    )
    console.print(
        f"  answered {total.ok} · failed {total.failed} · rejected by a budget {total.rejected} "
        f"(BudgetExceededError caught by the app: {result.caught_budget_errors})",
        markup=False,
    )
    console.print(
        f"  provider attempts {total.attempts}: {total.failed_attempts} failed, "
        f"retries {total.retries}, fallbacks {total.fallbacks}",
        markup=False,
    )
    outcomes = ", ".join(f"{name} {count}" for name, count in budget_outcomes(result.records).items())
    console.print(f"  budget decisions: {outcomes}", markup=False)
    alerts = budget_alerts(result.records)
    console.print(f"  budget alerts: {'; '.join(alerts) if alerts else 'none'}", markup=False)
    ascii_only = not console.is_terminal
    for breakdown in report.breakdowns:
        _heading(console, breakdown_title(breakdown))
        console.print(report_table(breakdown, total, ascii_only=ascii_only))
    console.print()
    _print_span_destination(console, result)


def _print_span_destination(console: Console, result: DemoResult) -> None:
    calls = len(result.report.calls)
    attempts = result.report.total.attempts
    counted = f"{len(result.records)} spans ({calls} routed calls, {attempts} attempts)"
    if result.spans_file is not None:
        path = result.spans_file.resolve()
        console.print(f"spans: {counted} written to {path}", markup=False)
        console.print(f"  costrouter report {path} --by group,session", markup=False)
    elif result.exporter == "otlp":
        endpoint = result.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
        console.print(f"spans: {counted} exported over OTLP/HTTP to {endpoint}", markup=False)
    else:
        console.print(f"spans: {counted} printed above by the console exporter", markup=False)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  costrouter demo\n\n"
        "  costrouter demo --exporter console\n\n"
        "  costrouter demo --otlp http://localhost:4318 --redis redis://localhost:6379/0\n\n"
        f"{EXIT_CODES}"
    )
)
def demo(
    exporter: Annotated[DemoExporterChoice, typer.Option(help="Where spans go.")] = DemoExporterChoice.file,
    spans_file: Annotated[
        Path, typer.Option(help="The JSON-lines span file of --exporter file (replaced each run).")
    ] = Path("costrouter-demo-spans.jsonl"),
    otlp: Annotated[
        str | None, typer.Option(help="Export spans and metrics over OTLP/HTTP to this endpoint (implies otlp).")
    ] = None,
    redis: Annotated[str | None, typer.Option(help="Use a Redis budget store at this URL.")] = None,
    config: Annotated[Path | None, typer.Option(help="Model groups (default: configs/router.yaml).")] = None,
    budgets: Annotated[Path | None, typer.Option(help="Budget policy (default: configs/demo-budgets.yaml).")] = None,
) -> None:
    """Route a realistic workload through the example configs against a local provider double.

    No API key, no network, no Redis needed: sessions of several users, a flaky deployment
    (retries), a group outage (fallback), a session that runs into its budget. Prints cost,
    tokens, latency and attempts per model group and per session, computed from the spans
    it recorded, and where those spans went.
    """
    from costrouter.cli.demo import DemoOptions, conversations, default_config_paths, run_demo  # imports LiteLLM

    default_router, default_budgets = default_config_paths()
    options = DemoOptions(
        router_path=config or default_router,
        budgets_path=budgets or default_budgets,
        exporter="otlp" if otlp is not None else exporter.value,
        spans_file=spans_file,
        otlp_endpoint=otlp,
        redis_url=redis,
    )
    console = _console()
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )
    with _config_errors(), progress:
        task = progress.add_task("routing", total=sum(len(c.turns) for c in conversations()))

        def on_turn(description: str) -> None:
            progress.update(task, advance=1, description=description)

        try:
            result = run_demo(options, on_turn)
        except BudgetStoreError as error:
            _fail(f"budget store unavailable: {error}", ExitCode.STORE_UNAVAILABLE)
        except ValueError as error:
            _fail(str(error))
    _print_demo(console, result)


# ---- budget -----------------------------------------------------------------------------------
BudgetsOption = Annotated[
    Path | None,
    typer.Option(help="Budget policy YAML (default: COSTROUTER_BUDGETS, else configs/budgets.yaml)."),
]
RedisOption = Annotated[str | None, typer.Option(help="Use the Redis store at this URL, whatever the policy says.")]
NameOption = Annotated[str | None, typer.Option("--name", help="Only the budget with this name.")]
ScopeArgument = Annotated[Scope, typer.Argument(help="session, user, team, tag or global.")]
IdArgument = Annotated[str | None, typer.Argument(help="The session/user/team/tag id (none for global).")]

_MEMORY_STORE_NOTE = (
    "the policy's store is the in-process memory store: its counters live inside the process "
    "that routes calls and end with it, so another process (this command) cannot see or reset them. "
    "Use store.backend: redis in the policy, or --redis URL, to share budgets between processes."
)


def _load_budget_policy(budgets: Path | None, redis: str | None) -> tuple[BudgetPolicy, str]:
    """The policy (with ``--redis`` applied) and its file name; exits 1 or 4 when unusable."""
    from costrouter.budget import load_policy
    from costrouter.config.settings import Settings

    path = budgets or Settings().budgets
    if path is None:
        path = Path("configs/budgets.yaml")
        if not path.is_file():
            _fail("no budget policy: pass --budgets FILE or set COSTROUTER_BUDGETS")
    with _config_errors():
        policy = load_policy(path)
    if redis is not None:
        store = policy.store.model_copy(update={"backend": "redis", "redis_url": redis})
        policy = policy.model_copy(update={"store": store})
    if policy.store.backend == "memory":
        _fail(_MEMORY_STORE_NOTE, ExitCode.MEMORY_STORE)
    return policy, str(path)


def _matching(policy: BudgetPolicy, scope: Scope, scope_id: str | None, name: str | None) -> list[Budget]:
    """The budgets of ``scope`` that apply to ``scope_id`` (any id when it is ``None``)."""
    budgets = policy.budgets_of(scope.value, scope_id, name)
    if not budgets:
        target = f" for {scope_id!r}" if scope_id is not None else ""
        named = f" named {name!r}" if name is not None else ""
        _fail(f"no {scope.value} budget{named}{target} in the policy")
    return budgets


def _scope_id(scope: Scope, scope_id: str | None) -> str:
    from costrouter.budget import GLOBAL_SCOPE_ID

    if scope is Scope.global_:
        return GLOBAL_SCOPE_ID
    if scope_id is None:
        raise typer.BadParameter(f"a {scope.value} budget needs an ID", param_hint="ID")
    return scope_id


def _open_store(policy: BudgetPolicy, redis: str | None) -> BudgetStore:
    from costrouter.budget import store_from_config
    from costrouter.config.settings import Settings

    try:
        return store_from_config(policy.store, redis_url=redis or Settings().redis_url)
    except ValueError as error:
        _fail(f"invalid Redis URL: {error}")


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except BudgetStoreError as error:
        _fail(f"budget store unavailable: {error}", ExitCode.STORE_UNAVAILABLE)


_STORE_EPILOG = (
    f"The memory store cannot be inspected from another process: these commands exit 4 for it. \n\n{EXIT_CODES}"
)


@budget_app.command(
    epilog=(
        "Examples:\n\n"
        "  costrouter budget status session sess-42 --budgets configs/budgets.yaml\n\n"
        "  costrouter budget status global --redis redis://localhost:6379/0\n\n"
        f"{_STORE_EPILOG}"
    )
)
def status(
    scope: ScopeArgument,
    scope_id: IdArgument = None,
    budgets: BudgetsOption = None,
    redis: RedisOption = None,
    name: NameOption = None,
) -> None:
    """Spend, holds and what remains of each budget of SCOPE for ID, in its current window."""
    target = _scope_id(scope, scope_id)
    policy, _ = _load_budget_policy(budgets, redis)
    console = _console()
    _heading(console, f"{scope.value} {target}")
    table = _table(console)
    for column in ("budget", "window", "limit", "spent", "held", "holds", "pending", "remaining", "used", "unheld"):
        table.add_column(column, justify="left" if column in ("budget", "window") else "right")
    with _open_store(policy, redis) as store, _store_errors():
        pending = _print_pending(console, policy, store)
        _print_lag(console, policy, store)
        for budget in _matching(policy, scope, target, name):
            state = store.status(budget.ref(target))
            used = (state.spent_units + state.held_units) / state.limit_units if state.limit_units else 0.0
            waiting = sum(
                e.amount_units for e in pending if (e.budget.name, e.budget.scope_id) == (budget.budget_name, target)
            )
            table.add_row(
                cell(state.budget),
                cell(state.window_id),
                format_usd(units_to_usd(state.limit_units)),
                format_usd(units_to_usd(state.spent_units)),
                format_usd(units_to_usd(state.held_units)),
                str(state.active_holds),
                format_usd(units_to_usd(waiting)),
                format_usd(units_to_usd(state.remaining_units)),
                f"{used:.1%}",
                str(state.unheld_settles),
            )
    console.print(table)


def _print_lag(console: Console, policy: BudgetPolicy, store: BudgetStore) -> None:
    from costrouter.budget.view import BudgetsView

    note = BudgetsView(policy, store).lag_note()
    if note is not None:
        console.print(note, markup=False)


def _print_pending(console: Console, policy: BudgetPolicy, store: BudgetStore) -> list[PendingSettle]:
    """Say what waits in this machine's settle journal for the store; returns the pending settles."""
    from costrouter.budget.factory import journal_directory
    from costrouter.budget.view import BudgetsView

    directory = journal_directory(policy, store)
    entries = BudgetsView(policy, store).pending_settles()
    if entries:
        amount = format_usd(units_to_usd(sum(e.amount_units for e in entries)))
        console.print(
            f"pending settles: {len(entries)} ({amount}) wait in the journal {directory}; "
            "a router of this store replays them when the store answers (they are not in 'spent' yet)",
            markup=False,
        )
    else:
        console.print("pending settles: none", markup=False)
    for line in BudgetsView(policy, store).journal_fault_lines():
        console.print(line, markup=False)
    return entries


@budget_app.command(
    epilog=(
        "Examples:\n\n"
        "  costrouter budget accept-loss --budgets configs/budgets.yaml\n\n"
        "A Redis that restarted empty loses every counter; with store.on_store_lost: fail_closed (the\n"
        "default) routers refuse calls until this command accepts the store's new, empty state.\n\n"
        f"{_STORE_EPILOG}"
    ),
    name="accept-loss",
)
def accept_loss(budgets: BudgetsOption = None, redis: RedisOption = None) -> None:
    """Accept that the budget store lost its data: routers stop refusing and count from its new state."""
    from costrouter.budget.factory import redis_store_of

    policy, _ = _load_budget_policy(budgets, redis)
    with _open_store(policy, redis) as store, _store_errors():
        redis_store = redis_store_of(store)
        if redis_store is None:
            _fail(_MEMORY_STORE_NOTE, ExitCode.MEMORY_STORE)
        epoch = redis_store.accept_epoch()
    if not epoch:
        _console().print("the store has no epoch yet: no router has used it, nothing to accept", markup=False)
        return
    _console().print(f"accepted the store's epoch {epoch}: routers count from its current state", markup=False)


@budget_app.command(
    epilog=(
        "Examples:\n\n"
        "  costrouter budget migrate --budgets configs/budgets.yaml --dry-run\n\n"
        "  costrouter budget migrate --budgets configs/budgets.yaml\n\n"
        "Carries the budget keys of costrouter 0.2 (unversioned layout, micro-dollars) over to this\n"
        "version's layout: spend, live holds, call records, leases, alert flags, top index, token ratios.\n"
        "0.2 processes of the store refuse their calls from the start of the run; run it again at any\n"
        "time (it carries over only what is new). See docs/budgets.md, 'Migrating from 0.2'.\n\n"
        f"{_STORE_EPILOG}"
    )
)
def migrate(
    budgets: BudgetsOption = None,
    redis: RedisOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be carried over; write nothing.")] = False,
    fence_wait: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=3600,
            help="Seconds to wait after fencing for running 0.2 processes to check their epoch (default 35).",
        ),
    ] = None,
) -> None:
    """Carry a store's costrouter 0.2 budget keys over to this version's layout and money unit."""
    from costrouter.budget.factory import redis_store_of
    from costrouter.budget.migrate import FENCE_WAIT_SECONDS, Migration
    from costrouter.budget.redis import wrap_errors

    policy, _ = _load_budget_policy(budgets, redis)
    console = _console()
    with _open_store(policy, redis) as store, _store_errors():
        redis_store = redis_store_of(store)
        if redis_store is None:
            _fail(_MEMORY_STORE_NOTE, ExitCode.MEMORY_STORE)
        prefix = policy.store.key_prefix
        console.print(f"store: redis at {mask_url(redis_store.url)}, key prefix {prefix!r}", markup=False)
        migration = Migration(
            redis_store.client,
            prefix,
            fence_wait=FENCE_WAIT_SECONDS if fence_wait is None else fence_wait,
            echo=lambda line: console.print(line, markup=False),
        )
        try:
            with wrap_errors("migrate"):
                summary = migration.dry_run() if dry_run else migration.run()
        except ValueError as error:
            _fail(f"migration stopped on a 0.2 key it cannot read (nothing of it was written): {error}")
    for line in summary.lines(dry_run=dry_run):
        console.print(line, markup=False)
    if summary.problems:
        raise typer.Exit(int(ExitCode.STORE_UNAVAILABLE))


@budget_app.command(
    epilog=(
        "Examples:\n\n"
        "  costrouter budget reset session sess-42\n\n"
        "  costrouter budget reset user alice --name user-daily --yes\n\n"
        f"{_STORE_EPILOG}"
    )
)
def reset(
    scope: ScopeArgument,
    scope_id: IdArgument = None,
    budgets: BudgetsOption = None,
    redis: RedisOption = None,
    name: NameOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Clear the spend, holds and alert flags of SCOPE ID's budgets in their current window."""
    target = _scope_id(scope, scope_id)
    policy, _ = _load_budget_policy(budgets, redis)
    matched = _matching(policy, scope, target, name)
    names = ", ".join(budget.budget_name for budget in matched)
    if not yes and not typer.confirm(printable(f"Reset {names} for {scope.value} {target}?"), default=False):
        _fail("not reset: confirmation declined")
    with _open_store(policy, redis) as store, _store_errors():
        for budget in matched:
            store.reset(budget.ref(target))
    _console().print(printable(f"reset {names} for {scope.value} {target} (current window)"), markup=False)


@budget_app.command(
    epilog=(
        "Examples:\n\n"
        "  costrouter budget top user\n\n"
        "  costrouter budget top session -n 20 --redis redis://localhost:6379/0\n\n"
        f"{_STORE_EPILOG}"
    )
)
def top(
    scope: ScopeArgument,
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="How many ids to list.")] = 10,
    budgets: BudgetsOption = None,
    redis: RedisOption = None,
    name: NameOption = None,
) -> None:
    """The largest spenders of SCOPE in the current window of each of its budgets."""
    if scope is Scope.global_:
        _fail("top ranks the ids of a scope; the global scope has a single one (use budget status global)")
    from costrouter.budget.view import BudgetsView

    policy, _ = _load_budget_policy(budgets, redis)
    console = _console()
    with _open_store(policy, redis) as store, _store_errors():
        for budget in _matching(policy, scope, None, name):
            _heading(console, f"{budget.budget_name}: top {count} ({budget.window})")
            table = _table(console)
            for column in ("rank", scope.value, "spent", "of limit"):
                table.add_column(column, justify="right" if column != scope.value else "left")
            ranked = store.top(budget.ref(_scope_id(Scope.global_, None)), count)
            for rank, (scope_id, spent) in enumerate(ranked, start=1):
                share = units_to_usd(spent) / budget.limit_usd
                table.add_row(str(rank), cell(scope_id), format_usd(units_to_usd(spent)), f"{share:.1%}")
            console.print(table)
            note = BudgetsView(policy, store).top_scan_note()
            if note is not None:
                console.print(note, markup=False)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@budget_app.command(
    epilog=(
        "Examples:\n\n"
        "  costrouter budget ratios\n\n"
        "  costrouter budget ratios --reset gpt-4o-primary\n\n"
        "  costrouter budget ratios --reset-all --redis redis://localhost:6379/0\n\n"
        "A ratio is what a deployment's provider counts per token costrouter counts in a prompt; holds\n"
        "are sized by it. A reset deployment is held at unlearned_ratio again until answers teach it.\n\n"
        f"{_STORE_EPILOG}"
    )
)
def ratios(
    budgets: BudgetsOption = None,
    redis: RedisOption = None,
    reset_one: Annotated[
        str | None, typer.Option("--reset", metavar="DEPLOYMENT", help="Forget this deployment's ratio.")
    ] = None,
    reset_all: Annotated[bool, typer.Option("--reset-all", help="Forget every deployment's ratio.")] = False,
) -> None:
    """The learned prompt-token ratio of each deployment (ratio, observations, age), or reset them."""
    from costrouter.budget.view import BudgetsView

    if reset_one is not None and reset_all:
        raise typer.BadParameter("give --reset DEPLOYMENT or --reset-all, not both", param_hint="--reset")
    policy, _ = _load_budget_policy(budgets, redis)
    console = _console()
    with _open_store(policy, redis) as store, _store_errors():
        view = BudgetsView(policy, store)
        if reset_one is not None or reset_all:
            forgotten = view.reset_token_ratios(reset_one)
            if reset_one is not None and not forgotten:
                _fail(f"no learned ratio for deployment {printable(reset_one)!r}")
            names = ", ".join(printable(name) for name in forgotten) or "none"
            console.print(f"forgot the learned ratio of: {names}", markup=False)
            return
        learned = view.token_ratios()
    _heading(console, f"learned prompt-token ratios (unlearned: {policy.defaults.prompt.unlearned_ratio:g})")
    table = _table(console)
    for column in ("deployment", "ratio", "observations", "age"):
        table.add_column(column, justify="left" if column == "deployment" else "right")
    for deployment_id, ratio in learned.items():
        table.add_row(cell(deployment_id), f"{ratio.ratio:.3f}", str(ratio.observations), _age(ratio.age_seconds))
    console.print(table)


# ---- report -----------------------------------------------------------------------------------
def _print_report(report: Report, output: ReportFormat, destination: Path | None) -> None:
    errors = _console(stderr=True)
    for problem in report.problems:
        errors.print(f"warning: {printable(problem)}", markup=False)
    if report.skipped:
        errors.print(
            f"warning: skipped {report.skipped:,} of {report.spans:,} lines that are not countable span records"
            + (
                f" ({report.skipped - len(report.problems):,} not shown)"
                if report.skipped > len(report.problems)
                else ""
            ),
            markup=False,
        )
    if output is not ReportFormat.table:
        text = {
            ReportFormat.json: lambda: report_json(report) + "\n",
            ReportFormat.csv: lambda: report_csv(report),
            ReportFormat.html: lambda: report_html(report),
        }[output]()
        if destination is not None:
            destination.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return
    console = _console()
    console.print(printable(f"{report.source}: {report.spans} spans, {report.total.calls} routed calls"), markup=False)
    for breakdown in report.breakdowns:
        _heading(console, breakdown_title(breakdown))
        console.print(report_table(breakdown, report.total, ascii_only=not console.is_terminal))


def _instant(value: str | None, option: str) -> int | None:
    try:
        return None if value is None else parse_instant(value)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from error


@app.command(
    epilog=(
        "Examples:\n\n"
        "  costrouter report costrouter-spans.jsonl\n\n"
        "  costrouter report spans.jsonl --by group,session+user --since 24h\n\n"
        "  costrouter report spans.jsonl --format csv --by deployment,tag,model > cost.csv\n\n"
        "  costrouter report spans.jsonl --format html -o cost.html --since 2026-11-01 --until 2026-12-01\n\n"
        "Dimensions: group (that served the call), requested, deployment, session, user, team, tag, model.\n\n"
        "Lines that are not countable span records are skipped, named on stderr and counted.\n\n"
        f"{EXIT_CODES}"
    )
)
def report(
    span_file: Annotated[Path, typer.Argument(help="A JSON-lines span file (COSTROUTER_EXPORTER=file).")],
    output: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="table, csv, json or html (one self-contained page).")
    ] = ReportFormat.table,
    by: Annotated[
        str, typer.Option(help="Comma-separated breakdowns; join dimensions with '+' (group+session).")
    ] = DEFAULT_BREAKDOWNS,
    since: Annotated[
        str | None, typer.Option(help="Only calls that started at or after this: ISO 8601 (UTC) or 24h, 7d back.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only calls that started before this (same forms).")] = None,
    destination: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write csv, json or html here instead of stdout.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Processes reading the file at once (default: one per usable CPU for a large file)."),
    ] = None,
) -> None:
    """Cost, tokens, latency and attempts of the routed calls in a span file, by group, deployment, session, user."""
    try:
        breakdowns = parse_breakdowns(by)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--by") from error
    since_ns, until_ns = _instant(since, "--since"), _instant(until, "--until")
    if output is ReportFormat.html:
        needed: list[tuple[Dimension, ...]] = [("group",), ("session",)]
        breakdowns += [dimensions for dimensions in needed if dimensions not in breakdowns]
    try:
        result = stream_report(span_file, breakdowns, since_ns=since_ns, until_ns=until_ns, workers=workers)
    except OSError as error:
        _fail(f"cannot read {span_file}: {error.strerror or error}")
    if result.spans and result.skipped == result.spans:
        _fail(f"{span_file} is not a span file: none of its {result.spans:,} lines is a span record")
    _print_report(result, output, destination)


def main() -> None:
    """The ``costrouter`` entry point."""
    app()
