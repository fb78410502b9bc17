"""Who pays for a request the LiteLLM proxy received, read the way LiteLLM users already send it.

- session: LiteLLM's ``litellm_session_id`` (body field or ``x-litellm-session-id`` header, which
  the proxy copies into the body), else ``metadata.session_id``;
- user: OpenAI's ``user`` field, else the virtual key's ``user_id``;
- team: the virtual key's ``team_id``;
- tags: ``metadata.tags`` (a list of strings, or one string).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costrouter.context import Caller, resolve_caller

METADATA_KEYS = ("metadata", "litellm_metadata")
"""Where the proxy keeps a request's metadata: ``litellm_metadata`` on its newer routes (Responses)."""


def request_metadata(data: Mapping[str, Any]) -> dict[str, Any]:
    """The request's metadata merged over both of the proxy's names for it (``metadata`` wins)."""
    merged: dict[str, Any] = {}
    for key in reversed(METADATA_KEYS):
        value = data.get(key)
        if isinstance(value, Mapping):
            merged.update(value)
    return merged


def _text(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return text or None


def payer(data: Mapping[str, Any], key_user_id: object, key_team_id: object) -> Caller:
    """The :class:`Caller` of one proxy request (see the module docstring for the order).

    A value of the wrong type (a session id that is a list) is ignored rather than
    refusing the request: the budgets of the ids that are well-formed still apply.
    """
    metadata = request_metadata(data)
    session_id = _text(data.get("litellm_session_id")) or _text(metadata.get("session_id"))
    user_id = _text(data.get("user")) or _text(key_user_id)
    tags = metadata.get("tags")
    if isinstance(tags, str):
        tags = [tags]
    tag_list = [tag for tag in tags if _text(tag)] if isinstance(tags, list) else []
    return resolve_caller(session_id, user_id, _text(key_team_id), tag_list or None, None)
