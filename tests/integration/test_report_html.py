"""`costrouter report --format html` opened in a real headless Chromium: it renders the numbers and the charts.

Run as a module to refresh the screenshot in the docs:
``uv run --locked python -m tests.integration.test_report_html``.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from costrouter.cli.commands import app
from costrouter.otel import semconv as sc
from costrouter.report.summary import format_usd

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "img" / "report-html.png"
NS = 1_000_000_000
T0 = 1_795_737_600 * NS  # 2026-11-27 00:00 UTC
GROUPS = {"fast": 0.0004, "capable": 0.004, "local": 0.00005}


def workload(path: Path, calls: int = 600) -> float:
    """A day of calls over three groups and 40 sessions; returns the total cost."""
    rng = random.Random(11)
    total = 0.0
    with path.open("w") as handle:
        for index in range(calls):
            group = rng.choices(list(GROUPS), weights=[6, 2, 3])[0]
            cost = round(GROUPS[group] * rng.uniform(0.5, 3.0), 9)
            total += cost
            start = T0 + int(index * 86_400 / calls * NS)
            span = f"{index:016x}"
            record: dict[str, Any] = {
                "name": f"router.completion/{group}",
                "trace_id": f"{index:032x}",
                "span_id": span,
                "parent_span_id": None,
                "start_time_ns": start,
                "end_time_ns": start + 400_000_000,
                "status": {"code": "UNSET"},
                "attributes": {
                    sc.ROUTER_MODEL_GROUP: group,
                    sc.ROUTER_DEPLOYMENT_ID: f"{group}-primary",
                    sc.SESSION_ID: f"sess-{rng.randint(1, 40):02d}",
                    sc.USER_ID: rng.choice(["alice", "bob", "carol"]),
                    sc.LLM_USAGE_COST_USD: cost,
                    sc.GEN_AI_USAGE_INPUT_TOKENS: rng.randint(50, 900),
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: rng.randint(20, 400),
                    sc.LLM_LATENCY_MS: rng.uniform(150, 1500),
                },
            }
            handle.write(json.dumps(record) + "\n")
        # One more call whose session id is markup: the page must show it, not run it.
        evil = json.dumps({**record, "span_id": "evil"}).replace('"sess-', '"<script>alert(1)</script>sess-')
        handle.write(evil + "\n")
    return total + record["attributes"][sc.LLM_USAGE_COST_USD]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed (.ci/run installs Debian's package)"
    return found


def render(page: Path, screenshot: Path) -> str:
    """Open ``page`` in headless Chromium: save a screenshot, return the DOM it built."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1500"]
    url = page.resolve().as_uri()
    subprocess.run(
        [chromium(), *flags, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120
    )
    dom = subprocess.run(
        [chromium(), *flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120
    )
    return dom.stdout


def build_page(directory: Path) -> tuple[Path, float]:
    spans = directory / "spans.jsonl"
    total = workload(spans)
    page = directory / "report.html"
    result = CliRunner().invoke(app, ["report", str(spans), "-f", "html", "-o", str(page), "--by", "group,user"])
    assert result.exit_code == 0, result.output
    return page, total


def test_the_html_report_renders_its_numbers_and_charts_in_chromium(tmp_path: Path) -> None:
    page, total = build_page(tmp_path)
    text = page.read_text()
    assert "<script" not in text.replace("&lt;script", "")  # the session id is escaped, the page has no script
    assert not re.search(r"""(src|href)=["']?https?:""", text)  # self-contained
    screenshot = tmp_path / "report.png"
    dom = render(page, screenshot)
    assert format_usd(total) in dom  # the total cost card (nine decimals when it has nano-dollars)
    assert "601" in dom  # routed calls
    assert dom.count("<rect") > 50  # bars of cost over time and of the top sessions
    assert 'id="cost-over-time"' in dom
    assert 'id="top-sessions"' in dom
    assert 'id="by-group"' in dom
    assert 'id="by-user"' in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    image = screenshot.read_bytes()
    assert image.startswith(b"\x89PNG")
    assert len(image) > 20_000  # a blank page of this size compresses to a few kB


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        built, _ = build_page(Path(work))
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        render(built, SCREENSHOT)
    sys.stdout.write(f"{SCREENSHOT}\n")
