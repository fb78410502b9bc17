"""Checks of what a routed call's estimate reads, before any provider is called.

A value the estimate cannot bound (a ``max_tokens`` of 0 or ``True``, a ``content``
that is a dict, an unknown content part) raises ``TypeError`` (wrong type) or
``ValueError`` (wrong value) naming the argument, so a hold never silently covers less
than the call can cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeGuard

PART_TYPES: Final = frozenset(
    {
        "text",
        "image_url",
        "input_audio",
        "file",
        "document",
        "image",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "tool_result",
        "tool_reference",
    }
)
"""The chat content parts LiteLLM accepts and costrouter bounds."""

IMAGE_DETAILS: Final = ("low", "high", "auto")
COUNT_ARGUMENTS: Final = ("max_tokens", "max_completion_tokens", "n")


def _type_name(value: object) -> str:
    return type(value).__name__


def _is_list(value: object) -> TypeGuard[Sequence[Any]]:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def check_count(name: str, value: object) -> int | None:
    """``None``, or a positive int (``True`` is not a count)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        message = f"{name} must be a positive integer, not {_type_name(value)} {value!r}"
        raise TypeError(message)
    if value < 1:
        message = f"{name} must be a positive integer, not {value}"
        raise ValueError(message)
    return value


def _check_image_url(where: str, value: object) -> None:
    if isinstance(value, str):
        url: object = value
    elif isinstance(value, Mapping):
        url = value.get("url")
        detail = value.get("detail")
        if detail is not None and detail not in IMAGE_DETAILS:
            message = f"{where}.detail must be one of low, high, auto, not {detail!r}"
            raise ValueError(message)
    else:
        message = f"{where} must be a URL string or a mapping with a url, not {_type_name(value)}"
        raise TypeError(message)
    if not isinstance(url, str) or not url.strip():
        message = f"{where}.url must be a non-empty string"
        raise ValueError(message)


def _check_mapping(where: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        message = f"{where} must be a mapping, not {_type_name(value)}"
        raise TypeError(message)
    return value


def _check_part(where: str, part: object) -> None:
    part = _check_mapping(where, part)  # LiteLLM's OpenAI path fails on a bare string part
    kind = part.get("type")
    if kind not in PART_TYPES:
        message = (
            f"{where}.type {kind!r} is not a content type costrouter can estimate ({', '.join(sorted(PART_TYPES))})"
        )
        raise ValueError(message)
    if kind == "text" and not isinstance(part.get("text"), str):
        message = f"{where}.text must be a string, not {_type_name(part.get('text'))}"
        raise TypeError(message)
    if kind == "image_url":
        _check_image_url(f"{where}.image_url", part.get("image_url"))
    elif kind == "input_audio":
        audio = _check_mapping(f"{where}.input_audio", part.get("input_audio"))
        if not isinstance(audio.get("data"), str) or not isinstance(audio.get("format"), str):
            message = f"{where}.input_audio needs data (base64 text) and format strings"
            raise TypeError(message)
    elif kind == "file":
        file = _check_mapping(f"{where}.file", part.get("file"))
        if not isinstance(file.get("file_data"), str) and not isinstance(file.get("file_id"), str):
            message = f"{where}.file needs a file_data or a file_id string"
            raise TypeError(message)
    elif kind in ("image", "document"):
        _check_mapping(f"{where}.source", part.get("source"))


def _check_content(where: str, content: object) -> None:
    if content is None or isinstance(content, str):
        return
    if not _is_list(content):
        message = f"{where} must be a string, a list of content parts or None, not {_type_name(content)}"
        raise TypeError(message)
    for index, part in enumerate(content):
        _check_part(f"{where}[{index}]", part)


def message_dicts(messages: Sequence[Any]) -> list[Any]:
    """The messages, with LiteLLM ``Message`` objects (pydantic models) as plain mappings."""
    return [
        item
        if type(item) is dict or isinstance(item, Mapping) or not hasattr(item, "model_dump")
        else item.model_dump(exclude_none=True)
        for item in messages
    ]


def check_messages(messages: object) -> None:
    """Every message a mapping (or a LiteLLM ``Message``) with a role and content the estimate can bound."""
    if not _is_list(messages):
        message = f"messages must be a list of message mappings, not {_type_name(messages)}"
        raise TypeError(message)
    if not messages:
        message = "messages must not be empty"
        raise ValueError(message)
    for index, item in enumerate(message_dicts(messages)):
        where = f"messages[{index}]"
        message_ = _check_mapping(where, item)
        role = message_.get("role")
        if not isinstance(role, str) or not role:
            raise ValueError(f"{where}.role must be a non-empty string, not {role!r}")
        _check_content(f"{where}.content", message_.get("content"))
        name = message_.get("name")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{where}.name must be a string, not {_type_name(name)}")
        tool_calls = message_.get("tool_calls")
        if tool_calls is not None and not _is_list(tool_calls):
            raise TypeError(f"{where}.tool_calls must be a list, not {_type_name(tool_calls)}")


def check_request(messages: object, request: Mapping[str, Any]) -> None:
    """Check the messages and the keyword arguments that the estimate reads."""
    check_messages(messages)
    for name in COUNT_ARGUMENTS:
        check_count(name, request.get(name))
    for name in ("tools", "functions"):
        value = request.get(name)
        if value is not None and not (_is_list(value) and all(isinstance(item, Mapping) for item in value)):
            raise TypeError(f"{name} must be a list of mappings, not {_type_name(value)}")
    tool_choice = request.get("tool_choice")
    if tool_choice is not None and not isinstance(tool_choice, (str, Mapping)):
        raise TypeError(f"tool_choice must be a string or a mapping, not {_type_name(tool_choice)}")
    response_format = request.get("response_format")
    if not (
        response_format is None or isinstance(response_format, Mapping) or hasattr(response_format, "model_json_schema")
    ):
        message = f"response_format must be a mapping or a pydantic model class, not {_type_name(response_format)}"
        raise TypeError(message)
