"""The provider double in a process of its own, so its CPU never shares the GIL with the client measured.

Standalone: ``python benchmarks/provider_process.py`` prints ``port <n>`` and serves until stdin closes.
From ``run.py``: :class:`ProviderProcess` starts it through a multiprocessing context.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from contextlib import suppress
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from types import TracebackType

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from costrouter.testing import ProviderDouble, Reply

MODEL = "bench-model"
COMPLETION_TOKENS = 8


def _provider() -> ProviderDouble:
    provider = ProviderDouble()
    provider.set_default(MODEL, Reply(completion_tokens=COMPLETION_TOKENS))
    return provider


def serve(conn: Connection) -> None:
    """Serve until ``conn`` receives anything (or closes); send the port first."""
    with _provider() as provider:
        conn.send(int(provider.base_url.rsplit(":", 1)[1].split("/", 1)[0]))
        with suppress(EOFError):
            conn.recv()


class ProviderProcess:
    """The provider double running in a child process; ``base_url`` once started."""

    def __init__(self, context: BaseContext | None = None) -> None:
        self._context = context or multiprocessing.get_context("spawn")
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self.base_url = ""

    def __enter__(self) -> ProviderProcess:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=serve, args=(child,), name="provider-double", daemon=True)
        self._process.start()
        child.close()
        if not parent.poll(60):
            raise RuntimeError("the provider double did not start within 60 s")
        port = parent.recv()
        self._conn = parent
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            self._conn.send(None)
            self._conn.close()
        if self._process is not None:
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)


def main() -> None:
    with _provider() as provider:
        print(f"port {provider.base_url.rsplit(':', 1)[1].split('/', 1)[0]}", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
