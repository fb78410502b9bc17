"""``costrouter prices push TARGET URL``: the command over :func:`push_prices`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from costrouter.errors import ConfigError

prices_app = typer.Typer(
    help="Register the deployments' prices with backends that price spans themselves (Phoenix, SigNoz).",
    epilog=(
        "Examples:  costrouter prices push phoenix http://localhost:6006  ·  "
        "costrouter prices push phoenix http://localhost:6006 --apply\n\n"
        "Exit codes: 0 ok (dry run: nothing pending) · 1 invalid configuration, or the backend refused · "
        "5 dry run with changes pending"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)

BUILT_IN_TARGETS = ("langfuse", "phoenix", "signoz")
"""The targets :data:`~costrouter.prices_push.registry.TARGETS` starts with, named here so that
the CLI's help does not import every backend's client."""

PENDING_EXIT = 5
"""A dry run that found changes to write (lets a CI job tell "in sync" from "not")."""


@prices_app.command()
def push(
    target: Annotated[str, typer.Argument(help=f"The backend: {', '.join(BUILT_IN_TARGETS)}.")],
    url: Annotated[str, typer.Argument(help="The backend's base URL, e.g. http://localhost:6006.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Model-group YAML (default: COSTROUTER_CONFIG).")
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Write the changes (default: show the diff only).")] = False,
) -> None:
    """Show (and with --apply, write) each model's prices as the backend's custom models.

    Idempotent: a second --apply writes nothing. Secrets come from the environment
    (PHOENIX_API_KEY, SIGNOZ_API_KEY). Models whose deployments disagree on price are named, not pushed.
    """
    # The backends' clients (aiohttp, the OTel SDK, the settings) load only when a push runs.
    from costrouter.config.groups import load_router_config
    from costrouter.config.settings import Settings
    from costrouter.errors import PushError
    from costrouter.prices_push.registry import push_prices

    try:
        router_config = load_router_config(config or Settings().config)
        plan = push_prices(router_config, target, url, apply=apply)
    except (ConfigError, PushError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(plan.render())
    if apply:
        typer.echo(f"applied {len(plan.pending)} change(s)")
    elif plan.pending:
        typer.echo(f"{len(plan.pending)} change(s) pending; run again with --apply to write them")
        raise typer.Exit(PENDING_EXIT)
