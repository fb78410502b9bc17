"""Run a function in a fresh child of the forkserver and return its result."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any


def _call(conn: Connection, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        conn.send(("ok", function(*args)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def run_in_child(context: BaseContext, function: Callable[..., Any], *args: Any, timeout: float = 900) -> Any:
    """``function(*args)`` in a new process (a fork of the preloaded forkserver)."""
    parent, child = context.Pipe()
    process = context.Process(target=_call, args=(child, function, args), daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise TimeoutError(f"{function.__name__} did not finish within {timeout:.0f} s")
        status, value = parent.recv()
    finally:
        process.join(10)
        if process.is_alive():
            process.terminate()
    if status != "ok":
        raise RuntimeError(f"{function.__name__} failed in its child process:\n{value}")
    return value
