"""The OpenAPI schema as this server behaves: what FastAPI generates, corrected where the server's
settings decide.

* Bearer auth (``security`` and the 401) only on the operations whose token is configured:
  the read token for ``/v1`` reads, the write token for product writes.
* ``llm`` of an estimate request lists the backends this server offers (``enum``), as
  ``GET /v1/llms`` does.
* The 400 of a body that is not UTF-8 (or of a malformed ``Content-Length``) is documented on
  every operation that takes a body.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI

BEARER = "HTTPBearer"
ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
BAD_BODY = {
    "description": "A body that is not UTF-8 text, or a malformed `Content-Length` (invalid JSON is a 422).",
    "content": {"application/json": {"schema": ERROR_REF}},
}


def install_openapi(app: FastAPI, *, read_token: bool, write_token: bool, offered_llms: Sequence[str]) -> None:
    """Replace ``app.openapi`` by the corrected schema (built once, then cached like FastAPI's)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = corrected(
                generate(), read_token=read_token, write_token=write_token, offered_llms=offered_llms
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def corrected(
    schema: dict[str, Any], *, read_token: bool, write_token: bool, offered_llms: Sequence[str]
) -> dict[str, Any]:
    secured = False
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            guard = _guard(operation)
            if guard is None:
                continue
            if (guard == "write" and write_token) or (guard == "read" and read_token):
                operation["security"] = [{BEARER: []}]
                secured = True
            else:  # no token configured: every request passes (reads) or is refused with 403 (writes)
                operation.pop("security", None)
                operation.get("responses", {}).pop("401", None)
            if "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("400", BAD_BODY)
    components = schema.get("components", {})
    if not secured:
        components.pop("securitySchemes", None)
    estimate = components.get("schemas", {}).get("EstimateRequest", {}).get("properties", {})
    if "llm" in estimate and offered_llms:
        llm = estimate["llm"]
        llm["anyOf"] = [{"type": "string", "enum": list(offered_llms)}, {"type": "null"}]
        llm.pop("maxLength", None)
    return schema


def _guard(operation: dict[str, Any]) -> str | None:
    """``read`` or ``write``: the token an operation FastAPI marked with bearer auth needs (the
    write routes are those that answer 403 when writes are disabled); ``None``: no token."""
    if "security" not in operation:
        return None
    return "write" if "403" in operation.get("responses", {}) else "read"
