"""How fast `costrouter report` reads a large span file, and how much memory it holds.

    uv run --locked python -m benchmarks.report_bench [--spans 1000000] [--sessions 80000] [--runs 3]
        [--format otlp|records] [--template SPAN_FILE]

Writes a span file of ``--spans`` spans (each routed call one call span and, on average, one
attempt span; some retries and fallbacks), over ``--sessions`` sessions, 50 users, 4 groups
and 3 tags, spread over 30 days. Then times the
report in a fresh process, as a user runs it (``--by group,session,tag,model``, csv to
/dev/null), and reads its peak resident memory. A run over the first tenth of the file shows
that memory does not grow with the number of spans; the whole file is read twice, by one
process (``--workers 1``) and by the default (one worker process per core). Each file is
reported ``--runs`` times (wall and CPU seconds: on a shared machine CPU time is what the
work costs; minimum and median). The child imports compiled bytecode, as an installed
package does: ``PYTHONDONTWRITEBYTECODE`` is dropped from its environment and one untimed
run on an empty file writes the caches first.
``--format otlp`` (the default) writes what the ``file`` exporter writes: OTLP JSON, one
``TracesData`` object of 512 spans (the BatchSpanProcessor's default batch) a line, the first
line checked against the exporter's own encoder; ``--format records`` one span record a line
(the format before OTLP JSON, which the report also reads). The report's outputs are the same
for both. ``--template`` copies the call spans of a span file the exporter wrote (the demo's:
86 attributes and about 6 KiB a span, against 16 attributes and 900 bytes here) with new ids,
sessions and times, to time a file with the bytes per span of users' files. Prints one JSON
line; ``benchmarks/results/report.json`` keeps the last run of each (``otlp_template``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from costrouter.otel.otlp_json import spans_to_otlp_json

GROUPS = ("fast", "capable", "local", "cheap")
TAGS = ("search", "chat", "batch")
T0 = 1_793_000_000 * 1_000_000_000
BATCH = 512
"""The BatchSpanProcessor's default largest batch: one exported batch is one line."""
_SPAN_KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
_SPAN_FLAGS = 256
"""SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK: the SDK's encoder says whether the parent was remote (never here)."""


def _call(index: int, rng: random.Random, sessions: int) -> tuple[dict[str, Any], int]:
    group = GROUPS[index % len(GROUPS)]
    start = T0 + rng.randrange(30 * 86_400) * 1_000_000_000
    attributes: dict[str, Any] = {
        "router.model_group": group,
        "router.served_model_group": group,
        "router.deployment_id": f"{group}-primary",
        "session.id": f"sess-{rng.randrange(sessions):06d}",
        "user.id": f"user-{rng.randrange(50):02d}",
        "router.tags": [TAGS[index % 3]],
        "gen_ai.request.model": f"openai/{group}-model",
        "gen_ai.response.model": f"{group}-model-2026",
        "gen_ai.usage.input_tokens": rng.randrange(20, 2000),
        "gen_ai.usage.output_tokens": rng.randrange(10, 800),
        "llm.usage.cost_usd": rng.uniform(0, 0.01),
        "llm.latency_ms": rng.uniform(100, 3000),
        "llm.cost.total": 0.0,
        "llm.token_count.total": 0,
        "openinference.span.kind": "LLM",
        "budget.outcome": "allowed",
    }
    record = {
        "name": f"router.completion/{group}",
        "trace_id": f"{index:032x}",
        "span_id": f"{index:016x}",
        "parent_span_id": None,
        "kind": "CLIENT",
        "start_time_ns": start,
        "end_time_ns": start + 500_000_000,
        "status": {"code": "UNSET", "description": None},
        "attributes": attributes,
        "events": [],
        "resource": {"service.name": "bench"},
        "scope": "costrouter",
    }
    return record, start


def span_records(spans: int, sessions: int) -> Iterator[dict[str, Any]]:
    """About half call spans, half attempt spans (each attempt before its call, as the SDK ends them)."""
    rng = random.Random(1)
    written = index = 0
    while written < spans:
        call, start = _call(index, rng, sessions)
        attempts = 1 if rng.random() < 0.9 else 2
        for attempt in range(min(attempts, spans - written - 1)):
            yield {
                "name": f"router.attempt/{call['attributes']['router.deployment_id']}",
                "trace_id": call["trace_id"],
                "span_id": f"{index:012x}{attempt:04x}",
                "parent_span_id": call["span_id"],
                "kind": "CLIENT",
                "start_time_ns": start,
                "end_time_ns": start + 400_000_000,
                "status": {"code": "UNSET", "description": None},
                "attributes": {
                    "router.attempt.index": attempt,
                    "router.attempt.kind": "first" if attempt == 0 else "retry",
                    "router.attempt.outcome": "success" if attempt == attempts - 1 else "failure",
                    "router.model_group": call["attributes"]["router.model_group"],
                    "router.deployment_id": call["attributes"]["router.deployment_id"],
                },
                "events": [],
                "resource": {"service.name": "bench"},
                "scope": "costrouter",
            }
            written += 1
        yield call
        written += 1
        index += 1


def _any_value(value: Any) -> dict[str, Any]:
    """An OTLP JSON ``AnyValue``, as protobuf's ``MessageToDict`` writes it (64-bit ints as strings)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    return {"arrayValue": {"values": [_any_value(item) for item in value]}}


def _key_values(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _any_value(value)} for key, value in attributes.items()]


def _otlp_span(record: dict[str, Any]) -> dict[str, Any]:
    """One span of a ``TracesData`` line, field for field what ``spans_to_otlp_json`` writes (status UNSET)."""
    span: dict[str, Any] = {"traceId": record["trace_id"], "spanId": record["span_id"]}
    if record["parent_span_id"]:
        span["parentSpanId"] = record["parent_span_id"]
    span.update(
        name=record["name"],
        kind=_SPAN_KINDS[record["kind"]],
        startTimeUnixNano=str(record["start_time_ns"]),
        endTimeUnixNano=str(record["end_time_ns"]),
        attributes=_key_values(record["attributes"]),
        status={},
        flags=_SPAN_FLAGS,
    )
    return span


def otlp_line(records: list[dict[str, Any]]) -> str:
    """One ``TracesData`` line (no newline) holding ``records``, all of one resource and scope."""
    data = {
        "resourceSpans": [
            {
                "resource": {"attributes": _key_values(records[0]["resource"])},
                "scopeSpans": [{"scope": {"name": records[0]["scope"]}, "spans": [_otlp_span(r) for r in records]}],
            }
        ]
    }
    return json.dumps(data, separators=(",", ":"))


def exporter_line(records: list[dict[str, Any]]) -> str:
    """What the ``file`` exporter itself writes for ``records`` (through the SDK's spans: slow)."""

    def context(trace_id: str, span_id: str) -> SpanContext:
        return SpanContext(int(trace_id, 16), int(span_id, 16), False, TraceFlags(TraceFlags.SAMPLED))

    spans = [
        ReadableSpan(
            name=record["name"],
            context=context(record["trace_id"], record["span_id"]),
            parent=context(record["trace_id"], record["parent_span_id"]) if record["parent_span_id"] else None,
            resource=Resource(record["resource"]),
            attributes={k: tuple(v) if isinstance(v, list) else v for k, v in record["attributes"].items()},
            kind=SpanKind[record["kind"]],
            start_time=record["start_time_ns"],
            end_time=record["end_time_ns"],
            status=Status(StatusCode.UNSET),
            instrumentation_scope=InstrumentationScope(record["scope"]),
        )
        for record in records
    ]
    return spans_to_otlp_json(spans)


def write_spans(path: Path, spans: int, sessions: int, file_format: str = "otlp") -> None:
    """Write the span file: ``otlp`` as the ``file`` exporter does (a batch of 512 a line), or ``records``.

    The ``otlp`` lines are built from the records directly (the SDK's own encoder would take
    minutes for a million spans); the first batch is checked against the exporter's encoder.
    """
    records = span_records(spans, sessions)
    with path.open("w") as handle:
        if file_format == "records":
            for record in records:
                handle.write(json.dumps(record) + "\n")
            return
        first = True
        while batch := list(islice(records, BATCH)):
            line = otlp_line(batch)
            if first and line != exporter_line(batch):
                raise AssertionError("the benchmark's OTLP JSON differs from the file exporter's")
            first = False
            handle.write(line + "\n")


_HOLES = {"traceId": "@@trace@@", "spanId": "@@span@@", "startTimeUnixNano": "@@start@@", "endTimeUnixNano": "@@end@@"}


def _call_templates(source: Path) -> tuple[str, list[str]]:
    """The opening of a line (the first call span's resource and scope), and each call span's text with holes."""
    opening = ""
    templates = []
    for line in source.read_text().splitlines():
        if not line.strip():
            continue
        for resource_spans in json.loads(line)["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    if not span["name"].startswith("router.completion/"):
                        continue
                    copy = {**span, **_HOLES}
                    copy.pop("parentSpanId", None)
                    for pair in copy["attributes"]:
                        if pair["key"] == "session.id":
                            pair["value"] = {"stringValue": "@@session@@"}
                    text = json.dumps(copy, separators=(",", ":")).replace("{", "{{").replace("}", "}}")
                    for name in ("trace", "span", "start", "end", "session"):
                        text = text.replace(f"@@{name}@@", "{" + name + "}")
                    templates.append(text)
                    if not opening:
                        resource = json.dumps(resource_spans.get("resource", {}), separators=(",", ":"))
                        scope = json.dumps(scope_spans.get("scope", {}), separators=(",", ":"))
                        opening = (
                            f'{{"resourceSpans":[{{"resource":{resource},"scopeSpans":[{{"scope":{scope},"spans":['
                        )
    if not templates:
        raise SystemExit(f"{source}: no router.completion span to copy")
    return opening, templates


def write_template_spans(path: Path, spans: int, sessions: int, source: Path) -> None:
    """Copies of the call spans of ``source`` (a file the exporter wrote), each with its own ids, session and time.

    Each copy carries every attribute the original did (86 on a chat call of costrouter 0.2),
    so the file has the bytes per span that users' files have; the first call span's resource
    and scope open each line of 512.
    """
    opening, templates = _call_templates(source)
    rng = random.Random(1)
    with path.open("w") as handle:
        for first in range(0, spans, BATCH):
            batch = []
            for index in range(first, min(first + BATCH, spans)):
                start = T0 + rng.randrange(30 * 86_400) * 1_000_000_000
                batch.append(
                    templates[index % len(templates)].format(
                        trace=f"{index:032x}",
                        span=f"{index:016x}",
                        start=start,
                        end=start + 500_000_000,
                        session=f"sess-{rng.randrange(sessions):06d}",
                    )
                )
            handle.write(opening + ",".join(batch) + "]}]}]}\n")


def _environment() -> dict[str, str]:
    environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (KiB), read from /proc; 0 once it is gone."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError):
        return total
    return total + sum(_tree_rss_kib(int(child)) for child in children)


def timed_report(path: Path, workers: int | None = None) -> dict[str, float]:
    """Run the report in a child process; its wall and CPU seconds, and peak RSS (MiB).

    ``peak_rss_mib`` is the largest of any one process (the kernel's count); ``peak_tree_rss_mib``
    the largest sum over the report and its worker processes, sampled every 20 ms.
    """
    command = [
        sys.executable,
        "-m",
        "costrouter",
        "report",
        str(path),
        "--by",
        "group,session,tag,model",
        "-f",
        "csv",
        "-o",
        os.devnull,
        *([] if workers is None else ["--workers", str(workers)]),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, env=_environment())
    tree = 0
    while child.poll() is None:
        tree = max(tree, _tree_rss_kib(child.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
        "peak_tree_rss_mib": round(tree / 1024, 1),
    }


def summarised(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Minimum and median wall and CPU seconds of several runs, the largest peak RSS, and the runs."""
    walls = [run["wall_s"] for run in runs]
    cpus = [run["cpu_s"] for run in runs]
    return {
        "wall_s_min": min(walls),
        "wall_s_median": round(statistics.median(walls), 2),
        "cpu_s_min": min(cpus),
        "cpu_s_median": round(statistics.median(cpus), 2),
        "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
        "peak_tree_rss_mib": max(run["peak_tree_rss_mib"] for run in runs),
        "runs": runs,
    }


def main() -> None:
    """Write the file, time the report twice (a tenth, then all), print and keep the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=80_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--format",
        choices=("otlp", "records"),
        default="otlp",
        help="otlp: what the file exporter writes (a TracesData object of 512 spans a line); records: a span a line",
    )
    parser.add_argument(
        "--template",
        type=Path,
        help="copy the call spans of this span file (written by the file exporter, e.g. by `costrouter demo` "
        "with COSTROUTER_EXPORTER=file) instead of the benchmark's own spans of 16 attributes",
    )
    arguments = parser.parse_args()
    name = arguments.format if arguments.template is None else "otlp_template"
    with tempfile.TemporaryDirectory() as directory:
        full = Path(directory) / "spans.jsonl"
        if arguments.template is None:
            write_spans(full, arguments.spans, arguments.sessions, arguments.format)
        else:
            write_template_spans(full, arguments.spans, arguments.sessions, arguments.template)
        tenth = Path(directory) / "tenth.jsonl"
        with full.open() as source, tenth.open("w") as target:
            lines = arguments.spans // (10 if name == "records" else 10 * BATCH)
            target.writelines(islice(source, max(lines, 1)))
        empty = Path(directory) / "empty.jsonl"
        empty.touch()
        timed_report(empty)  # writes the bytecode caches
        load_before = round(os.getloadavg()[0], 2)
        # RUSAGE_CHILDREN's peak RSS is a maximum over all children, so the smaller runs go first.
        small = summarised([timed_report(tenth) for _ in range(arguments.runs)])
        serial = summarised([timed_report(full, workers=1) for _ in range(arguments.runs)])
        large = summarised([timed_report(full) for _ in range(arguments.runs)])
        figures = {
            "format": name,
            "template": None if arguments.template is None else arguments.template.name,
            "spans": arguments.spans,
            "sessions": arguments.sessions,
            "file_mib": round(full.stat().st_size / 2**20, 1),
            "tenth_of_the_spans": small,
            "all_spans_one_process": serial,
            "all_spans": large,
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": round(os.getloadavg()[0], 2),
        }
    print(json.dumps(figures))
    results = Path(__file__).with_name("results").joinpath("report.json")
    kept = json.loads(results.read_text()) if results.exists() else {}
    kept = {kind: kept[kind] for kind in ("otlp", "records", "otlp_template") if kind in kept}  # one entry each
    kept[name] = figures
    results.write_text(json.dumps(kept, indent=2) + "\n")


if __name__ == "__main__":
    main()
