"""Who pays for a call: explicit arguments, else the active ``costrouter.context(...)``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Caller:
    """The parties a routed call is attributed to."""

    session_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


_NOBODY = Caller()
_current: ContextVar[Caller | None] = ContextVar("costrouter_caller", default=None)


def _merged(
    base: Caller,
    session_id: str | None,
    user_id: str | None,
    team_id: str | None,
    tags: Sequence[str] | None,
    metadata: Mapping[str, Any] | None,
) -> Caller:
    merged_tags = tuple(dict.fromkeys([*base.tags, *(tags or ())]))
    return replace(
        base,
        session_id=session_id if session_id is not None else base.session_id,
        user_id=user_id if user_id is not None else base.user_id,
        team_id=team_id if team_id is not None else base.team_id,
        tags=merged_tags,
        metadata={**base.metadata, **(metadata or {})},
    )


@contextmanager
def context(
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    team_id: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[Caller]:
    """Attribute every routed call inside the block to these parties.

    Blocks nest: inner values win, tags and metadata accumulate. The context follows
    asyncio tasks created inside the block (contextvars), not plain new threads.

    >>> with context(session_id="sess-1", user_id="user-42"):
    ...     router.route_completion("capable", messages)
    """
    caller = _merged(current_caller(), session_id, user_id, team_id, tags, metadata)
    token = _current.set(caller)
    try:
        yield caller
    finally:
        _current.reset(token)


def current_caller() -> Caller:
    """The caller of the active ``context(...)`` block (empty outside any block)."""
    return _current.get() or _NOBODY


def resolve_caller(
    session_id: str | None,
    user_id: str | None,
    team_id: str | None,
    tags: Sequence[str] | None,
    metadata: Mapping[str, Any] | None,
) -> Caller:
    """Explicit arguments over the active context."""
    return _merged(current_caller(), session_id, user_id, team_id, tags, metadata)
