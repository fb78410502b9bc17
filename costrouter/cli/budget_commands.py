"""``costrouter budget``: status, top, reset, ratios, accept-loss and migrate, on the policy's store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from costrouter.cli.output import EXIT_CODES, ExitCode, config_errors, console_for, fail, heading, new_table
from costrouter.config.redaction import mask_url
from costrouter.errors import BudgetStoreError
from costrouter.money import units_to_usd
from costrouter.report.summary import (
    format_usd,
)
from costrouter.report.terminal import cell, printable

if TYPE_CHECKING:
    from costrouter.budget import Budget, BudgetPolicy, BudgetStore
    from costrouter.budget.journal import PendingSettle


budget_app = typer.Typer(
    help="Look at and reset budget counters in the policy's store (Redis).",
    epilog=f"Examples:  costrouter budget status session sess-42 --budgets configs/budgets.yaml\n\n{EXIT_CODES}",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
"""``costrouter budget``: its commands register on it below."""


class Scope(StrEnum):
    """A budget scope."""

    session = "session"
    user = "user"
    team = "team"
    tag = "tag"
    global_ = "global"


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
            fail("no budget policy: pass --budgets FILE or set COSTROUTER_BUDGETS")
    with config_errors():
        policy = load_policy(path)
    if redis is not None:
        store = policy.store.model_copy(update={"backend": "redis", "redis_url": redis})
        policy = policy.model_copy(update={"store": store})
    if policy.store.backend == "memory":
        fail(_MEMORY_STORE_NOTE, ExitCode.MEMORY_STORE)
    return policy, str(path)


def _matching(policy: BudgetPolicy, scope: Scope, scope_id: str | None, name: str | None) -> list[Budget]:
    """The budgets of ``scope`` that apply to ``scope_id`` (any id when it is ``None``)."""
    budgets = policy.budgets_of(scope.value, scope_id, name)
    if not budgets:
        target = f" for {scope_id!r}" if scope_id is not None else ""
        named = f" named {name!r}" if name is not None else ""
        fail(f"no {scope.value} budget{named}{target} in the policy")
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
        fail(f"invalid Redis URL: {error}")


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except BudgetStoreError as error:
        fail(f"budget store unavailable: {error}", ExitCode.STORE_UNAVAILABLE)


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
    console = console_for()
    heading(console, f"{scope.value} {target}")
    table = new_table(console)
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
            fail(_MEMORY_STORE_NOTE, ExitCode.MEMORY_STORE)
        epoch = redis_store.accept_epoch()
    if not epoch:
        console_for().print("the store has no epoch yet: no router has used it, nothing to accept", markup=False)
        return
    console_for().print(f"accepted the store's epoch {epoch}: routers count from its current state", markup=False)


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
    console = console_for()
    with _open_store(policy, redis) as store, _store_errors():
        redis_store = redis_store_of(store)
        if redis_store is None:
            fail(_MEMORY_STORE_NOTE, ExitCode.MEMORY_STORE)
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
            fail(f"migration stopped on a 0.2 key it cannot read (nothing of it was written): {error}")
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
        fail("not reset: confirmation declined")
    with _open_store(policy, redis) as store, _store_errors():
        for budget in matched:
            store.reset(budget.ref(target))
    console_for().print(printable(f"reset {names} for {scope.value} {target} (current window)"), markup=False)


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
        fail("top ranks the ids of a scope; the global scope has a single one (use budget status global)")
    from costrouter.budget.view import BudgetsView

    policy, _ = _load_budget_policy(budgets, redis)
    console = console_for()
    with _open_store(policy, redis) as store, _store_errors():
        for budget in _matching(policy, scope, None, name):
            heading(console, f"{budget.budget_name}: top {count} ({budget.window})")
            table = new_table(console)
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
    console = console_for()
    with _open_store(policy, redis) as store, _store_errors():
        view = BudgetsView(policy, store)
        if reset_one is not None or reset_all:
            forgotten = view.reset_token_ratios(reset_one)
            if reset_one is not None and not forgotten:
                fail(f"no learned ratio for deployment {printable(reset_one)!r}")
            names = ", ".join(printable(name) for name in forgotten) or "none"
            console.print(f"forgot the learned ratio of: {names}", markup=False)
            return
        learned = view.token_ratios()
    heading(console, f"learned prompt-token ratios (unlearned: {policy.defaults.prompt.unlearned_ratio:g})")
    table = new_table(console)
    for column in ("deployment", "ratio", "observations", "age"):
        table.add_column(column, justify="left" if column == "deployment" else "right")
    for deployment_id, ratio in learned.items():
        table.add_row(cell(deployment_id), f"{ratio.ratio:.3f}", str(ratio.observations), _age(ratio.age_seconds))
    console.print(table)
