"""``costrouter prices push <target>``: the command, thin over :mod:`costrouter.prices_push`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from costrouter.config import load_router_config
from costrouter.errors import ConfigError
from costrouter.prices_push import TARGETS
from costrouter.prices_push import target as push_target
from costrouter.settings import Settings

prices_app = typer.Typer(
    help="Write the router's prices into a backend that prices spans itself.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@prices_app.command(epilog="Example:  SIGNOZ_URL=https://signoz.example SIGNOZ_API_KEY=… costrouter prices push signoz")
def push(
    target: Annotated[str, typer.Argument(help=f"One of: {', '.join(sorted(TARGETS))}.")],
    config: Annotated[
        Path | None, typer.Option(help="Model-group YAML (default: COSTROUTER_CONFIG or configs/router.yaml).")
    ] = None,
    url: Annotated[str | None, typer.Option(help="The backend's URL (default: its environment variable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be pushed; send nothing.")] = False,
) -> None:
    """Push one pricing rule per model, from the prices costrouter charges; exit 1 when any cannot be."""
    if target not in TARGETS:
        raise typer.BadParameter(f"unknown target {target!r}; known: {', '.join(sorted(TARGETS))}")
    chosen = push_target(target)
    path = config or Settings().config
    try:
        plan = chosen.build(load_router_config(path))
    except (ConfigError, OSError) as error:
        typer.echo(f"{path}: {error}", err=True)
        raise typer.Exit(1) from error
    for line in plan.not_expressible:
        typer.echo(f"warning: {line}", err=True)
    if plan.conflicts:
        for line in plan.conflicts:
            typer.echo(f"{path}: {line}: one {target} rule per model cannot hold both", err=True)
        raise typer.Exit(1)
    if dry_run:
        typer.echo(json.dumps({"rules": plan.rules}, indent=2))
        return
    base, key = url or os.environ.get(chosen.url_env), os.environ.get(chosen.key_env)
    if not base or not key:
        typer.echo(f"set {chosen.url_env} (or --url) and {chosen.key_env} to push to {target}", err=True)
        raise typer.Exit(1)
    try:
        status = chosen.push(plan, base, key)
    except (OSError, ValueError) as error:
        typer.echo(f"{target}: push failed: {error}", err=True)
        raise typer.Exit(1) from error
    if status >= 300:
        typer.echo(f"{target}: push refused with HTTP {status}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{target}: pushed {len(plan.rules)} pricing rule(s)")
