"""Issue 25, finding 4: one answer must not poison a deployment's learned ratio fleet-wide, forever.

The red team's repro: one response reporting ``prompt_tokens: 50,000,000`` for a 15-token
prompt raised the learned ratio so that every later call needed a $65 hold: fresh $1 sessions
were refused in that router and in new routers on the same Redis, with no way back. Here the
provider double answers that to a real router on a real Redis; then ``costrouter budget ratios``
shows and resets what was learned.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from costrouter import CostRouter
from costrouter.cli.commands import app
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from tests.routing import router_config

PROMPT = [{"role": "user", "content": "fifteen tokens or so of an ordinary little prompt"}]
SESSION_LIMIT_USD = 1.0


@pytest.fixture
def capture() -> Iterator[TelemetryCapture]:
    telemetry = TelemetryCapture()
    yield telemetry
    telemetry.shutdown()


_PATIENCE_SECONDS = 60.0  # a bound for a loaded machine, not a measured time


def _policy(redis_url: str, prefix: str) -> dict[str, Any]:
    return {
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix},
        "budgets": [{"scope": "session", "limit_usd": SESSION_LIMIT_USD, "window": "total"}],
    }


def _router(provider: ProviderDouble, capture: TelemetryCapture, policy: dict[str, Any]) -> CostRouter:
    return CostRouter(
        router_config(provider.base_url, num_retries=0), budgets=policy, tracer_provider=capture.tracer_provider
    )


def _last_hold_units(capture: TelemetryCapture) -> int:
    attributes = dict(capture.call_spans()[-1].attributes or {})
    return usd_to_units(float(attributes[sc.BUDGET_ESTIMATE_USD]))  # type: ignore[arg-type]


@pytest.mark.parametrize("reported", [50_000_000, 5_000_000], ids=["past-the-usage-bound", "within-the-usage-bound"])
def test_one_inflated_prompt_count_refuses_no_later_call_here_or_in_a_fresh_router(
    provider: ProviderDouble, capture: TelemetryCapture, redis_url: str, reported: int
) -> None:
    provider.reset()
    provider.script("fast-model", Reply(completion_tokens=5, prompt_tokens=reported))
    provider.set_default("fast-model", Reply(completion_tokens=5))
    policy = _policy(redis_url, f"r{uuid.uuid4().hex[:10]}")
    poisoned = _router(provider, capture, policy)
    fresh: CostRouter | None = None
    try:
        poisoned.route_completion("fast", PROMPT, max_tokens=5, session_id="attacker")
        clean_hold = _last_hold_units(capture)
        for index in range(3):  # fresh $1 sessions, in the same router
            poisoned.route_completion("fast", PROMPT, max_tokens=5, session_id=f"same-{index}")
            assert _last_hold_units(capture) <= 4 * clean_hold
        assert poisoned.store_worker is not None
        assert poisoned.store_worker.wait(_PATIENCE_SECONDS)  # what it learned has reached Redis
        fresh = _router(provider, capture, policy)  # a new process on the same Redis
        for index in range(3):
            fresh.route_completion("fast", PROMPT, max_tokens=5, session_id=f"fresh-{index}")
            assert _last_hold_units(capture) <= 4 * clean_hold
        assert fresh.store_worker is not None
        assert fresh.store_worker.wait(_PATIENCE_SECONDS)  # its own lessons have landed too
        learned = fresh.budgets.token_ratios() if fresh.budgets is not None else {}
        assert all(ratio.ratio <= 8.0 for ratio in learned.values())
    finally:
        poisoned.shutdown()
        if fresh is not None:
            fresh.shutdown()


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("COSTROUTER_BUDGETS", "COSTROUTER_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_budget_ratios_shows_and_resets_what_the_routers_learned(
    provider: ProviderDouble, capture: TelemetryCapture, redis_url: str, runner: CliRunner, tmp_path: Path
) -> None:
    provider.reset()
    provider.set_prompt_token_factor("fast-model", 3.0)
    policy = _policy(redis_url, f"r{uuid.uuid4().hex[:10]}")
    path = tmp_path / "budgets.yaml"
    path.write_text(yaml.safe_dump(policy))
    router = _router(provider, capture, policy)
    try:
        router.route_completion("fast", PROMPT, max_tokens=5, session_id="a")
        router.route_completion("fast", PROMPT, max_tokens=5, session_id="b")
    finally:
        router.shutdown()
        provider.set_prompt_token_factor("fast-model", None)

    shown = runner.invoke(app, ["budget", "ratios", "--budgets", str(path)])
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.stdout.splitlines() if "fast-primary" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == "fast-primary"
    assert 1.0 < float(cells[1]) <= 4.0  # a 3x tokenizer (less the chat overheads), within one bounded step
    assert cells[2] == "1"  # observations sent (an equal one waits for the refresh period)
    assert re.fullmatch(r"\d+(\.\d)?[smhd]", cells[3])  # its age

    missing = runner.invoke(app, ["budget", "ratios", "--budgets", str(path), "--reset", "no-such-deployment"])
    assert missing.exit_code == 1
    assert "no learned ratio for deployment 'no-such-deployment'" in missing.output
    both = runner.invoke(app, ["budget", "ratios", "--budgets", str(path), "--reset", "x", "--reset-all"])
    assert both.exit_code == 2

    reset = runner.invoke(app, ["budget", "ratios", "--budgets", str(path), "--reset", "fast-primary"])
    assert reset.exit_code == 0, reset.output
    assert "forgot the learned ratio of: fast-primary" in reset.stdout
    after = runner.invoke(app, ["budget", "ratios", "--budgets", str(path)])
    assert "fast-primary" not in after.stdout

    fresh = _router(provider, capture, policy)  # the reset reaches a router on the same Redis
    try:
        assert fresh.budgets is not None
        assert fresh.budgets.token_ratios() == {}
        fresh.route_completion("fast", PROMPT, max_tokens=5, session_id="c")
        assert fresh.store_worker is not None
        assert fresh.store_worker.wait(_PATIENCE_SECONDS)  # the call's lesson goes to Redis off its path
        assert fresh.budgets.reset_token_ratios() == ["fast-primary"]
    finally:
        fresh.shutdown()
    cleared = runner.invoke(app, ["budget", "ratios", "--budgets", str(path), "--reset-all"])
    assert "forgot the learned ratio of: none" in cleared.stdout


def test_budget_ratios_refuses_the_memory_store(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(yaml.safe_dump({"budgets": [{"scope": "session", "limit_usd": 1}]}))
    result = runner.invoke(app, ["budget", "ratios", "--budgets", str(path)])
    assert result.exit_code == 4
