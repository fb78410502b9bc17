"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from costrouter.testing.redis_cluster import RedisClusterNodes
from costrouter.testing.redis_server import RedisServer, server_from_env


@pytest.fixture(scope="session", autouse=True)
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Settle journals and epoch markers of the tests (and their worker processes) in a temporary directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        yield


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OTEL_/COSTROUTER_ variable or .env file of the developer's leaks in."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "COSTROUTER_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# ---------------------------------------------------------------------------
# Redis: one throwaway redis-server per test session (or REDIS_URL when set).
# `redis_server.kill()` / `redis_server.restart()` take it down and bring it back
# on the same port; tests that do so check `redis_server.can_restart` first.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's Redis server."""
    server = server_from_env()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of a running Redis server (restarted first if a test left it down)."""
    redis_server.ensure_running()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    """A throwaway Redis Cluster (3 masters, a replica each) on loopback, started once per session."""
    with RedisClusterNodes() as cluster:
        yield cluster


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisClusterNodes) -> str:
    """A start-up node's URL of the session's cluster (serving every slot again if a test failed a master)."""
    redis_cluster.wait_ok()
    return redis_cluster.url


# --- end of the Redis block -------------------------------------------------
