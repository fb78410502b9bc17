"""A throwaway Arize Phoenix server (``phoenix serve``) for the backend tests.

Phoenix runs from its own environment, ``.phoenix-venv`` at the repository root, which
``.ci/run`` prepares (``arize-phoenix`` pinned there); its dependencies never mix with
costrouter's. Each server gets free loopback ports and its own working directory (SQLite).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from costrouter.testing.redis_server import free_port
from tests.integration.server_process import wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
PHOENIX_BIN = ROOT / ".phoenix-venv" / "bin" / "phoenix"
_START_TIMEOUT_SECONDS = 180.0  # first start migrates its database; a loaded 2-core machine is slow


class PhoenixServer:
    """One Phoenix server on 127.0.0.1, killed on exit."""

    def __init__(self) -> None:
        if not PHOENIX_BIN.exists():
            message = f"{PHOENIX_BIN} is missing: run .ci/run (or the Phoenix lines in it) to install Phoenix"
            raise RuntimeError(message)
        self.port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.mkdtemp(prefix="costrouter-phoenix-")
        self._process: subprocess.Popen[bytes] | None = None
        self._log = Path(self._dir) / "phoenix.log"

    def __enter__(self) -> PhoenixServer:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))},
            "PHOENIX_WORKING_DIR": self._dir,
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        with self._log.open("wb") as log:
            self._process = subprocess.Popen([str(PHOENIX_BIN), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        wait_until_healthy(
            self._process,
            f"{self.url}/healthz",
            "phoenix",
            _START_TIMEOUT_SECONDS,
            lambda: self._log.read_text()[-2000:],
        )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a GraphQL query; fail on GraphQL errors."""
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def project_spans(self, project: str) -> list[dict[str, Any]]:
        """Every span of ``project`` with kind, tokens, Phoenix's cost and attributes (parsed)."""
        data = self.graphql(_PROJECT_SPANS)
        for edge in data["projects"]["edges"]:
            if edge["node"]["name"] == project:
                spans = [span["node"] for span in edge["node"]["spans"]["edges"]]
                for span in spans:
                    span["attributes"] = json.loads(span["attributes"])
                return spans
        return []

    def project_names(self) -> list[str]:
        """The names of every project."""
        return [edge["node"]["name"] for edge in self.graphql(_PROJECT_SPANS)["projects"]["edges"]]

    def sessions(self, project: str) -> dict[str, int]:
        """Session id -> number of traces, for ``project``."""
        data = self.graphql(_PROJECT_SESSIONS)
        for edge in data["projects"]["edges"]:
            if edge["node"]["name"] == project:
                return {s["node"]["sessionId"]: s["node"]["numTraces"] for s in edge["node"]["sessions"]["edges"]}
        return {}


_PROJECT_SPANS = """
query { projects(first: 100) { edges { node { name spans(first: 1000) { edges { node {
  name spanKind tokenCountPrompt tokenCountCompletion attributes
  costSummary { total { cost } }
} } } } } } }
"""
_PROJECT_SESSIONS = """
query { projects(first: 100) { edges { node { name sessions(first: 100) { edges { node {
  sessionId numTraces
} } } } } } }
"""
