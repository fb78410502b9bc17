"""The module-level ``route_*`` functions: a default router built lazily from settings."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from costrouter.config.settings import Settings
from costrouter.routing.router import CostRouter

_lock = threading.Lock()
_router: list[CostRouter] = []


def default_router() -> CostRouter:
    """The router of the module-level functions, built on first use.

    It reads ``COSTROUTER_CONFIG`` (else ``./configs/router.yaml``) and
    ``COSTROUTER_BUDGETS`` (else no budgets).
    """
    with _lock:
        if not _router:
            settings = Settings()
            _router.append(CostRouter.from_files(settings.config, settings.budgets, settings=settings))
        return _router[0]


def route_completion(group: str, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Any:
    """:meth:`CostRouter.route_completion` on the default router."""
    return default_router().route_completion(group, messages, **kwargs)


async def aroute_completion(group: str, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Any:
    """:meth:`CostRouter.aroute_completion` on the default router."""
    return await default_router().aroute_completion(group, messages, **kwargs)


def route_embedding(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.route_embedding` on the default router."""
    return default_router().route_embedding(group, **kwargs)


async def aroute_embedding(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.aroute_embedding` on the default router."""
    return await default_router().aroute_embedding(group, **kwargs)


def route_response(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.route_response` on the default router."""
    return default_router().route_response(group, **kwargs)


async def aroute_response(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.aroute_response` on the default router."""
    return await default_router().aroute_response(group, **kwargs)


def route_text_completion(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.route_text_completion` on the default router."""
    return default_router().route_text_completion(group, **kwargs)


async def aroute_text_completion(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.aroute_text_completion` on the default router."""
    return await default_router().aroute_text_completion(group, **kwargs)


def route_messages(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.route_messages` on the default router."""
    return default_router().route_messages(group, **kwargs)


async def aroute_messages(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.aroute_messages` on the default router."""
    return await default_router().aroute_messages(group, **kwargs)


def route_rerank(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.route_rerank` on the default router."""
    return default_router().route_rerank(group, **kwargs)


async def aroute_rerank(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.aroute_rerank` on the default router."""
    return await default_router().aroute_rerank(group, **kwargs)


def route_transcription(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.route_transcription` on the default router."""
    return default_router().route_transcription(group, **kwargs)


async def aroute_transcription(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.aroute_transcription` on the default router."""
    return await default_router().aroute_transcription(group, **kwargs)


def route_speech(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.route_speech` on the default router."""
    return default_router().route_speech(group, **kwargs)


async def aroute_speech(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.aroute_speech` on the default router."""
    return await default_router().aroute_speech(group, **kwargs)


def route_image(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.route_image` on the default router."""
    return default_router().route_image(group, **kwargs)


async def aroute_image(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.aroute_image` on the default router."""
    return await default_router().aroute_image(group, **kwargs)


def route_image_edit(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.route_image_edit` on the default router."""
    return default_router().route_image_edit(group, **kwargs)


async def aroute_image_edit(group: str, **kwargs: Any) -> Any:
    """:meth:`CostRouter.aroute_image_edit` on the default router."""
    return await default_router().aroute_image_edit(group, **kwargs)
