"""Who pays for a call: explicit arguments, else the active ``costrouter.context(...)``.

Ids are checked where they enter: a string id is kept as it is, an int becomes its
decimal string, and an empty or blank string, bytes, a bool or any other type raises
an error naming the argument. ``tags`` is one tag (a string) or an iterable of them.

An id longer than :data:`MAX_ID_BYTES` (UTF-8) or holding a control character (Unicode
category ``Cc``: C0, DEL, C1 — newlines, tabs, terminal escapes) is refused with
``ValueError`` naming the argument, before any budget hold and any provider call:
an id becomes part of store keys, span attributes, log lines and terminal output.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Final

MAX_ID_BYTES: Final = 256
"""The longest session, user, team or tag id, in bytes of UTF-8."""
_SHORT_ID_CHARS: Final = MAX_ID_BYTES // 4
"""Ids of at most this many characters are within :data:`MAX_ID_BYTES` whatever the characters."""


@dataclass(frozen=True)
class Caller:
    """The parties a routed call is attributed to."""

    session_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


Id = str | int
Tags = str | Iterable[Id]


def check_id(name: str, value: object) -> str | None:
    """``value`` as an id string (``None`` stays ``None``); a clear error when it cannot be one."""
    if value is None:
        return None
    if value.__class__ is str and 0 < len(value) <= _SHORT_ID_CHARS and value.isprintable() and not value.isspace():
        return value  # the usual id: no character of category Cc (isprintable), at most 4 bytes a character
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        message = f"{name} must be a string or an int, not {type(value).__name__} ({value!r})"
        raise TypeError(message)
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        message = f"{name} must not be empty or blank (got {value!r}); pass None for no {name}"
        raise ValueError(message)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_ID_BYTES:
        message = f"{name} is {size:,} bytes of UTF-8; an id may have at most {MAX_ID_BYTES} (starts {text[:32]!r})"
        raise ValueError(message)
    control = next((character for character in text if _is_control(character)), None)
    if control is not None:
        message = (
            f"{name} holds the control character {control!r} at {text.index(control)}; "
            "ids are printable text (no newlines, tabs or escapes)"
        )
        raise ValueError(message)
    return text


def _is_control(character: str) -> bool:
    code = ord(character)
    return code < 0x20 or 0x7F <= code <= 0x9F  # Unicode category Cc


def check_tags(tags: object) -> tuple[str, ...]:
    """``tags`` as a tuple of tag strings: a lone string is one tag, not its letters."""
    if tags is None:
        return ()
    if isinstance(tags, (str, int)) and not isinstance(tags, bool):
        return (_check_tag("tags", tags),)
    if isinstance(tags, (bytes, bytearray, Mapping)) or not isinstance(tags, Iterable):
        message = f"tags must be a string or an iterable of strings, not {type(tags).__name__} ({tags!r})"
        raise TypeError(message)
    return tuple(_check_tag(f"tags[{index}]", tag) for index, tag in enumerate(tags))


def _check_tag(name: str, tag: object) -> str:
    text = check_id(name, tag)
    if text is None:
        message = f"{name} must be a string or an int, not None"
        raise TypeError(message)
    return text


_NOBODY = Caller()
_current: ContextVar[Caller | None] = ContextVar("costrouter_caller", default=None)


def _merged(
    base: Caller,
    session_id: Id | None,
    user_id: Id | None,
    team_id: Id | None,
    tags: Tags | None,
    metadata: Mapping[str, Any] | None,
) -> Caller:
    session, user, team = check_id("session_id", session_id), check_id("user_id", user_id), check_id("team_id", team_id)
    if base is _NOBODY and tags is None and not metadata:  # no context block: nothing to merge
        return Caller(session, user, team)
    merged_tags = tuple(dict.fromkeys([*base.tags, *check_tags(tags)]))
    return replace(
        base,
        session_id=session if session is not None else base.session_id,
        user_id=user if user is not None else base.user_id,
        team_id=team if team is not None else base.team_id,
        tags=merged_tags,
        metadata={**base.metadata, **(metadata or {})},
    )


@contextmanager
def context(
    *,
    session_id: Id | None = None,
    user_id: Id | None = None,
    team_id: Id | None = None,
    tags: Tags | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[Caller]:
    """Attribute every routed call inside the block to these parties.

    Ids are strings (an int becomes its decimal string); ``tags`` is one tag or an
    iterable of tags. An empty id, bytes or another type raises ``ValueError`` /
    ``TypeError`` naming the argument. Blocks nest: inner values win, tags and metadata accumulate. The context follows
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
    session_id: Id | None,
    user_id: Id | None,
    team_id: Id | None,
    tags: Tags | None,
    metadata: Mapping[str, Any] | None,
) -> Caller:
    """Explicit arguments over the active context, checked as :func:`context` checks them."""
    return _merged(current_caller(), session_id, user_id, team_id, tags, metadata)
