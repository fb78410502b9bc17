"""A server process a test started, waited on until its health URL answers 200, it exits, or time runs out."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_until_healthy(
    process: subprocess.Popen[bytes], health_url: str, name: str, timeout_seconds: float, log_tail: Callable[[], str]
) -> None:
    """Return once ``health_url`` answers 200; raise naming ``name`` and its log's tail otherwise."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {log_tail()}")
        try:
            if httpx.get(health_url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{name} did not answer within {timeout_seconds}s: {log_tail()}")
