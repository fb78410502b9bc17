"""A real HTTP receiver on loopback for alert webhooks: records each POST, answers as scripted.

``stall="drip"`` makes it a slow sink: it answers one byte every ``drip_seconds`` for as long as
it runs; ``stall="hang"`` reads the request and never answers. Both end when the receiver stops.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

__all__ = ["ReceivedWebhook", "WebhookReceiver"]


@dataclass(frozen=True)
class ReceivedWebhook:
    """One request the receiver got (whatever it answered)."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class WebhookReceiver:
    """``with WebhookReceiver() as hook:`` → POST to ``hook.url``; ``hook.answer(500, 500)`` scripts replies.

    Replies are taken in order; once the script is used up every request gets ``default_status``.
    With ``stall`` the request is recorded, then answered one byte at a time (``drip``) or never
    (``hang``), until :meth:`stop`.
    """

    def __init__(
        self, default_status: int = 200, *, stall: Literal["drip", "hang"] | None = None, drip_seconds: float = 1.0
    ) -> None:
        self.default_status = default_status
        self.requests: list[ReceivedWebhook] = []
        self._script: deque[int] = deque()
        self._lock = threading.Condition()
        self._stopped = threading.Event()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver._script.popleft() if receiver._script else receiver.default_status
                    receiver.requests.append(ReceivedWebhook(self.path, dict(self.headers.items()), body, status))
                    receiver._lock.notify_all()
                if stall is not None:
                    self._stall(stall)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def _stall(self, how: str) -> None:
                answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"." * 1_000_000
                for index in range(len(answer)):
                    if receiver._stopped.wait(drip_seconds):
                        return
                    if how == "drip":
                        try:
                            self.wfile.write(answer[index : index + 1])
                            self.wfile.flush()
                        except OSError:  # the client gave up: that is the point
                            return

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:{port}/hook``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order."""
        with self._lock:
            self._script.extend(statuses)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedWebhook]:
        """The requests, once there are at least ``count`` (``TimeoutError`` otherwise)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    message = f"{len(self.requests)} webhook requests after {timeout} s, expected {count}"
                    raise TimeoutError(message)
                self._lock.wait(remaining)
            return list(self.requests)

    def start(self) -> WebhookReceiver:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (a stalled answer ends) and free the port."""
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
