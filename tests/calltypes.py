"""A router configuration with a group of each call type on a provider double, and the tests' helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from costrouter import CostRouter
from costrouter.testing import ProviderDouble, TelemetryCapture

EMBED_PRICE = 1e-6
"""USD per input token of ``embed-primary`` (the backup charges half)."""
TEXT_PRICES = (3e-6, 4e-6)
"""USD per input and output token of ``text-primary`` (the backup charges half)."""
CLAUDE_PRICES = (3e-6, 15e-6)
"""USD per input and output token of ``claude-primary`` (the backup charges half)."""
CLAUDE_CACHE_READ_PRICE = 3e-7
"""USD per prompt token ``claude-primary`` reads from its cache."""
ANSWER_PRICES = (2e-6, 5e-6)
"""USD per input and output token of ``answer-primary`` (the backup charges half)."""


def _deployment(
    deployment_id: str, model: str, base_url: str, prices: tuple[float, float], mode: str
) -> dict[str, Any]:
    return {
        "id": deployment_id,
        "model": model if "/" in model else f"openai/{model}",
        "api_base": base_url,
        "api_key": "test-key",
        "input_cost_per_token": prices[0],
        "output_cost_per_token": prices[1],
        "mode": mode,
    }


def calltypes_config(base_url: str) -> dict[str, Any]:
    """Groups ``embed`` (falls back to ``embed-backup``) and ``answer`` (falls back to ``answer-backup``)."""
    half_answer = (ANSWER_PRICES[0] / 2, ANSWER_PRICES[1] / 2)
    return {
        "router": {"num_retries": 1, "retry_after": 0},
        "groups": {
            "embed": {
                "deployments": [_deployment("embed-primary", "emb-model", base_url, (EMBED_PRICE, 0.0), "embedding")],
                "fallbacks": ["embed-backup"],
            },
            "embed-backup": {
                "deployments": [
                    _deployment("embed-backup", "emb-backup-model", base_url, (EMBED_PRICE / 2, 0.0), "embedding")
                ],
            },
            "answer": {
                "deployments": [_deployment("answer-primary", "resp-model", base_url, ANSWER_PRICES, "responses")],
                "fallbacks": ["answer-backup"],
            },
            "text": {
                "deployments": [
                    _deployment("text-primary", "text-completion-openai/tc-model", base_url, TEXT_PRICES, "completion")
                ],
                "fallbacks": ["text-backup"],
            },
            "text-backup": {
                "deployments": [
                    _deployment(
                        "text-backup",
                        "text-completion-openai/tc-backup-model",
                        base_url,
                        (TEXT_PRICES[0] / 2, TEXT_PRICES[1] / 2),
                        "completion",
                    )
                ],
            },
            "claude": {
                "deployments": [
                    {
                        **_deployment("claude-primary", "anthropic/claude-x", base_url, CLAUDE_PRICES, "chat"),
                        "cache_read_input_token_cost": CLAUDE_CACHE_READ_PRICE,
                        "api_base": base_url.removesuffix("/v1"),
                    }
                ],
                "fallbacks": ["claude-backup"],
            },
            "claude-backup": {
                "deployments": [
                    {
                        **_deployment(
                            "claude-backup",
                            "anthropic/claude-backup-x",
                            base_url,
                            (CLAUDE_PRICES[0] / 2, CLAUDE_PRICES[1] / 2),
                            "chat",
                        ),
                        "api_base": base_url.removesuffix("/v1"),
                    }
                ],
            },
            "answer-backup": {
                "deployments": [_deployment("answer-backup", "resp-backup-model", base_url, half_answer, "responses")],
            },
        },
    }


def calltypes_router(base_url: str, capture: TelemetryCapture, budgets: dict[str, Any] | None = None) -> CostRouter:
    """A CostRouter over :func:`calltypes_config`, its telemetry in ``capture``."""
    return CostRouter(
        calltypes_config(base_url),
        budgets=budgets,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )


def session_budget(limit_usd: float, store: dict[str, Any]) -> dict[str, Any]:
    """A budget policy of one session budget of ``limit_usd`` on ``store``."""
    return {"store": store, "budgets": [{"scope": "session", "limit_usd": limit_usd, "window": "total"}]}


def open_router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    """A fixture's body: an unbudgeted router on the (reset) double, shut down after the test."""
    provider.reset()
    made = calltypes_router(provider.base_url, capture)
    yield made
    made.shutdown()


def budgeted_router(
    provider: ProviderDouble, capture: TelemetryCapture, limit_usd: float, store: dict[str, Any]
) -> CostRouter:
    """A router with one session budget of ``limit_usd`` on ``store``, on the (reset) double."""
    provider.reset()
    return calltypes_router(provider.base_url, capture, session_budget(limit_usd, store))


def store_config(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """A ``memory`` or ``redis`` store (the test session's server) under a key prefix of its own."""
    store: dict[str, Any] = {"backend": backend, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    if backend == "redis":
        store["redis_url"] = request.getfixturevalue("redis_url")
    return store


def only_call_attributes(capture: TelemetryCapture) -> dict[str, Any]:
    """The attributes of the test's one call span."""
    (span,) = capture.call_spans()
    return dict(span.attributes or {})
