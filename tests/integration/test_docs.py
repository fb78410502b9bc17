"""Every code sample of the README and docs/ runs (Python) or loads (YAML, JSON), so none goes stale.

Python samples run each in a fresh interpreter from the repository root, with the example
configs pointed at a provider double, as written (no top-level ``await``: async samples use
``asyncio.run``); YAML samples load as a
model-group file or a budget policy; JSON samples parse. Shell sessions (``console``, ``bash``)
and program output (``text``) are shown, not run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from costrouter.budget import BudgetPolicy
from costrouter.config.groups import parse_router_config
from costrouter.testing import ProviderDouble

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SHOWN_ONLY = {"console", "bash", "text", ""}
RUNNER = """
import sys
exec(compile(sys.stdin.read(), "<sample>", "exec"), {"__name__": "__main__"})
"""
"""Runs a sample as written: a plain script, so an async sample must run its coroutines itself."""


def samples(language: str) -> Iterator[object]:
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            if match.group(1) == language:
                line = text[: match.start()].count("\n") + 1
                yield pytest.param(match.group(2), id=f"{page.relative_to(ROOT)}:{line}")


def test_every_sample_has_a_known_language() -> None:
    languages = {match.group(1) for page in PAGES for match in FENCE.finditer(page.read_text())}
    assert languages <= {"python", "yaml", "json"} | SHOWN_ONLY


@pytest.fixture(scope="module")
def demo_provider() -> Iterator[ProviderDouble]:
    with ProviderDouble() as double:
        yield double


@pytest.mark.parametrize("source", list(samples("python")))
def test_python_samples_run(source: str, demo_provider: ProviderDouble, tmp_path: Path) -> None:
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("COSTROUTER_", "OTEL_"))},
        "COSTROUTER_DEMO_API_BASE": demo_provider.base_url,
        "COSTROUTER_DEMO_API_KEY": "docs-sample",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("source", list(samples("yaml")))
def test_yaml_samples_load(source: str) -> None:
    data = yaml.safe_load(source)
    assert isinstance(data, dict)
    if "groups" in data or "model_list" in data:
        parse_router_config(data, "<sample>")
    elif set(BudgetPolicy.model_fields) & set(data):
        BudgetPolicy.model_validate(data)
    else:
        pytest.fail(f"a YAML sample that is neither a model-group file nor a budget policy: {sorted(data)}")


@pytest.mark.parametrize("source", list(samples("json")))
def test_json_samples_parse(source: str) -> None:
    json.loads(source)
