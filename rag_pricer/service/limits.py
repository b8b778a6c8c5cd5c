"""Refusing oversize request bodies before anything parses them."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: request body limits in bytes: one description fits comfortably in 64 KiB; a batch gets more
MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_BODY_BYTES = 1024 * 1024


class BodyLimit:
    """ASGI middleware answering 413 to bodies larger than the limit of their path.

    A declared ``Content-Length`` over the limit is refused at once; a body without one
    (chunked) is read up to the limit and refused as soon as it exceeds it, so a client cannot
    make the server buffer an unbounded body. Accepted bodies are replayed to the app unchanged.
    """

    def __init__(self, app: ASGIApp, default_bytes: int, per_path: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default_bytes = default_bytes
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default_bytes)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and b"transfer-encoding" in headers:
            # two framings of one body: refused, as request smuggling relies on servers reading them differently
            refusal = _error(400, "bad_request", "both Content-Length and Transfer-Encoding given")
            await refusal(scope, receive, send)
            return
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _error(400, "bad_request", "invalid Content-Length header")(scope, receive, send)
                return
            if size > limit:
                await _too_large(limit)(scope, receive, send)
                return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            received += len(body)
            if received > limit:
                await _too_large(limit)(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the disconnect as usual

        await self.app(scope, replay, send)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, "payload_too_large", f"the request body is larger than {limit:,} bytes")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "details": None}, status_code=status)
