"""What LiteLLM imports on some paths without declaring it, checked before the call holds anything.

LiteLLM leaves a few imports of some paths to its own extras (or to none), so a slim install
fails there mid-call. costrouter names them as its own extras and checks, before the span,
the hold and the provider request, that the packages a call needs are installed:

- ``tools``: ``mcp``, for a call with ``tools=``, on LiteLLM before :data:`MCP_LAZY_SINCE`
  (its logging imports ``mcp.types`` for any call with tools; 1.108.4 made it lazy);
- ``anthropic``: ``fastapi``, ``soundfile``, ``backoff``, for an Anthropic-messages stream
  (LiteLLM's stream imports its proxy's logging, which needs all three; still so in 1.110).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from packaging.version import InvalidVersion, Version

from costrouter.errors import MissingExtraError
from costrouter.routing.operations.messages import MESSAGES


@dataclass(frozen=True)
class Extra:
    """One of costrouter's extras: its name, the modules it brings, what needs them."""

    name: str
    modules: tuple[str, ...]
    needed_for: str


TOOLS: Final = Extra("tools", ("mcp",), "a call with tools= on LiteLLM before 1.108.4")
ANTHROPIC: Final = Extra("anthropic", ("fastapi", "soundfile", "backoff"), "an Anthropic-messages stream")

MCP_LAZY_SINCE: Final = Version("1.108.4")
"""The first LiteLLM whose calls with ``tools=`` no longer import ``mcp``."""


@functools.cache
def litellm_version() -> Version | None:
    """The installed LiteLLM's version (``None`` when its metadata cannot tell)."""
    try:
        return Version(importlib.metadata.version("litellm"))
    except (importlib.metadata.PackageNotFoundError, InvalidVersion):
        return None


def extras_needed(operation: str, request: Mapping[str, Any], litellm: Version | None) -> tuple[Extra, ...]:
    """The extras a call of ``operation`` (an operation's name) with ``request`` needs on ``litellm``."""
    needed: list[Extra] = []
    if request.get("tools") and (litellm is None or litellm < MCP_LAZY_SINCE):
        needed.append(TOOLS)
    if operation == MESSAGES.name and request.get("stream"):
        needed.append(ANTHROPIC)
    return tuple(needed)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses the name, or a broken module entry
        return False


@functools.cache
def _missing(extra: Extra) -> tuple[str, ...]:
    return tuple(module for module in extra.modules if not _importable(module))


def check_extras(operation: str, request: Mapping[str, Any]) -> None:
    """Raise :class:`MissingExtraError` when the call needs packages that are not installed."""
    for extra in extras_needed(operation, request, litellm_version()):
        missing = _missing(extra)
        if missing:
            raise MissingExtraError(extra.name, missing, extra.needed_for)
