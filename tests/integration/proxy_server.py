"""A throwaway LiteLLM proxy process (``litellm --config …``, no database) with costrouter's plugin.

The proxy runs from its own environment, ``.proxy-venv`` at the repository root, which
``.ci/run`` prepares (``litellm[proxy]`` at the locked version, costrouter installed from the
checkout); its dependencies never mix with the dev environment's. Each proxy gets a free
loopback port, its own directory with ``config.yaml``, the budget policy and a span file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from costrouter.otel.span_file import SpanRecord, read_span_records
from costrouter.testing.redis_server import free_port
from tests.integration.server_process import wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
PROXY_BIN = ROOT / ".proxy-venv" / "bin" / "litellm"
MASTER_KEY = "sk-costrouter-test"
_START_TIMEOUT_SECONDS = 180.0  # the proxy imports a lot; a loaded 2-core machine is slow


def proxy_config(
    provider_url: str, groups: Mapping[str, Mapping[str, Any]], *, plugin: bool = True, **router_settings: Any
) -> dict[str, Any]:
    """A proxy ``config.yaml`` whose groups are deployments on the provider double, with the plugin.

    ``groups`` maps a group name to ``{"model": ..., "input": $/token, "output": $/token}``
    (one deployment each; a list under ``"deployments"`` for several; ``"params"`` are added
    to its ``litellm_params``, a ``"mode"`` to its ``model_info``; a model without a provider
    prefix is ``openai/``). ``plugin=False`` leaves costrouter out (the proxy alone).
    """
    model_list = [
        {
            "model_name": name,
            "litellm_params": {
                "model": deployment["model"] if "/" in deployment["model"] else f"openai/{deployment['model']}",
                "api_base": provider_url,
                "api_key": "sk-double",
                "input_cost_per_token": deployment["input"],
                "output_cost_per_token": deployment["output"],
                **deployment.get("params", {}),
            },
            "model_info": {
                "id": deployment.get("id", f"{name}-{deployment['model']}"),
                **({"mode": deployment["mode"]} if "mode" in deployment else {}),
            },
        }
        for name, group in groups.items()
        for deployment in group.get("deployments", [group])
    ]
    return {
        "model_list": model_list,
        "router_settings": router_settings,
        "litellm_settings": {"callbacks": ["costrouter.proxy.handler"] if plugin else [], "drop_params": True},
        "general_settings": {"master_key": MASTER_KEY},
    }


class ProxyServer:
    """One LiteLLM proxy on 127.0.0.1 with the costrouter plugin, killed on exit.

    Spans go to ``span_file`` (``COSTROUTER_EXPORTER=file``); ``budgets`` is the policy
    mapping (``None``: no budgets, spans only).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        budgets: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not PROXY_BIN.exists():
            message = (
                f"{PROXY_BIN} is missing: run .ci/run (or its proxy lines) to install the LiteLLM proxy "
                "and costrouter into .proxy-venv"
            )
            raise RuntimeError(message)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="costrouter-proxy-"))
        self.config_path = self.dir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(dict(config)), encoding="utf-8")
        self.span_file = self.dir / "spans.jsonl"
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("COSTROUTER_", "OTEL_", "DATABASE_URL"))},
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "COSTROUTER_EXPORTER": "file",
            "COSTROUTER_EXPORT_FILE": str(self.span_file),
            **(env or {}),
        }
        if budgets is not None:
            budgets_path = self.dir / "budgets.yaml"
            budgets_path.write_text(yaml.safe_dump(dict(budgets)), encoding="utf-8")
            self._env["COSTROUTER_BUDGETS"] = str(budgets_path)
        self.log = self.dir / "proxy.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ProxyServer:
        command = [str(PROXY_BIN), "--config", str(self.config_path), "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(command, env=self._env, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        wait_until_healthy(
            self._process, f"{self.url}/health/liveliness", "the proxy", _START_TIMEOUT_SECONDS, self.tail
        )

    def tail(self) -> str:
        """The end of the proxy's log (for failure messages)."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the proxy with SIGINT (see ``docs/proxy.md``: after SIGTERM no exit hook runs), then wait."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def spans(self) -> list[SpanRecord]:
        """The call spans in the span file (``router.*``); complete once the proxy stopped."""
        if not self.span_file.exists():
            return []
        return [span for span in read_span_records(self.span_file) if span["name"].startswith("router.")]
