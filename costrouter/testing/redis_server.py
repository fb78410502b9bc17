"""A throwaway ``redis-server`` for tests and benchmarks, or the server named by ``REDIS_URL``.

``RedisServer.start()`` runs ``redis-server --port <free port> --save "" --appendonly no``
in a temporary directory and waits until it answers PING; ``kill()`` and ``restart()``
(same port) let tests see the store go down and come back, with every key gone (nothing is
persisted: a Redis that restarted empty); ``DEBUG SLEEP`` is enabled for local clients. With ``REDIS_URL`` set, the
tests use that server instead and cannot kill it (``can_restart`` is false).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from types import TracebackType

import redis

_START_TIMEOUT_SECONDS = 10.0
_DEBUG_OPTION_SINCE = 7  # Redis 6 rejects --enable-debug-command (and allows DEBUG anyway)


def _major_version(binary: str) -> int:
    """The major version of a redis-server binary (``Redis server v=7.0.15 ...``), 0 when unknown."""
    try:
        text = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True, timeout=10).stdout
        return int(text.split("v=", 1)[1].split(".", 1)[0])
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One Redis server: private on a free loopback port, or external (``url``).

    >>> with RedisServer() as server:
    ...     store = RedisBudgetStore(StoreConfig(backend="redis"), url=server.url)
    """

    def __init__(self, url: str | None = None) -> None:
        """Use ``url`` as is, or (without it) start a private server on a free port."""
        self.external = url is not None
        self.port = 0 if url is not None else free_port()
        self.url = url or f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    @property
    def can_restart(self) -> bool:
        """Whether this helper owns the server, so that it may kill and restart it."""
        return not self.external

    def start(self) -> None:
        """Start the server (no-op for an external one) and wait until it answers PING."""
        if not self.external:
            binary = shutil.which("redis-server") or "/usr/bin/redis-server"
            self._dir = self._dir or tempfile.mkdtemp(prefix="costrouter-redis-")
            command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            if _major_version(binary) >= _DEBUG_OPTION_SINCE:
                # DEBUG SLEEP is how fault tests make the server slow (Redis 7 refuses DEBUG by default).
                command += ["--enable-debug-command", "local"]
            self._process = subprocess.Popen(
                [*command, "--dir", self._dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        self.wait_ready()

    def wait_ready(self) -> None:
        """Poll PING until the server answers; raise RuntimeError after a few seconds."""
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    if self._process is not None and self._process.poll() is not None:
                        message = f"redis-server exited with {self._process.returncode}"
                        raise RuntimeError(message) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server (it loses every key) and wait until it is gone."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()
        self._process = None

    def restart_keeping_data(self) -> None:
        """Stop the server with ``SHUTDOWN SAVE`` and start it again from its snapshot.

        Every write the server acknowledged survives; clients see their connections drop.
        """
        if self._process is None:
            return
        self.shutdown_keeping_data()
        self.start()

    def shutdown_keeping_data(self) -> None:
        """Stop the server with ``SHUTDOWN SAVE``: it is down until :meth:`start` reads its snapshot back."""
        if self._process is None:
            return
        client = redis.Redis.from_url(self.url, socket_timeout=10, socket_connect_timeout=1)
        try:
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        finally:
            client.close()
        self._process.wait()
        self._process = None

    def ensure_running(self) -> None:
        """Start the server again if a test killed it (no-op for an external one)."""
        if not self.external and (self._process is None or self._process.poll() is not None):
            self.start()

    def restart(self) -> None:
        """Start the server again on the same port (after :meth:`kill`)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def server_from_env() -> RedisServer:
    """A started server: ``REDIS_URL`` when set, else a private one."""
    server = RedisServer(os.environ.get("REDIS_URL") or None)
    server.start()
    return server


__all__ = ["RedisServer", "free_port", "server_from_env"]
