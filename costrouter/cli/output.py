"""What every command prints with: consoles, tables, headings, failures and the exit codes.

When stdout is not a terminal the output has no colours and ASCII tables, so it pipes cleanly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from costrouter.errors import ConfigError, ConfigProblem
from costrouter.report.terminal import printable


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


def console_for(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr): plain and wide when it is not a terminal."""
    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, highlight=False, soft_wrap=False, width=200, no_color=True)
    return console


def new_table(console: Console) -> Table:
    """A table with rounded borders on a terminal, ASCII ones otherwise."""
    return Table(box=box.ROUNDED if console.is_terminal else box.ASCII)


def heading(console: Console, text: str) -> None:
    """A heading; ids in ``text`` are escaped (control characters and rich markup alike)."""
    console.print()
    safe = printable(text)
    console.print(f"[bold]{escape(safe)}[/bold]" if console.is_terminal else safe, markup=console.is_terminal)


def fail(message: str, code: ExitCode = ExitCode.INVALID) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    console_for(stderr=True).print(f"error: {printable(message)}", markup=False)
    raise typer.Exit(int(code))


def _problem_line(source: str, problem: ConfigProblem) -> str:
    where = f"{getattr(problem.line, 'file', None) or source}:{problem.line}" if problem.line is not None else source
    return f"{where}: {problem.location}: {problem.reason}" if problem.location else f"{where}: {problem.reason}"


def _config_failure(error: ConfigError) -> NoReturn:
    console = console_for(stderr=True)
    console.print(f"error: invalid configuration in {error.source}", markup=False)
    for problem in error.problems:
        console.print(f"  {_problem_line(error.source, problem)}", markup=False)
    raise typer.Exit(int(ExitCode.INVALID))


@contextmanager
def config_errors() -> Iterator[None]:
    """Turn a ConfigError into its printed problems and exit code 1."""
    try:
        yield
    except ConfigError as error:
        _config_failure(error)
