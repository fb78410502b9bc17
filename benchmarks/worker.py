"""A worker process: builds one variant in a fresh process, then runs the measurements it is sent.

Each measurement is a pair of windows: the bare Router (the variant switched off) and the
variant, back to back in this process.

``run.py`` starts workers through a ``forkserver`` context whose server has imported this
module (so LiteLLM is imported once, not once per variant); each worker is a fresh fork
of it in which nothing is configured yet, so no callback or instrumentor leaks between
variants.
"""

from __future__ import annotations

import asyncio
import gc
import os
import traceback
from multiprocessing.connection import Connection
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import load
import variants


def _window(runner: asyncio.Runner, target: variants.Target, request: dict[str, Any], enabled: bool) -> dict[str, Any]:
    mode, concurrency = request["mode"], request["concurrency"]
    warmup_s, window_s = request["warmup_s"], request["window_s"]
    extra = variants.request_extra(request["transport"])
    target.enable(enabled)
    gc.collect()
    spans_before = target.spans_exported()
    if mode == "async":
        afunction = target.acall if enabled else target.acall_bare

        async def acall(i: int) -> Any:
            return await afunction(i, extra)

        measurement = runner.run(load.run_async(acall, concurrency, warmup_s, window_s))
    elif mode == "sync":
        function = target.call if enabled else target.call_bare

        def call(i: int) -> Any:
            return function(i, extra)

        measurement = load.run_threads(call, concurrency, warmup_s, window_s)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    summary = load.summarize(measurement)
    summary["spans_per_call"] = (target.spans_exported() - spans_before) / max(1, len(measurement.calls))
    return summary


def _measure(runner: asyncio.Runner, target: variants.Target, request: dict[str, Any]) -> dict[str, Any]:
    """The bare Router and the variant, one window each, in the order asked."""
    order = (False, True) if request.get("bare_first", True) else (True, False)
    results = {enabled: _window(runner, target, request, enabled) for enabled in order}
    return {"bare": results[False], "on": results[True]}


def serve(conn: Connection, variant: str, base_url: str, redis_url: str | None) -> None:
    """Build ``variant``, answer ``"ready"``, then one summary per request until ``None``."""
    try:
        target = variants.build(variant, base_url, redis_url)
    except Exception:
        conn.send({"error": traceback.format_exc()})
        return
    conn.send("ready")
    with asyncio.Runner() as runner:
        while True:
            try:
                request = conn.recv()
            except EOFError:
                break
            if request is None:
                break
            try:
                conn.send(_measure(runner, target, request))
            except Exception:
                conn.send({"error": traceback.format_exc()})
        target.close()
