"""``costrouter demo``: route a realistic workload against a local provider double and report it."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from costrouter.cli.output import EXIT_CODES, ExitCode, config_errors, console_for, fail, heading
from costrouter.errors import BudgetStoreError
from costrouter.report.summary import (
    breakdown_title,
    report_table,
)

if TYPE_CHECKING:
    from costrouter.cli.demo import DemoResult


class DemoExporterChoice(StrEnum):
    """Where the demo's spans go."""

    file = "file"
    console = "console"
    otlp = "otlp"


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
        heading(console, breakdown_title(breakdown))
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


DEMO_EPILOG = (
    "Examples:\n\n"
    "  costrouter demo\n\n"
    "  costrouter demo --exporter console\n\n"
    "  costrouter demo --otlp http://localhost:4318 --redis redis://localhost:6379/0\n\n"
    f"{EXIT_CODES}"
)
"""The examples ``costrouter demo --help`` ends with."""


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
    console = console_for()
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )
    with config_errors(), progress:
        task = progress.add_task("routing", total=sum(len(c.turns) for c in conversations()))

        def on_turn(description: str) -> None:
            progress.update(task, advance=1, description=description)

        try:
            result = run_demo(options, on_turn)
        except BudgetStoreError as error:
            fail(f"budget store unavailable: {error}", ExitCode.STORE_UNAVAILABLE)
        except ValueError as error:
            fail(str(error))
    _print_demo(console, result)
