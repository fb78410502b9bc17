"""One bounded HTTP request to a URL the configuration names (an alert sink, a price-push backend).

Bounded three ways:

- **time**: one total deadline over connecting, sending, the status line, the headers and
  the body (aiohttp's ``ClientTimeout(total=…)``), so a server that answers one byte a second
  is cut off at the deadline instead of being waited on for as long as it keeps dripping;
- **size**: the body is read in chunks and refused past ``max_bytes`` (a 200 MB answer
  never reaches memory whole); it is not decompressed;
- **words**: an :class:`~costrouter.errors.OutboundError` says what went wrong in one line of
  costrouter's own words, never the URL, a credential or the server's raw text.

A URL with ``user:password@`` sends them as HTTP basic auth (RFC 7617), never in the request
line. :func:`url_problem` says why a URL cannot be used without showing it.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp

from costrouter.errors import OutboundError

__all__ = ["DEFAULT_MAX_BYTES", "Answer", "request", "send", "url_problem"]

DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024
"""The largest answer body read (16 MiB); a larger one is an :class:`OutboundError`."""

_CHUNK: Final = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """A server's answer: its status and (at most ``max_bytes`` of) its body."""

    status: int
    body: bytes


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be requested (``None`` when it can); the reason never quotes the URL."""
    if any(character.isspace() or ord(character) < 0x20 or ord(character) == 0x7F for character in url):
        return "the URL contains a space or a control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        return "the URL's host or port is malformed"
    if parts.scheme not in ("http", "https"):
        return "the URL must start with http:// or https://"
    if not parts.hostname:
        return "the URL names no host"
    return None


def _split_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without its user part, and that part as a basic ``Authorization`` value (UTF-8, RFC 7617)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), authorization


def _describe(error: BaseException, timeout: float) -> OutboundError:
    if isinstance(error, TimeoutError):  # asyncio.TimeoutError is TimeoutError since 3.11
        return OutboundError(f"no complete answer within {timeout:g} s", retryable=True)
    if isinstance(error, aiohttp.ClientConnectorError):
        return OutboundError(f"{type(error.os_error).__name__}: cannot connect", retryable=True)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return OutboundError("the server closed the connection before answering", retryable=True)
    if isinstance(error, aiohttp.ClientResponseError):
        return OutboundError("the answer is not valid HTTP", retryable=True)
    if isinstance(error, aiohttp.ClientPayloadError):
        return OutboundError("the answer's body was cut short or malformed", retryable=True)
    return OutboundError(f"{type(error).__name__}", retryable=True)


async def send(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    total_seconds: float,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Answer:
    """Send one request and read its answer, all within ``total_seconds``; redirects are not followed.

    Raises :class:`OutboundError` (``retryable`` when another try may succeed).
    """
    problem = url_problem(url)
    if problem is not None:
        raise OutboundError(problem, retryable=False)
    bare_url, authorization = _split_credentials(url)
    sent_headers = {"Accept-Encoding": "identity", **(headers or {})}
    if authorization is not None:
        sent_headers["Authorization"] = authorization
    session_timeout = aiohttp.ClientTimeout(total=total_seconds)
    try:
        async with (
            aiohttp.ClientSession(timeout=session_timeout, auto_decompress=False) as session,
            session.request(method, bare_url, data=body, headers=sent_headers, allow_redirects=False) as response,
        ):
            if response.content_length is not None and response.content_length > max_bytes:
                raise OutboundError(f"the answer is larger than {max_bytes:,} bytes", retryable=False)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise OutboundError(f"the answer is larger than {max_bytes:,} bytes", retryable=False)
                chunks.append(chunk)
            return Answer(response.status, b"".join(chunks))
    except OutboundError:
        raise
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
        raise _describe(error, total_seconds) from None


def request(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    total_seconds: float,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Answer:
    """:func:`send` from synchronous code (on a helper thread when an event loop already runs here)."""
    call = send(method, url, body=body, headers=headers, total_seconds=total_seconds, max_bytes=max_bytes)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(call)
    outcome: list[Answer | BaseException] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(call))
        except BaseException as error:  # handed back to the caller's thread below
            outcome.append(error)

    helper = threading.Thread(target=run, name="costrouter-outbound", daemon=True)
    helper.start()
    helper.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result
