"""Secrets never leave: a canary value in every place a secret can be given, then a scan of
everything printed, logged, exported, raised and repr'd."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from costrouter import CostRouter
from costrouter.budget import RedisBudgetStore, load_policy
from costrouter.cli.commands import app
from costrouter.config.groups import load_router_config
from costrouter.config.redaction import is_secret_name, mask_mapping, mask_url
from costrouter.config.settings import Settings
from costrouter.errors import BudgetStoreError
from costrouter.testing import ProviderDouble, TelemetryCapture

CANARY = "canary-s3cr3t-7f1d"

ROUTER_YAML = f"""
groups:
  fast:
    deployments:
      - id: fast-primary
        model: openai/fast-model
        api_key: {CANARY}-key
        api_base: {{base}}
        input_cost_per_token: 0.000001
        output_cost_per_token: 0.000002
        litellm_params:
          aws_secret_access_key: {CANARY}-aws
          extra_headers: {{{{Authorization: Bearer {CANARY}-bearer}}}}
      - id: fast-backup
        model: openai/fast-backup-model
        api_key: os.environ/COSTROUTER_TEST_KEY
        api_base: http://user:{CANARY}-userinfo@127.0.0.1:1/v1
        priority: 1
"""

BUDGETS_YAML = f"""
store:
  backend: redis
  redis_url: redis://127.0.0.1:1/0?password={CANARY}-query
budgets:
  - scope: session
    limit_usd: 1
"""


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    for name in ("COSTROUTER_REDIS_URL", "COSTROUTER_CONFIG", "COSTROUTER_BUDGETS", "COSTROUTER_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COSTROUTER_TEST_KEY", f"{CANARY}-env")
    router = tmp_path / "router.yaml"
    router.write_text(ROUTER_YAML.format(base="http://127.0.0.1:1/v1"))
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS_YAML)
    return router, budgets


def test_validate_prints_no_secret_of_either_file(files: tuple[Path, Path]) -> None:
    router, budgets = files
    result = CliRunner().invoke(app, ["validate", str(router), str(budgets)])
    assert result.exit_code == 0, result.output
    assert CANARY not in result.output
    assert "password=***" in result.output
    assert "user:***@127.0.0.1:1" in result.output


def test_reprs_and_strs_of_every_config_object_mask_secrets(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    router, budgets = files
    config = load_router_config(router)
    policy = load_policy(budgets)
    store = RedisBudgetStore(policy.store)
    monkeypatch.setenv("COSTROUTER_REDIS_URL", f"redis://:{CANARY}-settings@127.0.0.1:1/0")
    settings = Settings()
    try:
        texts = [repr(config), str(config), repr(policy), str(policy), repr(store), repr(settings), str(settings)]
        for deployment in config.groups["fast"].deployments:
            texts += [repr(deployment), str(deployment)]
    finally:
        store.close()
    for text in texts:
        assert CANARY not in text, text
    assert "api_key='***'" in repr(config)
    assert "password=***" in repr(store)


def test_a_routed_call_and_a_failing_store_leak_nothing(
    files: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    router_path, budgets_path = files
    caplog.set_level(logging.DEBUG)
    capture = TelemetryCapture()
    try:
        with ProviderDouble() as provider:
            router_path.write_text(ROUTER_YAML.format(base=provider.base_url))
            router = CostRouter.from_files(
                router_path,
                budgets_path,
                tracer_provider=capture.tracer_provider,
                meter_provider=capture.meter_provider,
            )
            try:
                with pytest.raises(BudgetStoreError) as raised:
                    router.route_completion("fast", [{"role": "user", "content": "hi"}], session_id="s1")
            finally:
                router.shutdown()  # its lease resends stop here, not at the end of the suite
            messages = [str(raised.value), repr(raised.value), str(raised.value.__cause__)]
        exported: list[Any] = []
        for span in capture.spans():
            exported += [span.to_json(), str(dict(span.attributes or {}))]
        logged = [record.getMessage() for record in caplog.records]
    finally:
        capture.shutdown()
    assert exported
    for text in [*messages, *exported, *logged]:
        assert CANARY not in text, text


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://u:pw@h/0?password=pw&db=1", "redis://u:***@h/0?password=***&db=1"),
        ("rediss://h/0?password=pw", "rediss://h/0?password=***"),
        ("https://example.com/v1", "https://example.com/v1"),
        ("os.environ/REDIS_URL", "os.environ/REDIS_URL"),
        ("redis://h:notaport/0", "***"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_secret_names() -> None:
    assert all(map(is_secret_name, ["api_key", "aws_secret_access_key", "access_token", "password", "Authorization"]))
    assert not any(map(is_secret_name, ["max_tokens", "input_cost_per_token", "key_prefix", "model", "api_base"]))
    assert mask_mapping({"headers": {"Authorization": "Bearer x"}, "api_key": "k", "n": 1}) == {
        "headers": {"Authorization": "***"},
        "api_key": "***",
        "n": 1,
    }
