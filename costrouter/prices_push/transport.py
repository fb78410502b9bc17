"""One request of a price push: a total deadline, a size limit, JSON checked, one-line errors.

Every failure is a :class:`~costrouter.errors.PushError` of one line that names the backend
and its URL with credentials and secret query parameters masked, and says what went wrong in
costrouter's words: never a traceback, never the backend's raw text beyond a short printable
excerpt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from costrouter.config.outbound import Answer, request
from costrouter.config.redaction import mask_url
from costrouter.errors import OutboundError, PushError

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "MAX_ANSWER_BYTES", "excerpt", "exchange", "json_answer", "where"]

DEFAULT_TIMEOUT_SECONDS: Final = 10.0
"""The most one request of a push may take, from connecting to the last byte of the answer."""
MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
"""The largest answer a push reads (16 MiB); a larger one fails the push."""
_EXCERPT: Final = 200


def where(target: str, url: str) -> str:
    """``phoenix at http://user:***@host``: the backend and its masked URL."""
    return f"{target} at {mask_url(url)}"


def excerpt(body: bytes) -> str:
    """The start of an answer, printable and on one line."""
    text = body[:_EXCERPT].decode("utf-8", "replace")
    cleaned = "".join(character if character.isprintable() else " " for character in text)
    return cleaned + ("…" if len(body) > _EXCERPT else "")


def joined(url: str, path: str) -> str:
    """``url`` with ``path`` appended to its path; its query string is kept."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url + path  # the request names what is wrong with it
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))


def exchange(
    target: str,
    url: str,
    method: str,
    path: str,
    *,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Answer:
    """Send ``payload`` as JSON to ``url`` + ``path``; the answer, whatever its status."""
    body = json.dumps(payload).encode()
    try:
        return request(
            method,
            joined(url, path),
            body=body,
            headers={"content-type": "application/json", **(headers or {})},
            total_seconds=timeout,
            max_bytes=MAX_ANSWER_BYTES,
        )
    except OutboundError as error:
        raise PushError(f"{where(target, url)}: {error.reason}") from None


def json_answer(target: str, url: str, answer: Answer) -> Any:
    """The answer's body as JSON; a one-line :class:`PushError` when it is not."""
    try:
        return json.loads(answer.body)
    except (ValueError, RecursionError):
        raise PushError(
            f"{where(target, url)}: the answer (HTTP {answer.status}) is not JSON: {excerpt(answer.body)!r}"
        ) from None
