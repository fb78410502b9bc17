"""A loopback TCP proxy that delays each direction by a fixed time: a far Redis on one machine.

    python -m benchmarks.delay_proxy --target 127.0.0.1:6390 --delay-ms 10

Prints ``port <n>`` once listening and serves until stdin closes. Each chunk read from one
side is written to the other ``delay`` after it arrived, in order: a delay line, not a
stop-and-wait relay, so pipelined commands keep flowing (a 10 ms delay each way is a 20 ms
round trip, whatever the number of commands in flight). :class:`DelayProxy` runs it in a child
process, so its event loop never shares the GIL with the client measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from types import TracebackType


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    line: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await line.get()
            if not chunk:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        writer.close()

    delivering = asyncio.create_task(deliver())
    try:
        while chunk := await reader.read(65536):
            line.put_nowait((time.monotonic() + delay, chunk))
    except ConnectionError:
        pass
    line.put_nowait((0.0, b""))
    await delivering


async def _serve(target_host: str, target_port: int, delay: float) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        await asyncio.gather(
            _pump(client_reader, server_writer, delay),
            _pump(server_reader, client_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()
    # Connections still open end with the process: cancelling their pumps only prints asyncio's noise.
    os._exit(0)


class DelayProxy:
    """The proxy in a child process; ``url`` once started (a ``redis://`` URL to the proxy)."""

    def __init__(self, target: str, delay_ms: float) -> None:
        """Proxy ``target`` (``host:port``) with ``delay_ms`` added each way."""
        self.target = target
        self.delay_ms = delay_ms
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> DelayProxy:
        command = [sys.executable, "-m", "benchmarks.delay_proxy", "--target", self.target]
        self._process = subprocess.Popen(
            [*command, "--delay-ms", str(self.delay_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline().split()[1])
        return self

    @property
    def url(self) -> str:
        """The proxy's Redis URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=10)


def main() -> None:
    """Serve until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="added to each direction")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    asyncio.run(_serve(host, int(port), args.delay_ms / 1000))


if __name__ == "__main__":
    main()
