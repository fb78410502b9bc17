"""The prompt-token count and its upper bound, content type by content type."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import litellm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litellm.litellm_core_utils import default_encoding
from pydantic import BaseModel

from costrouter.config.budgets import PromptEstimate
from costrouter.pricing import tokens as tokens_module
from costrouter.pricing.media_tokens import UNKNOWN_IMAGE_TOKENS, anthropic_image_tokens, openai_image_tokens
from costrouter.pricing.tokens import (
    TOOL_PROMPT_TOKENS,
    completions,
    content_tokens,
    count_text_tokens,
    prompt_token_bound,
    prompt_token_count,
    requested_output_tokens,
)

SETTINGS = PromptEstimate()


def png_url(width: int, height: int) -> str:
    """A data URL of a PNG whose header says ``width`` x ``height`` (the pixels are never read)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk).decode()


def wav(seconds: float, byte_rate: int = 32_000) -> str:
    data = bytes(int(seconds * byte_rate))
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 16000, byte_rate, 2, 16)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + fmt
    return base64.b64encode(header + b"data" + struct.pack("<I", len(data)) + data).decode()


def test_hi_is_bounded_above_what_template_tokenizers_count() -> None:
    # tiktoken counts 8 for this; a Llama-3-style chat template counts 11-12.
    messages = [{"role": "user", "content": "hi"}]
    assert litellm.token_counter(messages=messages) == 8
    counted = prompt_token_count(messages)
    assert counted >= 12
    assert prompt_token_bound(counted, 1.0, SETTINGS) >= 12


def test_bound_applies_the_learned_ratio_and_the_safety_factor() -> None:
    assert prompt_token_bound(100, 1.0, SETTINGS) == 130
    assert prompt_token_bound(100, 0.5, SETTINGS) == 130  # never below the count itself
    assert prompt_token_bound(100, 2.0, SETTINGS) == 260
    assert prompt_token_bound(100, 1.5, PromptEstimate(safety_factor=1.0)) == 150


def test_every_message_field_is_counted() -> None:
    plain = prompt_token_count([{"role": "assistant", "content": None}])
    assert plain == SETTINGS.tokens_per_call + SETTINGS.tokens_per_message + count_text_tokens("assistant")
    named = prompt_token_count([{"role": "user", "content": None, "name": "a-very-long-participant-name"}])
    assert named > plain
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"city": "Paris"}'}}
    with_call = prompt_token_count([{"role": "assistant", "content": None, "tool_calls": [call]}])
    assert with_call >= plain + count_text_tokens('{"city": "Paris"}')


def test_tools_tool_choice_and_response_format_are_counted() -> None:
    messages = [{"role": "user", "content": "weather?"}]
    bare = prompt_token_count(messages)
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    with_tools = prompt_token_count(messages, {"tools": [tool]})
    assert with_tools >= bare + TOOL_PROMPT_TOKENS + count_text_tokens("get_weather")
    with_choice = prompt_token_count(messages, {"tools": [tool], "tool_choice": {"type": "function"}})
    assert with_choice > with_tools
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    assert prompt_token_count(messages, {"response_format": schema}) > bare
    functions = prompt_token_count(messages, {"functions": [tool["function"]]})
    assert functions >= bare + TOOL_PROMPT_TOKENS


@pytest.mark.parametrize(
    ("width", "height"), [(100, 100), (512, 512), (1024, 1024), (2048, 768), (4000, 3000), (10, 3000)]
)
def test_an_image_counts_at_least_what_openai_and_anthropic_bill(width: int, height: int) -> None:
    for detail in ("high", "auto"):
        part = {"type": "image_url", "image_url": {"url": png_url(width, height), "detail": detail}}
        tokens = content_tokens([part])
        assert tokens >= openai_image_tokens(width, height)
        assert tokens >= anthropic_image_tokens(width, height)
        assert tokens <= UNKNOWN_IMAGE_TOKENS
        assert tokens >= litellm.token_counter(messages=[{"role": "user", "content": [part]}]) - 7


def test_image_of_unknown_size_counts_the_largest_bill() -> None:
    url = {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png", "detail": "high"}}
    assert content_tokens([url]) == UNKNOWN_IMAGE_TOKENS >= 1534
    low = {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png", "detail": "low"}}
    assert content_tokens([low]) == 85
    broken = {"type": "image_url", "image_url": "data:image/png;base64,bm90IGFuIGltYWdl"}
    assert content_tokens([broken]) == UNKNOWN_IMAGE_TOKENS
    anthropic = {"type": "image", "source": {"type": "url", "url": "https://example.invalid/cat.png"}}
    assert content_tokens([anthropic]) == UNKNOWN_IMAGE_TOKENS


def test_audio_counts_forty_tokens_a_second() -> None:
    part = {"type": "input_audio", "input_audio": {"data": wav(3.0), "format": "wav"}}
    assert 120 <= content_tokens([part]) <= 125  # by the header's duration, not by its 96 kB
    mp3 = {"type": "input_audio", "input_audio": {"data": base64.b64encode(bytes(10_000)).decode(), "format": "mp3"}}
    assert content_tokens([mp3]) >= 10_000 / 25  # 10 kB at 8 kbit/s is 10 s


def test_files_count_a_token_a_byte_and_an_image_a_page() -> None:
    pdf = b"%PDF-1.4 /Type /Pages /Kids [] /Type /Page /Type /Page hello"
    data = "data:application/pdf;base64," + base64.b64encode(pdf).decode()
    part = {"type": "file", "file": {"file_data": data, "filename": "report.pdf"}}
    assert content_tokens([part]) >= len(pdf) + 2 * 1600
    by_id = {"type": "file", "file": {"file_id": "file-abc"}}
    assert content_tokens([by_id], SETTINGS) == SETTINGS.unknown_file_tokens
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "some words"}}
    assert content_tokens([document]) == count_text_tokens("some words")


def test_anthropic_blocks_count_as_sent() -> None:
    parts: list[dict[str, Any]] = [
        {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"query": "a long query text"}},
        {"type": "tool_result", "tool_use_id": "t1", "content": "the result"},
        {"type": "thinking", "thinking": "let me think", "signature": "sig"},
    ]
    assert content_tokens(parts) >= count_text_tokens("a long query text the result let me think")


def test_output_tokens_take_the_larger_cap_and_every_choice() -> None:
    assert requested_output_tokens({}) is None
    assert requested_output_tokens({"max_tokens": 10}) == 10
    assert requested_output_tokens({"max_completion_tokens": 500, "max_tokens": 10}) == 500
    assert requested_output_tokens({"max_completion_tokens": 5, "max_tokens": 10}) == 10
    assert requested_output_tokens({"max_completion_tokens": 5}) == 5
    with pytest.raises(ValueError, match="max_tokens"):
        requested_output_tokens({"max_tokens": 0, "max_completion_tokens": "x"})
    with pytest.raises(TypeError, match="max_completion_tokens"):
        requested_output_tokens({"max_tokens": 3, "max_completion_tokens": True})
    assert completions({}) == 1
    assert completions({"n": 3}) == 3


def test_a_pydantic_response_format_counts_its_schema() -> None:
    class Answer(BaseModel):
        verdict: str
        confidence_of_the_reviewer: float

    messages = [{"role": "user", "content": "judge"}]
    with_schema = prompt_token_count(messages, {"response_format": Answer})
    assert with_schema >= prompt_token_count(messages) + count_text_tokens("confidence_of_the_reviewer")


SPECIAL = ("<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(max_size=40) | st.sampled_from(SPECIAL) | st.sampled_from(["\ud800", " \n\t", "é日本"]), max_size=6
    )
)
def test_text_counts_as_tiktoken_encodes_it_with_special_tokens_as_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert count_text_tokens(text) == len(default_encoding.encoding.encode(text, disallowed_special=()))


def test_a_text_met_again_counts_the_same_and_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens_module, "_MAX_COUNTED", 8)
    monkeypatch.setattr(tokens_module, "_COUNTED", {})
    texts = [f"message number {i} " * (i + 1) for i in range(20)]
    first = [count_text_tokens(text) for text in texts]
    again = [count_text_tokens("".join(list(text))) for text in texts]  # equal texts, other objects
    assert first == again == [len(default_encoding.encoding.encode(t, disallowed_special=())) for t in texts]
    assert 0 < len(tokens_module._COUNTED) <= 8
