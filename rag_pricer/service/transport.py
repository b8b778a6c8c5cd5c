"""The HTTP transport's limits: how much of a request the server buffers and how long it waits.

``rag-pricer serve`` runs uvicorn with ``uvicorn_options()``: the h11 protocol (pure Python,
with a bound on what it buffers before a request's head is complete; httptools has none, and
a 50 MB header was accepted) through ``GuardedH11Protocol``, which

* closes a connection whose request (head and body) does not arrive within
  ``REQUEST_READ_TIMEOUT_S``: a slow-header or slow-body client no longer holds a connection
  (and a worker waiting for its body) for ever; an unfinished head is answered 408 first;
* answers a head over ``MAX_HEAD_BYTES`` with 431 and framing errors (``Content-Length: abc``,
  a broken chunk) with 400, in the service's JSON error shape instead of uvicorn's plain text
  (both ``Content-Length`` and chunked: ``BodyLimit`` answers 400).

Idle keep-alive connections are closed after ``KEEP_ALIVE_S``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: the most a request's head (request line and headers) may take, in bytes
MAX_HEAD_BYTES = 64 * 1024
#: seconds a client has to send a whole request, from its first byte (or the connection's opening)
REQUEST_READ_TIMEOUT_S = 30.0
#: seconds an idle keep-alive connection stays open
KEEP_ALIVE_S = 5


def error_bytes(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response, closing the connection, with the ``ErrorResponse`` body."""
    body = json.dumps({"error": code, "message": message, "details": None}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a read deadline per request and JSON framing errors."""

    read_timeout_s: float = REQUEST_READ_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._read_deadline is None:
            self._arm()  # the first byte of a new request on a kept-alive connection
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            message = f"the request head is larger than {MAX_HEAD_BYTES:,} bytes"
            self._refuse(431, "Request Header Fields Too Large", "headers_too_large", message)
            return
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()  # the whole request is read: the app's own deadline applies from here

    def on_response_complete(self) -> None:
        self._disarm()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "Bad Request", "bad_request", "invalid HTTP request: bad framing or oversize headers")

    def _head_too_large(self, data: bytes) -> bool:
        """Whether the head being received ends past ``MAX_HEAD_BYTES`` (h11 bounds only a head
        still incomplete after a read; one read can bring a whole 256 KiB head)."""
        pending = self.conn.trailing_data[0] + data
        return len(pending) > MAX_HEAD_BYTES and pending.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4) == -1

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(error_bytes(status, reason, code, message))
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.read_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _timed_out(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:  # the head never came: say so before closing
            message = f"the request was not received within {self.read_timeout_s:g} s"
            self.transport.write(error_bytes(408, "Request Timeout", "request_timeout", message))
        self.transport.close()  # an app waiting for the rest of the body sees a disconnect


def uvicorn_options(read_timeout_s: float = REQUEST_READ_TIMEOUT_S) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` that set the transport's limits."""
    protocol = type("GuardedH11", (GuardedH11Protocol,), {"read_timeout_s": read_timeout_s})
    return {
        "http": protocol,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_S,
    }
