"""The transport limits of ``rag-pricer serve`` (issue 24, 6) on a real uvicorn server on
127.0.0.1: a bounded request head, a read deadline per request (slow headers, slow bodies) and
framing errors in the service's JSON error shape."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI, Request

from rag_pricer.service.limits import BodyLimit
from rag_pricer.service.transport import uvicorn_options

READ_TIMEOUT_S = 0.5


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    app.add_middleware(BodyLimit, default_bytes=1024)
    return app


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    config = uvicorn.Config(
        _app(), host="127.0.0.1", port=free, log_level="critical", **uvicorn_options(read_timeout_s=READ_TIMEOUT_S)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield free
    server.should_exit = True
    thread.join(10)


def _exchange(port: int, data: bytes, wait_s: float = 0.0) -> bytes:
    """Send ``data``, wait ``wait_s``, and read until the server closes (at most 20 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        time.sleep(wait_s)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def _json_error(response: bytes, status: int) -> dict:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), head
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert set(error) == {"error", "message", "details"}
    return error


def test_a_normal_request_passes(port: int) -> None:
    response = _exchange(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
    assert response.startswith(b"HTTP/1.1 200") and response.endswith(b'{"bytes":3}')


def test_an_oversize_header_is_refused_with_json(port: int) -> None:
    huge = b"X-Big: " + b"a" * 70_000 + b"\r\n"  # over the 64 KiB a head may take
    response = _exchange(port, b"GET /echo HTTP/1.1\r\nHost: x\r\n" + huge + b"\r\n")
    assert _json_error(response, 431)["error"] == "headers_too_large"


@pytest.mark.parametrize(
    "head",
    [
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
    ],
)
def test_framing_errors_answer_json(port: int, head: bytes) -> None:
    assert _json_error(_exchange(port, head), 400)["error"] == "bad_request"


def test_a_slow_header_is_closed_with_a_408(port: int) -> None:
    response = _exchange(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and nothing more
    assert _json_error(response, 408)["error"] == "request_timeout"


def test_a_slow_body_is_closed(port: int) -> None:
    response = _exchange(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
    assert not response.startswith(b"HTTP/1.1 200")  # closed (nothing, or an error), never left open
