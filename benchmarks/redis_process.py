"""The version of the benchmark's redis-server, for the report (each phase starts its own server)."""

from __future__ import annotations

import shutil
import subprocess

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def redis_version() -> str:
    out = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True, check=True).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip()
