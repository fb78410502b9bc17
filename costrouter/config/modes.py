"""The kinds of call (``mode``) a deployment may serve: the ones costrouter routes, in LiteLLM's spellings.

A plain table for the YAML models (:mod:`costrouter.config.groups`); each operation of
:mod:`costrouter.routing.operations` names the modes it reaches, and a test holds the two equal.
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import Final

ROUTED_MODES: Final = frozenset(
    {
        "chat",
        "completion",
        "responses",
        "messages",
        "embedding",
        "rerank",
        "audio_speech",
        "audio_transcription",
        "image_generation",
    }
)
"""Every mode some costrouter operation routes (``route_completion`` serves ``chat`` …)."""

LITELLM_SPELLINGS: Final = {"anthropic_messages": "messages"}
"""LiteLLM's names for a routed mode where they differ from costrouter's (its health-check modes,
``litellm.litellm_core_utils.health_check_helpers.HealthCheckHelpers.get_mode_handlers``)."""

LITELLM_UNROUTED_MODES: Final = frozenset(
    {"image_edit", "video_generation", "realtime", "batch", "ocr", "decisions", "evaluation", "moderation", "search"}
)
"""Modes LiteLLM knows (its price map, its health checks) that no costrouter operation routes."""


def canonical_mode(value: str) -> str:
    """``value`` in costrouter's spelling (``anthropic_messages`` → ``messages``); others unchanged."""
    return LITELLM_SPELLINGS.get(value, value)


def mode_problem(value: object) -> str | None:
    """Why ``value`` cannot be a deployment's ``mode``, or ``None`` when costrouter routes it."""
    if not isinstance(value, str):
        return f"must be a string, not {value!r}"
    if canonical_mode(value) in ROUTED_MODES:
        return None
    routed = ", ".join(sorted(ROUTED_MODES | LITELLM_SPELLINGS.keys()))
    if value in LITELLM_UNROUTED_MODES:
        return f"{value!r} is a LiteLLM mode costrouter does not route; costrouter routes: {routed}"
    close = get_close_matches(value, sorted(ROUTED_MODES | LITELLM_SPELLINGS.keys()), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown mode {value!r}{hint}; costrouter routes: {routed}"
