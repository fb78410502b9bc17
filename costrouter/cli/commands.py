"""The ``costrouter`` command: validate configs, run the demo, inspect budgets, report costs.

Exit codes: 0 ok; 1 invalid configuration or input (also a declined confirmation);
2 usage error; 3 budget store unavailable; 4 the budget store is the in-process memory
store, which another process cannot inspect. When stdout is not a terminal the output has
no colours, no progress bar, and ASCII tables.

Each command lives in a module of its own; this module registers them on :data:`app`.
"""

from __future__ import annotations

import typer

from costrouter.cli.budget_commands import budget_app
from costrouter.cli.demo_command import DEMO_EPILOG, demo
from costrouter.cli.output import EXIT_CODES, ExitCode
from costrouter.cli.report_command import REPORT_EPILOG, report
from costrouter.cli.validate_command import VALIDATE_EPILOG, validate
from costrouter.prices_push.command import prices_app

__all__ = ["EXIT_CODES", "ExitCode", "app", "budget_app", "main"]

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
# In the order of --help.
app.command(epilog=VALIDATE_EPILOG)(validate)
app.command(epilog=DEMO_EPILOG)(demo)
app.command(epilog=REPORT_EPILOG)(report)
app.add_typer(budget_app, name="budget")
app.add_typer(prices_app, name="prices")


def main() -> None:
    """The ``costrouter`` entry point."""
    app()
