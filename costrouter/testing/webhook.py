"""A real HTTP receiver on loopback for alert webhooks: records each POST, answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

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
    """

    def __init__(self, default_status: int = 200) -> None:
        self.default_status = default_status
        self.requests: list[ReceivedWebhook] = []
        self._script: deque[int] = deque()
        self._lock = threading.Condition()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver._script.popleft() if receiver._script else receiver.default_status
                    receiver.requests.append(ReceivedWebhook(self.path, dict(self.headers.items()), body, status))
                    receiver._lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

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
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
