"""Reading an Anthropic stream's server-sent events, however the network cut them."""

from __future__ import annotations

import json
from typing import Any

from costrouter.pricing.tokens import count_text_tokens
from costrouter.routing.operations.messages_stream import MessagesTally, sse_events


def event(payload: dict[str, Any], newline: str = "\n") -> bytes:
    return f"event: {payload['type']}{newline}data: {json.dumps(payload)}{newline}{newline}".encode()


START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "model": "claude-x",
        "usage": {
            "input_tokens": 12,
            "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 8,
            "output_tokens": 1,
        },
    },
}
TEXT = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "the storm passed"}}
THINKING = {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "let me see"}}
DELTA = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}
STOP = {"type": "message_stop"}


def test_a_whole_stream_reports_its_usage() -> None:
    tally = MessagesTally()
    tally.observe(b"".join(event(e) for e in (START, TEXT, DELTA, STOP)))

    assert tally.usage_complete
    usage = tally.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (50, 9)  # 12 fresh + 30 read + 8 written
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (30, 8)
    assert tally.parts == ["the storm passed"]
    assert tally.finish_reasons == ["end_turn"]
    assert (tally.response_id, tally.model) == ("msg_1", "claude-x")


def test_events_cut_anywhere_are_read_once_whole() -> None:
    whole = b"".join(event(e, "\r\n") for e in (START, TEXT, TEXT, DELTA, STOP))
    tally = MessagesTally()
    for index in range(0, len(whole), 7):  # seven bytes a chunk: every event split, CRLF split too
        tally.observe(whole[index : index + 7])

    assert tally.parts == ["the storm passed", "the storm passed"]
    assert tally.usage is not None
    assert tally.usage.completion_tokens == 9


def test_a_stream_cut_before_message_delta_counts_what_it_generated() -> None:
    tally = MessagesTally()
    tally.observe(event(START) + event(THINKING) + event(TEXT))

    assert not tally.usage_complete
    usage = tally.usage
    assert usage is not None
    assert usage.prompt_tokens == 50  # reported by message_start
    assert usage.completion_tokens == count_text_tokens("let me see" + "the storm passed")  # thinking is billed too


def test_nothing_is_known_before_message_start() -> None:
    tally = MessagesTally()
    tally.observe(b'event: ping\ndata: {"type": "ping"}\n\n')
    tally.observe(b": a comment\n\n")

    assert tally.usage is None


def test_a_message_delta_that_repeats_the_input_usage_wins() -> None:
    tally = MessagesTally()
    cumulative = {**DELTA, "usage": {"input_tokens": 14, "output_tokens": 9}}
    for payload in (START, cumulative):  # already parsed events are taken as they are
        tally.observe(payload)

    assert tally.usage is not None
    assert tally.usage.prompt_tokens == 14 + 30 + 8


def test_sse_events_keeps_the_incomplete_rest() -> None:
    events, rest = sse_events(event(START) + b"event: message_stop\ndata: {")

    assert [e["type"] for e in events] == ["message_start"]
    assert rest == b"event: message_stop\ndata: {"


def test_a_bridged_stream_s_zero_input_is_unknown_until_message_delta() -> None:
    bridged = {**START, "message": {**START["message"], "usage": {"input_tokens": 0, "output_tokens": 0}}}
    tally = MessagesTally()
    tally.observe(event(bridged) + event(TEXT))

    assert tally.usage is None  # the stream's counter counts the prompt instead of charging none

    tally.observe(event({**DELTA, "usage": {"input_tokens": 6, "output_tokens": 3}}))
    assert tally.usage is not None
    assert (tally.usage.prompt_tokens, tally.usage.completion_tokens) == (6, 3)
