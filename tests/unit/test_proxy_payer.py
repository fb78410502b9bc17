"""Who pays for a proxy request: the documented order, and ids of the wrong type ignored."""

from __future__ import annotations

from costrouter.proxy.payer import payer, request_metadata
from costrouter.proxy.plugin import request_params


def test_the_session_is_litellm_session_id_before_metadata() -> None:
    data = {"litellm_session_id": "s-body", "metadata": {"session_id": "s-meta"}}

    assert payer(data, None, None).session_id == "s-body"
    assert payer({"metadata": {"session_id": "s-meta"}}, None, None).session_id == "s-meta"


def test_the_user_is_the_user_field_before_the_keys_user() -> None:
    assert payer({"user": "alice"}, "key-user", None).user_id == "alice"
    assert payer({}, "key-user", None).user_id == "key-user"


def test_team_is_the_keys_and_tags_come_from_metadata() -> None:
    caller = payer({"metadata": {"tags": ["a", "b"]}}, None, "team-1")

    assert caller.team_id == "team-1"
    assert caller.tags == ("a", "b")
    assert payer({"litellm_metadata": {"tags": "one"}}, None, None).tags == ("one",)


def test_ids_of_the_wrong_type_are_ignored_not_fatal() -> None:
    caller = payer({"litellm_session_id": ["x"], "user": {"id": 1}, "metadata": {"tags": [3, None]}}, True, None)

    assert caller.session_id is None
    assert caller.user_id is None
    assert caller.tags == ("3",)


def test_metadata_wins_over_litellm_metadata() -> None:
    merged = request_metadata({"metadata": {"k": "m"}, "litellm_metadata": {"k": "l", "other": 1}})

    assert merged == {"k": "m", "other": 1}


def test_request_params_leave_out_the_proxys_bookkeeping() -> None:
    data = {
        "model": "chat",
        "messages": [],
        "max_tokens": 5,
        "stream": True,
        "metadata": {},
        "litellm_call_id": "x",
        "litellm_logging_obj": object(),
        "proxy_server_request": {},
        "secret_fields": {},
        "_litellm_strip_stream_usage": True,
        "user_api_key_dict": {},
    }

    assert request_params(data) == {"max_tokens": 5, "stream": True}
