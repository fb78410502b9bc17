"""A throwaway Redis Cluster on loopback: three masters with a replica each, for tests and benchmarks.

``RedisCluster.start()`` runs six ``redis-server --cluster-enabled yes`` nodes on free
ports, joins them with ``redis-cli --cluster create ... --cluster-replicas 1`` and waits
until every node reports ``cluster_state:ok``. :meth:`RedisClusterNodes.kill_master`
SIGKILLs the master of a key's slot and waits for its replica's promotion; ``stop()``
ends every node and removes their directories. Needs only ``redis-server`` and
``redis-cli`` (Debian's ``redis-server`` package ships both) on PATH.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from costrouter.testing.redis_server import free_port

_START_TIMEOUT_SECONDS = 30.0
_NODE_TIMEOUT_MS = 1000
_PORT_ATTEMPTS = 5
_LOG_NAME = "redis.log"


class _PortTakenError(RuntimeError):
    """A node could not bind its port: something took it between the pick and the bind."""


def _binary(name: str) -> str:
    return shutil.which(name) or f"/usr/bin/{name}"


class RedisClusterNodes:
    """Six private cluster nodes (3 masters, 3 replicas) on free loopback ports.

    >>> with RedisClusterNodes() as cluster:
    ...     store = RedisBudgetStore(StoreConfig(backend="redis", cluster=True), url=cluster.url)
    """

    def __init__(self, masters: int = 3) -> None:
        """Pick the ports; nothing runs until :meth:`start`."""
        self._picked: set[int] = set()
        self.ports = [self._new_port() for _ in range(masters * 2)]
        self._bus_ports = {port: self._new_port() for port in self.ports}  # port + 10000 may not exist
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._dir: str | None = None

    @property
    def url(self) -> str:
        """The URL of a live node: a client's start-up node, from which it learns the others."""
        live = self._live_ports() or self.ports
        return f"redis://127.0.0.1:{live[0]}/0"

    @property
    def urls(self) -> list[str]:
        """One URL per node, in start order (any of them is a valid start-up node)."""
        return [f"redis://127.0.0.1:{port}/0" for port in self.ports]

    def start(self) -> None:
        """Start the nodes, create the cluster and wait until it serves every slot."""
        self._dir = self._dir or tempfile.mkdtemp(prefix="costrouter-cluster-")
        for port in self.ports:
            self._start_node(port)
        for index in range(len(self.ports)):
            self._wait_started(index)
        subprocess.run(
            [
                _binary("redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=_START_TIMEOUT_SECONDS,
        )
        self.wait_ok()

    def _new_port(self) -> int:
        """A free port this cluster has not picked before (the OS may hand out a released one again)."""
        while (port := free_port()) in self._picked:
            pass
        self._picked.add(port)
        return port

    def _wait_started(self, index: int) -> None:
        """Wait for the node at ``index``; if another process took its port meanwhile, move it to new ports."""
        for _attempt in range(_PORT_ATTEMPTS - 1):
            try:
                self._wait_ping(self.ports[index])
            except _PortTakenError:
                old = self.ports[index]
                del self._processes[old], self._bus_ports[old]
                new = self.ports[index] = self._new_port()
                self._bus_ports[new] = self._new_port()
                self._start_node(new)
            else:
                return
        self._wait_ping(self.ports[index])

    def _start_node(self, port: int) -> None:
        folder = Path(self._dir or tempfile.mkdtemp(prefix="costrouter-cluster-")) / str(port)
        folder.mkdir(exist_ok=True)
        command = [
            _binary("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(self._bus_ports[port]),
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(_NODE_TIMEOUT_MS),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            "--logfile",
            str(folder / _LOG_NAME),
        ]
        self._processes[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _wait_ping(self, port: int) -> None:
        """Wait until the node started on ``port`` answers: it, not whatever else may listen there."""
        process = self._processes[port]
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        with redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1) as client:
            while True:
                if process.poll() is not None:
                    log = self._log_tail(port)
                    if "Address already in use" in log:
                        raise _PortTakenError(log)
                    message = f"redis-server on port {port} exited with {process.returncode}: {log}"
                    raise RuntimeError(message)
                try:
                    if int(client.info("server")["process_id"]) == process.pid:
                        return
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    message = f"redis-server on port {port} did not answer within {_START_TIMEOUT_SECONDS:.0f} s"
                    raise RuntimeError(message)
                time.sleep(0.02)

    def _log_tail(self, port: int) -> str:
        log = Path(self._dir or "") / str(port) / _LOG_NAME
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return "(no log)"

    def _live_ports(self) -> list[int]:
        return [port for port, process in self._processes.items() if process.poll() is None]

    def wait_ok(self, timeout: float = _START_TIMEOUT_SECONDS) -> None:
        """Wait until every live node says ``cluster_state:ok``, sees every master serving, replicas synced."""
        deadline = time.monotonic() + timeout
        while not self._all_ok():
            if time.monotonic() > deadline:
                message = "the Redis Cluster did not reach cluster_state:ok"
                raise RuntimeError(message)
            time.sleep(0.05)

    def _all_ok(self) -> bool:
        for port in self._live_ports():
            try:
                with redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True) as node:
                    if node.cluster("INFO").get("cluster_state") != "ok":
                        return False
                    masters = [
                        line
                        for line in str(node.execute_command("CLUSTER", "NODES")).splitlines()
                        if "master" in line.split()[2] and "fail" not in line.split()[2] and line.split()[8:]
                    ]
                    if len(masters) != len(self.ports) // 2:
                        return False
                    replication = node.info("replication")
                    if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                        return False  # an unsynced replica would refuse to take over
            except (redis.RedisError, OSError):
                return False
        return True

    def master_of(self, key: str) -> int:
        """The port of the master that serves ``key``'s slot now."""
        port = self._live_ports()[0]
        with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as node:
            slot = int(node.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in node.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(master[1])
        message = f"no master serves the slot of {key!r}"
        raise RuntimeError(message)

    def kill(self, port: int) -> None:
        """SIGKILL one node (its data is gone) and wait until it has exited."""
        process = self._processes[port]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def kill_master(self, key: str) -> int:
        """SIGKILL the master of ``key``'s slot, wait for its replica's promotion; return the killed port."""
        port = self.master_of(key)
        self.kill(port)
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while True:
            try:
                promoted = self.master_of(key)
            except (redis.RedisError, OSError):
                promoted = port
            if promoted != port and self._all_ok():
                return port
            if time.monotonic() > deadline:
                message = f"no replica took over from the master on port {port}"
                raise RuntimeError(message)
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node and remove their directories."""
        for process in self._processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self._processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisClusterNodes:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = ["RedisClusterNodes"]
