"""Run by tests/integration/test_langsmith.py in ``.langsmith-venv``: LangSmith's SDK around a routed call.

Usage: .langsmith-venv/bin/python tests/integration/langsmith_probe.py OTLP_ENDPOINT BASE_URL MODE

The application's OpenTelemetry provider exports every span to ``OTLP_ENDPOINT`` (the test's
receiver); one routed call goes to the provider double at ``BASE_URL``, wrapped, by ``MODE``:

- ``traceable-otel``: in a LangSmith ``@traceable`` function, the SDK exporting through
  OpenTelemetry (``LANGSMITH_OTEL_ENABLED``/``LANGSMITH_OTEL_ONLY``: nothing goes to LangSmith's API);
- ``otel-span``: in an OpenTelemetry span the application opens itself, typed as a LangSmith chain.

Prints one JSON line: the trace and span ids the call saw as its current span.
"""

from __future__ import annotations

import json
import os
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from costrouter import CostRouter

MESSAGES = [{"role": "user", "content": "hi"}]


def main(endpoint: str, base_url: str, mode: str) -> None:
    os.environ.update({"LANGSMITH_TRACING": "true", "LANGSMITH_API_KEY": "probe", "LANGSMITH_OTEL_ENABLED": "true"})
    os.environ["LANGSMITH_OTEL_ONLY"] = "true"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    trace.set_tracer_provider(provider)
    from langsmith import traceable  # noqa: PLC0415  (reads the variables above when imported)
    from langsmith.run_trees import get_cached_client  # noqa: PLC0415

    deployment = {"model": "openai/fast-model", "api_base": base_url, "api_key": "probe"}
    prices = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    router = CostRouter({"groups": {"fast": {"deployments": [{**deployment, **prices}]}}})
    seen: dict[str, str] = {}

    def call() -> None:
        context = trace.get_current_span().get_span_context()
        seen.update(trace_id=format(context.trace_id, "032x"), span_id=format(context.span_id, "016x"))
        router.route_completion("fast", MESSAGES, max_tokens=5)

    if mode == "traceable-otel":
        traceable(name="answer", run_type="chain")(call)()
        get_cached_client().flush()
    else:
        with trace.get_tracer("app").start_as_current_span("answer", attributes={"langsmith.span.kind": "chain"}):
            call()
    router.shutdown()
    provider.force_flush()
    print(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:4])
