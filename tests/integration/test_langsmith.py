"""What LangSmith's SDK does with costrouter's span, with the real ``langsmith`` package.

LangSmith runs from its own environment, ``.langsmith-venv`` (``.ci/run`` installs it: the lock's
costrouter plus ``langsmith``), never mixed with ours; this process holds the OTLP receiver and the
provider double, and :mod:`tests.integration.langsmith_probe` makes the call there.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from costrouter.testing import OtlpReceiver, ProviderDouble, ReceivedSpan, Reply

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".langsmith-venv" / "bin" / "python"
PROBE = Path(__file__).with_name("langsmith_probe.py")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as made:
        yield made


def run_probe(
    receiver: OtlpReceiver, provider: ProviderDouble, mode: str
) -> tuple[dict[str, Any], ReceivedSpan, ReceivedSpan]:
    """The ids the call saw as current, costrouter's call span and the run around it, as exported."""
    if not PYTHON.exists():
        pytest.fail(f"{PYTHON} is missing: run .ci/run (or the LangSmith lines in it) to install LangSmith")
    provider.set_default("fast-model", Reply(completion_tokens=3))
    command = [str(PYTHON), str(PROBE), receiver.endpoint, provider.base_url, mode]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    spans = {span.name: span for span in receiver.wait_for_spans(2)}
    return seen, spans["router.completion/fast"], spans["answer"]


def test_traceable_with_otel_exports_its_run_under_other_ids_than_the_context_held(
    receiver: OtlpReceiver, provider: ProviderDouble
) -> None:
    # langsmith 0.15: the context holds a placeholder span derived from the run's UUIDs; the run is
    # exported under fresh random ids, so costrouter's span (rightly parented to the placeholder)
    # lands in another trace, under a parent that is never exported.
    seen, call, run = run_probe(receiver, provider, "traceable-otel")

    assert (call.trace_id, call.parent_span_id) == (seen["trace_id"], seen["span_id"])
    assert run.trace_id != call.trace_id
    assert run.span_id != seen["span_id"]
    assert run.attributes["langsmith.span.kind"] == "chain"


def test_an_otel_span_around_the_call_is_its_parent_in_one_trace(
    receiver: OtlpReceiver, provider: ProviderDouble
) -> None:
    seen, call, run = run_probe(receiver, provider, "otel-span")

    assert (run.trace_id, run.span_id) == (seen["trace_id"], seen["span_id"])
    assert (call.trace_id, call.parent_span_id) == (run.trace_id, run.span_id)
    assert run.attributes["langsmith.span.kind"] == "chain"
