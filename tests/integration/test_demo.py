"""`costrouter demo` end to end, as a user runs it: a subprocess, its table, its span file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from costrouter.cli.commands import app
from costrouter.otel import semconv as sc
from costrouter.report.summary import load_span_records

ROOT = Path(__file__).resolve().parents[2]


def section(output: str, heading: str) -> str:
    """The lines of the table under ``heading`` (up to the next blank line)."""
    start = output.index(f"\n{heading}\n") + len(heading) + 2
    end = output.find("\n\n", start)
    return output[start : end if end != -1 else len(output)].rstrip("\n")


def table_rows(table: str) -> dict[str, list[str]]:
    """``{first cell: cells}`` of an ASCII table's body and footer rows."""
    rows = {}
    for line in table.splitlines():
        if line.startswith("|") and not line.startswith("|-"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def test_demo_end_to_end(tmp_path: Path) -> None:
    spans = tmp_path / "demo-spans.jsonl"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("COSTROUTER_", "OTEL_"))} | {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True"
    }
    done = subprocess.run(
        [sys.executable, "-m", "costrouter", "demo", "--spans-file", str(spans)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "\x1b[" not in out  # a pipe gets no colours and no progress bar

    # The story the workload tells, as the recorded spans show it.
    assert "rejected by a budget 1 (BudgetExceededError caught by the app: 1)" in out
    attempts = re.search(r"provider attempts (\d+): (\d+) failed, retries (\d+), fallbacks (\d+)", out)
    assert attempts is not None, out
    total_attempts, failed, retries, fallbacks = (int(value) for value in attempts.groups())
    assert failed >= 6  # the flaky primary and the fast outage
    assert retries >= 5
    assert fallbacks == 1
    assert "warned" in out  # the batch tag's warn-only budget
    assert "user-daily for user carol reached 50%" in out

    by_group = table_rows(section(out, "Cost by group"))
    assert set(by_group) >= {"group", "fast", "capable", "local", "total"}
    header = by_group["group"]
    column = {name: index for index, name in enumerate(header)}
    assert by_group["capable"][column["rejected"]] == "1"
    assert by_group["local"][column["fallbacks"]] == "1"
    assert int(by_group["fast"][column["retries"]]) == retries
    assert int(by_group["total"][column["attempts"]]) == total_attempts
    by_session = table_rows(section(out, "Cost by session and user"))
    assert by_session["demo-essay-01"][1] == "dave"
    assert by_session["demo-essay-01"][column["rejected"] + 1] == "1"
    assert {"demo-support-01", "demo-research-01", "demo-batch-01"} <= set(by_session)
    assert float(by_group["embed"][column["cost USD"]].lstrip("$")) > 0  # the retrieval step: its own kind, priced
    assert by_session["demo-rag-01"][1] == "erin"

    # The span file holds exactly the spans the demo reported.
    match = re.search(r"spans: (\d+) spans \((\d+) routed calls, (\d+) attempts\) written to (.+)", out)
    assert match is not None, out
    assert Path(match.group(4)) == spans.resolve()
    records = load_span_records(str(spans))
    assert len(records) == int(match.group(1))
    calls = [record for record in records if record["name"].startswith(sc.CALL_SPAN_NAME_PREFIXES)]
    assert len(calls) == int(match.group(2)) == int(by_group["total"][column["calls"]])
    _assert_attempts_written(records, calls, total_attempts)
    rejected = [record for record in calls if record["attributes"].get(sc.BUDGET_OUTCOME) == "rejected"]
    assert [record["attributes"][sc.SESSION_ID] for record in rejected] == ["demo-essay-01"]
    assert all(record["attributes"].get("router.metadata.app") == "costrouter-demo" for record in calls)
    _assert_rag_steps_priced(calls)

    # `costrouter report` on that file prints the same tables, to the digit.
    report = CliRunner().invoke(app, ["report", str(spans), "--by", "group,session+user"])
    assert report.exit_code == 0, report.output
    assert section(report.stdout, "Cost by group") == section(out, "Cost by group")
    assert section(report.stdout, "Cost by session and user") == section(out, "Cost by session and user")
    document = json.loads(CliRunner().invoke(app, ["report", str(spans), "-f", "json", "--by", "group"]).stdout)
    assert document["total"]["rejected"] == 1
    assert document["total"]["fallbacks"] == fallbacks


def _assert_attempts_written(records: list[Any], calls: list[Any], total_attempts: int) -> None:
    """An attempt is a child span, or rides on its call's span when it was the call's one, successful attempt."""
    children = sum(record["name"].startswith(f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/") for record in records)
    carried = sum(sc.ATTEMPT_INDEX in record["attributes"] for record in calls)
    assert children > 0
    assert carried > 0
    assert children + carried == total_attempts


def _assert_rag_steps_priced(calls: list[Any]) -> None:
    """The retrieval session: embed, rerank and answer, each its own kind of span, each priced."""
    rag = [record for record in calls if record["attributes"].get(sc.SESSION_ID) == "demo-rag-01"]
    assert {record["name"].split("/")[0] for record in rag} == {"router.embedding", "router.rerank", "router.responses"}
    assert len(rag) == 3
    assert all(record["attributes"][sc.LLM_USAGE_COST_USD] > 0 for record in rag)
