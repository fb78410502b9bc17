"""Issue 25, finding 12: ids with ANSI/OSC escapes reached the operator's terminal raw.

``costrouter report`` (table), ``budget top`` and ``budget status`` run as ``python -m costrouter``
on a real pseudo-terminal (rich then writes for a terminal: colours, boxes, hyperlinks); the bytes
the terminal receives are checked. The hostile ids reach the span file and Redis the way an older
version, another writer or a forged file would put them there (costrouter now refuses them on entry).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costrouter.budget import RedisBudgetStore, load_policy
from costrouter.cli.commands import app
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.report.summary import neutralise_cell
from costrouter.report.terminal import printable

ROOT = Path(__file__).resolve().parents[2]

TITLE = "t\x1b]0;pwned-title\x07"
CLIPBOARD = "c\x1b]52;c;Y3VybCBldmlsfHNo\x07"
CLEAR = "x\x1b[2J\x1b[H"
MARKUP = "[link=https://evil.example]m[/link][blink]"
BIDI = "b\u202egnp.exe"
HOSTILE = (TITLE, CLIPBOARD, CLEAR, MARKUP, BIDI)
RAW = (b"\x1b]0;pwned", b"\x1b]52;", b"\x1b[2J", b"\x1b]8;", "\u202e".encode())
"""What must never reach the terminal: title, clipboard, clear screen, a hyperlink (markup), bidi override."""


def _in_terminal(*args: str, timeout: float = 120.0) -> bytes:
    """Run ``python -m costrouter ARGS`` on a pseudo-terminal; every byte it wrote there."""
    master, slave = os.openpty()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COSTROUTER_")},
        "COLUMNS": "400",
        "TERM": "xterm-256color",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    environment.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "costrouter", *args], stdin=slave, stdout=slave, stderr=slave, env=environment, cwd=ROOT
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    # A selector, not select.select: late in a long suite the terminal's descriptor can pass 1024.
    selector = selectors.DefaultSelector()
    selector.register(master, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            ready = selector.select(0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        selector.close()
        os.close(master)
        process.wait(timeout=30)
    return b"".join(chunks)


def _assert_safe(output: bytes, ids: tuple[str, ...]) -> None:
    assert b"\x1b[" in output or b"\xe2\x94" in output  # rich did write for a terminal (styles or box lines)
    for raw in RAW:
        assert raw not in output, (raw, output[-2000:])
    text = output.decode("utf-8", "replace")
    for hostile in ids:
        assert printable(hostile) in text, (printable(hostile), text[-2000:])


def _span(number: int, session: str) -> dict[str, object]:
    return {
        "name": f"{sc.SPAN_NAME_PREFIX}/fast",
        "trace_id": f"{number:032x}",
        "span_id": f"{number:016x}",
        "parent_span_id": None,
        "kind": "CLIENT",
        "start_time_ns": 0,
        "end_time_ns": 5_000_000,
        "status": {"code": "UNSET", "description": None},
        "attributes": {
            sc.ROUTER_MODEL_GROUP: "fast",
            sc.ROUTER_SERVED_GROUP: "fast",
            sc.ROUTER_DEPLOYMENT_ID: "fast-primary",
            sc.SESSION_ID: session,
            sc.USER_ID: session,
            sc.LLM_USAGE_COST_USD: 0.001 * number,
            sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
        },
        "events": [],
        "resource": {},
        "scope": "costrouter",
    }


@pytest.fixture
def hostile_span_file(tmp_path: Path) -> Path:
    path = tmp_path / "spans.jsonl"
    path.write_text("".join(json.dumps(_span(number, session)) + "\n" for number, session in enumerate(HOSTILE, 1)))
    return path


def test_report_table_escapes_every_id_on_a_real_terminal(hostile_span_file: Path) -> None:
    output = _in_terminal("report", str(hostile_span_file), "--by", "session,user")
    _assert_safe(output, HOSTILE)


def test_report_csv_escapes_control_characters_and_keeps_its_formula_guard(hostile_span_file: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(hostile_span_file), "--format", "csv", "--by", "session"])
    assert result.exit_code == 0, result.output
    for raw in ("\x1b", "\u202e"):
        assert raw not in result.stdout
    assert neutralise_cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"


@pytest.fixture
def hostile_budgets(tmp_path: Path, redis_url: str) -> Path:
    prefix = f"tty{uuid.uuid4().hex[:10]}"
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        f"store:\n  backend: redis\n  redis_url: {redis_url}\n  key_prefix: {prefix}\n"
        "budgets:\n  - scope: session\n    limit_usd: 1\n"
    )
    policy = load_policy(budgets)
    with RedisBudgetStore(policy.store) as store:
        for number, session in enumerate(HOSTILE, 1):
            ref = policy.budgets[0].ref(session)
            store.reserve(ref, f"call-{number}", usd_to_units(0.01 * number), enforce=True)
            store.settle(ref, f"call-{number}", usd_to_units(0.01 * number))
    return budgets


def test_budget_top_escapes_every_id_on_a_real_terminal(hostile_budgets: Path) -> None:
    output = _in_terminal("budget", "top", "session", "--budgets", str(hostile_budgets))
    _assert_safe(output, HOSTILE)


@pytest.mark.parametrize("session", [TITLE, CLIPBOARD, MARKUP])
def test_budget_status_escapes_the_id_on_a_real_terminal(hostile_budgets: Path, session: str) -> None:
    output = _in_terminal("budget", "status", "session", session, "--budgets", str(hostile_budgets))
    _assert_safe(output, (session,))
    assert b"$0.0" in output  # the hostile session's own spend is shown


def test_printable_leaves_ordinary_ids_alone() -> None:
    for ordinary in ("s-1", "user 42", "会话-1", "user-😀", "a\\x1b-literal"):
        assert printable(ordinary) == ordinary
    assert printable("a\x1bb\u200bc\u2028d") == "a\\x1bb\\u200bc\\u2028d"
