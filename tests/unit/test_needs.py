"""Which extras a call needs, on which LiteLLM (the packages themselves: tests/integration/test_extras.py)."""

from __future__ import annotations

import pytest
from packaging.version import Version

from costrouter.routing.needs import ANTHROPIC, MCP_LAZY_SINCE, TOOLS, extras_needed

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
OLD, NEW = Version("1.106.12"), Version("1.110.2")


@pytest.mark.parametrize(
    ("operation", "request_", "litellm", "needed"),
    [
        pytest.param("completion", {"tools": [TOOL]}, OLD, (TOOLS,), id="tools-on-1.106"),
        pytest.param("completion", {"tools": [TOOL]}, Version("1.108.3"), (TOOLS,), id="tools-on-1.108.3"),
        pytest.param("completion", {"tools": [TOOL]}, MCP_LAZY_SINCE, (), id="tools-on-1.108.4"),
        pytest.param("completion", {"tools": [TOOL]}, NEW, (), id="tools-on-1.110"),
        pytest.param("completion", {"tools": [TOOL]}, None, (TOOLS,), id="tools-on-an-unknown-litellm"),
        pytest.param("completion", {"tools": []}, OLD, (), id="no-tools"),
        pytest.param("completion", {"functions": [TOOL["function"]]}, OLD, (), id="functions-need-no-mcp"),
        pytest.param("completion", {"stream": True}, OLD, (), id="chat-stream"),
        pytest.param("messages", {}, NEW, (), id="messages"),
        pytest.param("messages", {"stream": True}, OLD, (ANTHROPIC,), id="messages-stream-on-1.106"),
        pytest.param("messages", {"stream": True}, NEW, (ANTHROPIC,), id="messages-stream-on-1.110"),
        pytest.param("messages", {"stream": True, "tools": [TOOL]}, OLD, (TOOLS, ANTHROPIC), id="both"),
    ],
)
def test_extras_needed(
    operation: str, request_: dict[str, object], litellm: Version | None, needed: tuple[object, ...]
) -> None:
    assert extras_needed(operation, request_, litellm) == needed
