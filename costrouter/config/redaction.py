"""Keep secrets out of every output: URLs, parameter mappings and reprs.

A secret is a URL's password (``redis://:pw@host`` or ``redis://host?password=pw``, both of
which redis-py accepts), a literal ``api_key``, or any parameter whose name says it is one
(``aws_secret_access_key``, ``vertex_credentials`` …). An ``os.environ/NAME`` reference is
not a secret: it names where the secret lives, and stays readable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "is_secret_name", "mask_mapping", "mask_url", "mask_value", "masked_repr_args"]

MASK: Final = "***"
"""What a secret is shown as."""

SECRET_PREFIX: Final = "os.environ/"

_SECRET_WORDS: Final = frozenset(
    {"password", "passwd", "pwd", "secret", "credential", "credentials", "auth", "authorization", "signature", "apikey"}
)


def is_secret_name(name: str) -> bool:
    """Whether a parameter called ``name`` holds a secret (``api_key``, ``password`` …).

    ``max_tokens``, ``input_cost_per_token`` and ``key_prefix`` are not secrets.
    """
    words = [word for word in re.split(r"[^a-z0-9]+", name.lower()) if word]
    if not words:
        return False
    if _SECRET_WORDS.intersection(words):
        return True
    last, before = words[-1], words[-2] if len(words) > 1 else ""
    return last == "key" or (last == "token" and before != "per")


def mask_url(value: str) -> str:
    """``value`` without the password of its user part and of its query string.

    ``redis://user:pw@host:6379/0?password=pw&db=1`` → ``redis://user:***@host:6379/0?password=***&db=1``;
    a value that is not a URL, or an ``os.environ/NAME`` reference, is returned as is.
    """
    if value.startswith(SECRET_PREFIX) or "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return MASK
    netloc = parts.netloc
    if parts.password is not None or (parts.username is not None and "@" in netloc):
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        userinfo = f"{user}:{MASK}" if parts.password is not None else MASK
        netloc = f"{userinfo}@{host}" + (f":{port}" if port is not None else "")
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(key) for key, _ in pairs):
            query = urlencode([(key, MASK if is_secret_name(key) else item) for key, item in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_value(name: str, value: Any) -> Any:
    """``value`` as it may be shown when it is the parameter ``name``."""
    if isinstance(value, str):
        if value.startswith(SECRET_PREFIX):
            return value
        return MASK if is_secret_name(name) else mask_url(value)
    if isinstance(value, Mapping):
        return mask_mapping(value)
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(name, item) for item in value)
    if value is not None and is_secret_name(name):
        return MASK
    return value


def mask_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with every secret masked, nested mappings included."""
    return {key: mask_value(str(key), item) for key, item in values.items()}


def masked_repr_args(args: Iterable[tuple[str | None, Any]]) -> list[tuple[str | None, Any]]:
    """A pydantic model's ``__repr_args__`` with every secret masked (for ``repr``/``str``)."""
    return [(name, value if name is None else mask_value(name, value)) for name, value in args]
