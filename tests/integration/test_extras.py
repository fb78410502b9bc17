"""A slim install: a call that needs a package of a missing extra fails before its hold and request.

Each case runs a worker process (:mod:`tests.workers.missing_extra`) whose ``sys.meta_path``
refuses the extra's modules, as an install without the extra would; the router there holds a
real session budget on the test's Redis and calls the provider double over loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from costrouter.routing.needs import MCP_LAZY_SINCE, litellm_version
from costrouter.testing import ProviderDouble, Reply

TOOL_CALLS = ("chat-tools", "achat-tools", "response-tools", "messages-tools")


def run_worker(provider: ProviderDouble, redis_url: str, calls: tuple[str, ...], blocked: str) -> dict[str, Any]:
    provider.reset()
    provider.set_default("resp-model", Reply(completion_tokens=5))
    provider.set_default("claude-x", Reply(completion_tokens=5))
    prefix = f"t{uuid.uuid4().hex[:10]}"
    command = [sys.executable, "-m", "tests.workers.missing_extra", provider.base_url, redis_url, prefix]
    arguments = [*command, ",".join(calls), blocked]
    result = subprocess.run(arguments, check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def assert_refused_before_anything(call: dict[str, Any], extra: str, modules: str) -> None:
    assert call["error"]["type"] == "MissingExtraError"
    assert call["error"]["extra"] == extra
    assert f"pip install 'costrouter-litellm[{extra}]'" in call["error"]["message"]
    assert modules in call["error"]["message"]
    assert call["spent_units"] == call["held_units"] == 0
    assert call["call_spans"] == 0


@pytest.mark.parametrize(
    ("blocked", "named"),
    [
        pytest.param("fastapi,soundfile,backoff", "fastapi, soundfile, backoff", id="none-of-the-three"),
        pytest.param("backoff", "needs backoff,", id="backoff-alone"),
    ],
)
def test_an_anthropic_stream_without_the_anthropic_extra_is_refused_before_its_hold(
    provider: ProviderDouble, redis_url: str, blocked: str, named: str
) -> None:
    # LiteLLM (1.106 to 1.110 at least) imports its proxy's logging for this stream: fastapi,
    # soundfile and backoff; without them it would fail mid-call, after the hold and the request.
    result = run_worker(provider, redis_url, ("messages-stream", "amessages-stream"), blocked)

    for call in result["calls"].values():
        assert_refused_before_anything(call, "anthropic", named)
    assert provider.requests == []
    assert result["imported_blocked"] == []


def test_a_call_with_tools_needs_mcp_only_before_litellm_1_108_4(provider: ProviderDouble, redis_url: str) -> None:
    result = run_worker(provider, redis_url, TOOL_CALLS, "mcp")

    version = litellm_version()
    assert version is not None
    if version < MCP_LAZY_SINCE:  # LiteLLM's logging imports mcp.types for any call with tools
        for call in result["calls"].values():
            assert_refused_before_anything(call, "tools", "needs mcp,")
        assert provider.requests == []
    else:  # 1.108.4 on: the calls go through without mcp, and nothing imported it
        for call in result["calls"].values():
            assert call["error"] is None
            assert call["spent_units"] > 0
            assert call["held_units"] == 0
            assert call["call_spans"] == 1
        assert len(provider.requests) == len(TOOL_CALLS)
    assert result["imported_blocked"] == []
