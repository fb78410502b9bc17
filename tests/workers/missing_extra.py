"""A worker process: one routed call with some modules made unimportable, as on a slim install.

Usage: python -m tests.workers.missing_extra BASE_URL REDIS_URL KEY_PREFIX CALLS BLOCKED

``BLOCKED`` is a comma-separated list of top-level modules a ``sys.meta_path`` finder refuses
(as if their distributions were not installed); ``CALLS`` a comma-separated list of names of
:data:`CALLS`, made one after another, each in a session of its own name with a budget on Redis.
Prints one JSON line: per call, its error (type, extra, message) or none, its session's spent
and held micro-dollars and its call spans; and which blocked modules were imported after all.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from costrouter import CostRouter, CostRouterError
from costrouter.testing import TelemetryCapture
from tests.calltypes import calltypes_router, session_budget

MESSAGES = [{"role": "user", "content": "what is the weather?"}]
TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}
ANTHROPIC_TOOL = {"name": "weather", "input_schema": {"type": "object", "properties": {}}}


class Blocker(importlib.abc.MetaPathFinder):
    """Refuses the named top-level modules (and their submodules), as a missing distribution does."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)
        self.refused: list[str] = []

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname.split(".", 1)[0] in self.names:
            self.refused.append(fullname)
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


async def _drain_async(router: CostRouter, session: str) -> None:
    stream = await router.aroute_messages("claude", messages=MESSAGES, max_tokens=20, stream=True, session_id=session)
    async for _ in stream:
        pass


CALLS: dict[str, Callable[[CostRouter, str], Any]] = {
    "messages-stream": lambda r, s: list(
        r.route_messages("claude", messages=MESSAGES, max_tokens=20, stream=True, session_id=s)
    ),
    "amessages-stream": lambda r, s: asyncio.run(_drain_async(r, s)),
    "chat-tools": lambda r, s: r.route_completion("answer", MESSAGES, max_tokens=20, tools=[TOOL], session_id=s),
    "achat-tools": lambda r, s: asyncio.run(
        r.aroute_completion("answer", MESSAGES, max_tokens=20, tools=[TOOL], session_id=s)
    ),
    "response-tools": lambda r, s: r.route_response(
        "answer", input="what is the weather?", max_output_tokens=20, tools=[TOOL], session_id=s
    ),
    "messages-tools": lambda r, s: r.route_messages(
        "claude", messages=MESSAGES, max_tokens=20, tools=[ANTHROPIC_TOOL], session_id=s
    ),
}


def _call(router: CostRouter, capture: TelemetryCapture, name: str) -> dict[str, Any]:
    error: dict[str, Any] | None = None
    spans_before = len(capture.call_spans())
    try:
        CALLS[name](router, name)
    except CostRouterError as exc:
        error = {"type": type(exc).__name__, "extra": getattr(exc, "extra", None), "message": str(exc)}
    assert router.budgets is not None
    (status,) = router.budgets.status("session", name)
    return {
        "error": error,
        "spent_units": status.spent_units,
        "held_units": status.held_units,
        "call_spans": len(capture.call_spans()) - spans_before,
    }


def main(base_url: str, redis_url: str, prefix: str, calls: str, blocked: str) -> None:
    blocker = Blocker([name for name in blocked.split(",") if name])
    sys.meta_path.insert(0, blocker)
    capture = TelemetryCapture()
    # The per-call path (leases are the default): the books are read right after each call.
    store = {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix, "lease": {"enabled": False}}
    router = calltypes_router(base_url, capture, session_budget(1.0, store))
    results = {name: _call(router, capture, name) for name in calls.split(",")}
    router.shutdown()
    imported = sorted(name for name in blocker.names if name in sys.modules)
    print(json.dumps({"calls": results, "imported_blocked": imported}))


if __name__ == "__main__":
    main(*sys.argv[1:6])
