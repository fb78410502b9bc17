"""Issue 25, finding 11 (prices push): hostile backends on loopback, the command run in process and as a process.

The red team saw the URL's credentials and token in errors, Python tracebacks on invalid JSON, a
wrong shape or a garbage status line, a 200 MB body read into 610 MB, and a 1 byte/s server hold
the command for 45 s. Each backend here is a raw socket server that answers one way.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costrouter.cli.commands import app
from costrouter.prices_push.transport import DEFAULT_TIMEOUT_SECONDS, MAX_ANSWER_BYTES
from tests.routing import router_config

ROOT = Path(__file__).resolve().parents[2]
Answer = Callable[[socket.socket], None]


class _Backend:
    """A loopback TCP server that reads one HTTP request and answers with ``answer``; counts bytes sent."""

    def __init__(self, answer: Answer) -> None:
        self.sent = 0
        self.stopped = threading.Event()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                connection: socket.socket = self.request
                connection.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                while len(body) < length:
                    body += connection.recv(65536)
                try:
                    answer(connection)
                except OSError:
                    return  # the client gave up

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def send(self, connection: socket.socket, data: bytes) -> None:
        connection.sendall(data)
        self.sent += len(data)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _Backend:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


def _http(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(json.dumps(router_config("http://127.0.0.1:9")))
    return path


def _push(config: Path, url: str, target: str = "phoenix", *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["prices", "push", target, url, "--config", str(config), *extra])
    return result.exit_code, result.output


def _one_line_error(output: str) -> str:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    return lines[0]


def _with_secrets(url: str) -> str:
    return url.replace("http://", "http://admin:canary-pw@") + "/?token=canary-token&project=p"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!", "is not JSON"),
        (_http("200 OK", b'{"data": {"generativeModels": {"edges": [{"node": 3}]}}}'), "is not generativeModels"),
        (_http("200 OK", b"[1, 2]"), "the GraphQL answer is not an object"),
        (_http("200 OK", b"[" * 100_000), "is not JSON"),
        (b"SSH-2.0-OpenSSH_9.6\r\ngarbage\r\n\r\n", "not valid HTTP"),
        (_http("500 Oops", b"\x1b]0;title\x07boom"), "HTTP 500"),
    ],
    ids=["invalid-json", "wrong-shape", "not-an-object", "deep-json", "garbage-status-line", "error-status"],
)
def test_a_bad_answer_is_one_line_without_a_traceback_or_a_secret(config: Path, answer: bytes, expected: str) -> None:
    with _Backend(lambda connection: connection.sendall(answer)) as backend:
        code, output = _push(config, _with_secrets(backend.url))
    assert code == 1
    line = _one_line_error(output)
    assert expected in line
    assert "canary" not in line
    assert "\x1b" not in line
    assert "phoenix at http://admin:***@127.0.0.1" in line


def test_an_unreachable_backend_is_named_masked(config: Path) -> None:
    with _Backend(lambda connection: None) as backend:
        url = _with_secrets(backend.url)
    code, output = _push(config, url)  # the port is closed now
    line = _one_line_error(output)
    assert code == 1
    assert "ConnectionRefusedError: cannot connect" in line
    assert "canary" not in line


def test_a_signoz_refusal_is_masked_too(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOZ_API_KEY", "canary-key")
    with _Backend(lambda connection: connection.sendall(_http("403 Forbidden", b"no"))) as backend:
        code, output = _push(config, _with_secrets(backend.url), "signoz", "--apply")
    assert code == 1
    assert "canary" not in output
    assert "Traceback" not in output
    assert "push refused with HTTP 403" in output


def test_a_huge_answer_is_refused_while_reading(config: Path) -> None:
    huge = 200 * 1024 * 1024

    def answer(connection: socket.socket) -> None:
        backend.send(connection, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (1024 * 1024, b"[" * 1024 * 1024)
        while backend.sent < huge and not backend.stopped.is_set():
            backend.send(connection, chunk)

    with _Backend(answer) as backend:
        code, output = _push(config, backend.url)
        line = _one_line_error(output)
    assert code == 1
    assert f"larger than {MAX_ANSWER_BYTES:,} bytes" in line
    assert backend.sent < huge // 2  # the red team's push read all 200 MB (into 610 MB of memory)


def test_a_declared_huge_answer_is_refused_before_reading(config: Path) -> None:
    declared = b"HTTP/1.1 200 OK\r\nContent-Length: 209715200\r\n\r\n"
    with _Backend(lambda connection: connection.sendall(declared)) as backend:
        _, output = _push(config, backend.url)
    assert f"larger than {MAX_ANSWER_BYTES:,} bytes" in _one_line_error(output)


def test_a_dripping_backend_is_cut_off_at_the_total_timeout(config: Path) -> None:
    """1 byte every 0.2 s for ever: a per-read timeout never fires, the total one does."""
    answer = _http("200 OK", b'{"data": {"generativeModels": {"edges": []}}}' + b" " * 100_000)

    def drip(connection: socket.socket) -> None:
        for byte in answer:
            if backend.stopped.wait(0.2):
                return
            backend.send(connection, bytes([byte]))

    with _Backend(drip) as backend:
        environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        process = subprocess.run(
            [sys.executable, "-m", "costrouter", "prices", "push", "phoenix", backend.url, "--config", str(config)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
    assert process.returncode == 1, process.stderr
    line = _one_line_error(process.stdout + process.stderr)
    assert f"no complete answer within {DEFAULT_TIMEOUT_SECONDS:g} s" in line


@pytest.fixture
def phoenix_like() -> Iterator[_Backend]:
    body = json.dumps({"data": {"generativeModels": {"edges": []}}}).encode()
    with _Backend(lambda connection: connection.sendall(_http("200 OK", body))) as backend:
        yield backend


def test_a_healthy_backend_still_plans_and_the_diff_masks_the_url(config: Path, phoenix_like: _Backend) -> None:
    code, output = _push(config, _with_secrets(phoenix_like.url))
    assert code == 5, output
    assert "+ fast-model" in output
    assert "canary" not in output
    assert "phoenix at http://admin:***@127.0.0.1" in output
