"""How many tokens a chat call can be billed for: the prompt, counted as an upper bound, and the output.

Text is counted with tiktoken's ``cl100k_base`` (from LiteLLM's bundled cache: nothing
is downloaded, whatever the model). Every part of a request that reaches the provider
is counted: message text and names, tool calls, images, audio and files (rules in
:mod:`costrouter.media_tokens`), ``tools``/``functions`` definitions, ``tool_choice``
and ``response_format`` schemas; plus the chat template's tokens per message and per
call. :func:`prompt_token_bound` then turns that count into an upper bound with the
policy's safety factor and the ratio learned from the provider (see
:mod:`costrouter.token_ratios`). Inputs are checked first by
:mod:`costrouter.request_checks`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from litellm.litellm_core_utils import default_encoding  # bundled encodings: tiktoken never downloads

from costrouter.config.budgets import PromptEstimate
from costrouter.pricing.media_tokens import audio_tokens, decode_base64, decode_data_url, file_tokens, image_tokens
from costrouter.pricing.request_checks import check_count, message_dicts

TOOL_PROMPT_TOKENS: Final = 350
"""Added once when a call offers tools: Anthropic's tool-use system prompt is 313-346 tokens."""

TOKENS_PER_TOOL: Final = 10

_DEFAULT_SETTINGS: Final = PromptEstimate()


_COUNTED: dict[tuple[int, int], int] = {}
"""Token counts of texts met before, by the text's hash and length (the text itself is not kept)."""
_MAX_COUNTED: Final = 16_384
"""Texts whose counts are kept (about 1.5 MB); past this many the cache starts over."""


def count_text_tokens(text: str) -> int:
    """Tokens of ``text`` in cl100k_base (also used for a stream that ended before its usage chunk).

    A conversation sends its history again with every call, and a system prompt opens every
    conversation: each text's count is kept by its (process-salted) hash and length, so a text
    met again costs a dict lookup instead of a tokenization.
    """
    if not text:
        return 0
    key = (hash(text), len(text))
    tokens = _COUNTED.get(key)
    if tokens is None:
        # encode_ordinary is tiktoken's encode(text, disallowed_special=()) (special tokens counted as the
        # text they are) without the special-token search: a fifth of the instructions on a short text.
        tokens = len(default_encoding.encoding.encode_ordinary(text))
        if len(_COUNTED) >= _MAX_COUNTED:
            _COUNTED.clear()
        _COUNTED[key] = tokens
    return tokens


def _json_tokens(value: object) -> int:
    return count_text_tokens(json.dumps(value, ensure_ascii=False, default=str, sort_keys=True))


def _document_tokens(part: Mapping[str, Any], settings: PromptEstimate) -> int:
    source = part.get("source") or {}
    tokens = sum(count_text_tokens(str(part[key])) for key in ("title", "context") if part.get(key))
    kind = source.get("type")
    if kind == "text":
        return tokens + count_text_tokens(str(source.get("data", "")))
    if kind == "content":
        return tokens + content_tokens(source.get("content"), settings)
    if kind == "base64" and isinstance(source.get("data"), str):
        return tokens + file_tokens(decode_base64(source["data"]))
    return tokens + settings.unknown_file_tokens


def _file_tokens(file: Mapping[str, Any], settings: PromptEstimate) -> int:
    tokens = count_text_tokens(str(file.get("filename") or ""))
    data = file.get("file_data")
    if not isinstance(data, str):
        return tokens + settings.unknown_file_tokens
    raw = decode_data_url(data)
    return tokens + file_tokens(raw if raw is not None else decode_base64(data))


def _image_part_tokens(part: Mapping[str, Any]) -> int:
    if part["type"] == "image_url":
        image = part["image_url"]
        if isinstance(image, str):
            return image_tokens(image, "auto")
        return image_tokens(str(image["url"]), str(image.get("detail") or "auto"))
    source = part.get("source") or {}
    if source.get("type") == "base64":
        return image_tokens(f"data:{source.get('media_type') or 'image/png'};base64,{source.get('data', '')}", "auto")
    return image_tokens(str(source.get("url", "")), "auto")


_PART_COUNTERS: Final[dict[str, Callable[[Mapping[str, Any]], int]]] = {
    "text": lambda part: count_text_tokens(part["text"]),
    "image_url": _image_part_tokens,
    "image": _image_part_tokens,
    "input_audio": lambda part: audio_tokens(part["input_audio"]["data"], part["input_audio"]["format"]),
    "thinking": lambda part: count_text_tokens(str(part.get("thinking", ""))),
}
"""Parts with a rule of their own; any other (tool_use, tool_result, …) counts as the JSON sent."""


def _part_tokens(part: Mapping[str, Any], settings: PromptEstimate) -> int:
    kind = part["type"]
    if kind == "file":
        return _file_tokens(part["file"], settings)
    if kind == "document":
        return _document_tokens(part, settings)
    return _PART_COUNTERS.get(kind, _json_tokens)(part)


def content_tokens(content: object, settings: PromptEstimate = _DEFAULT_SETTINGS) -> int:
    """Tokens of one message's ``content``: ``None``, text, or a list of parts."""
    if content is None:
        return 0
    if isinstance(content, str):
        return count_text_tokens(content)
    parts: Sequence[Mapping[str, Any]] = content  # type: ignore[assignment]  # checked by request_checks
    return sum(_part_tokens(part, settings) for part in parts)


_ROLE_TOKENS: dict[str, int] = {}
"""The count of each role seen (``user``, ``assistant`` …): every message names one."""
_MAX_ROLES: Final = 64
"""Roles are a handful of names; past this many, a role is counted afresh (the cache stays small)."""


def _role_tokens(role: str) -> int:
    tokens = _ROLE_TOKENS.get(role)
    if tokens is None:
        tokens = count_text_tokens(role)
        if len(_ROLE_TOKENS) < _MAX_ROLES:
            _ROLE_TOKENS[role] = tokens
    return tokens


def _message_tokens(message: Mapping[str, Any], settings: PromptEstimate) -> int:
    tokens = settings.tokens_per_message
    for key, value in message.items():
        if value is None:
            continue
        if key == "content":
            tokens += content_tokens(value, settings)
        elif isinstance(value, str):
            tokens += _role_tokens(value) if key == "role" else count_text_tokens(value)
        else:  # tool_calls, function_call, cache_control …: as they are sent
            tokens += _json_tokens(value)
    return tokens


def _schema(value: object) -> object:
    schema = getattr(value, "model_json_schema", None)
    return schema() if callable(schema) else value


def _request_tokens(request: Mapping[str, Any]) -> int:
    tokens = 0
    offered, functions = request.get("tools"), request.get("functions")
    if offered or functions:
        tools = [*(offered or ()), *(functions or ())]
        tokens += TOOL_PROMPT_TOKENS + TOKENS_PER_TOOL * len(tools) + _json_tokens(tools)
    for key in ("tool_choice", "response_format"):
        value = request.get(key)
        if value is not None:
            tokens += TOKENS_PER_TOOL + _json_tokens(_schema(value))
    return tokens


def prompt_token_count(
    messages: Sequence[Mapping[str, Any]],
    request: Mapping[str, Any] | None = None,
    settings: PromptEstimate = _DEFAULT_SETTINGS,
) -> int:
    """Everything the call sends, in cl100k tokens, with the chat template's overheads.

    ``request`` holds the call's other keyword arguments (``tools``, ``tool_choice``,
    ``response_format`` …). Not yet an upper bound for other tokenizers: see
    :func:`prompt_token_bound`.
    """
    tokens = settings.tokens_per_call
    for message in message_dicts(messages):
        tokens += _message_tokens(message, settings)
    return tokens + _request_tokens(request or {})


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """:func:`prompt_token_count` of ``messages`` alone, with the default overheads."""
    return prompt_token_count(messages)


def prompt_token_bound(counted: int, ratio: float, settings: PromptEstimate) -> int:
    """The prompt tokens a hold covers: ``ceil(counted x max(1, ratio) x safety_factor)``."""
    return math.ceil(counted * max(1.0, ratio) * settings.safety_factor)


def requested_output_tokens(request: Mapping[str, Any]) -> int | None:
    """The larger of ``max_tokens`` and ``max_completion_tokens`` (reasoning models use the latter)."""
    max_tokens = check_count("max_tokens", request.get("max_tokens"))
    max_completion_tokens = check_count("max_completion_tokens", request.get("max_completion_tokens"))
    if max_completion_tokens is None:
        return max_tokens
    return max_completion_tokens if max_tokens is None else max(max_tokens, max_completion_tokens)


def completions(request: Mapping[str, Any]) -> int:
    """How many choices the call asks for (``n``); each may produce the whole output cap."""
    return check_count("n", request.get("n")) or 1
