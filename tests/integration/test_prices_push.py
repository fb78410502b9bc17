"""``costrouter prices push signoz URL`` (the issue-13 command) against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from costrouter.cli.commands import app
from costrouter.prices_push.command import PENDING_EXIT
from tests.routing import PRICES, router_config


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.received.append({"path": self.path, "headers": dict(self.headers.items()), "body": json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def signoz_api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback HTTP server that records every PUT."""
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Recorder,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def _config_file(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(json.dumps(config))
    return path


def test_push_writes_one_rule_per_model_at_costrouters_prices(
    tmp_path: Path, signoz_api: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = signoz_api
    monkeypatch.setenv("SIGNOZ_API_KEY", "sz-api")
    config = _config_file(tmp_path, router_config("http://127.0.0.1:9"))

    dry = CliRunner().invoke(app, ["prices", "push", "signoz", url, "--config", str(config)])
    assert dry.exit_code == PENDING_EXIT, dry.output
    assert "+ fast-model" in dry.output
    assert received == []

    result = CliRunner().invoke(app, ["prices", "push", "signoz", url, "--config", str(config), "--apply"])

    assert result.exit_code == 0, result.output
    (request,) = received
    assert request["path"] == "/api/v1/llm_pricing_rules"
    assert request["headers"]["SIGNOZ-API-KEY"] == "sz-api"
    rules = {rule["modelName"]: rule for rule in request["body"]["rules"]}
    assert set(rules) == {"fast-model", "fast-backup-model", "capable-model", "flaky-model", "slow-model"}
    fast = rules["fast-model"]
    assert fast["modelPattern"] == ["fast-model"]
    assert fast["provider"] == "openai"
    assert fast["unit"] == "per_million_tokens"
    assert fast["isOverride"] is True
    assert fast["pricing"]["input"] == pytest.approx(PRICES["fast-primary"][0] * 1e6)
    assert fast["pricing"]["output"] == pytest.approx(PRICES["fast-primary"][1] * 1e6)


def test_one_model_at_two_prices_is_refused_naming_both(
    tmp_path: Path, signoz_api: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = signoz_api
    monkeypatch.setenv("SIGNOZ_API_KEY", "sz-api")
    config = router_config("http://127.0.0.1:9")
    config["groups"]["slow"]["deployments"][0]["model"] = "openai/fast-model"  # same model, other price
    path = _config_file(tmp_path, config)

    result = CliRunner().invoke(app, ["prices", "push", "signoz", url, "--config", str(path), "--apply"])

    assert result.exit_code == 0, result.output
    assert "deployments fast-primary, slow-only share this model name at different prices" in result.output
    (request,) = received
    assert "fast-model" not in {rule["modelName"] for rule in request["body"]["rules"]}


def test_a_push_without_the_api_key_is_refused_before_sending(
    tmp_path: Path, signoz_api: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = signoz_api
    monkeypatch.delenv("SIGNOZ_API_KEY", raising=False)
    config = _config_file(tmp_path, router_config("http://127.0.0.1:9"))

    result = CliRunner().invoke(app, ["prices", "push", "signoz", url, "--config", str(config), "--apply"])

    assert result.exit_code == 1
    assert "SIGNOZ_API_KEY" in result.output
    assert received == []
