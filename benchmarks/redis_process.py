"""The benchmark's Redis: a throwaway ``redis-server`` (costrouter.testing's), plus what the report needs."""

from __future__ import annotations

import shutil
import subprocess

import redis

from costrouter.testing import RedisServer

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def redis_version() -> str:
    out = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True, check=True).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip()


def flush(server: RedisServer) -> None:
    """Empty the server between benchmark phases."""
    with redis.Redis.from_url(server.url) as client:
        client.flushall()
