"""Every error of the service as ``ErrorResponse`` JSON, and the documented error responses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_pricer.pricing.readiness import StrategyNotReady
from rag_pricer.pricing.registry import InvalidOptions, UnknownStrategy, registry
from rag_pricer.query import InvalidQuery
from rag_pricer.service.dependencies import get_pricing
from rag_pricer.service.pricing import NotReady, PricingUnavailable
from rag_pricer.service.schemas import ErrorResponse
from rag_pricer.service.validation_errors import summarise

log = logging.getLogger("rag_pricer.service")


class ProductsRefused(ValueError):
    """Records a write cannot store (answered with 422, one detail per bad record)."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        first = problems[0]
        super().__init__(
            f"{len(problems)} product(s) refused, e.g. {first.get('id')!r}: {first['reason']}"
            + (f" ({first['detail']})" if first.get("detail") else "")
        )
        self.problems = problems


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "A body that is not UTF-8 text, or a malformed `Content-Length` (invalid JSON is a 422).",
    },
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token (only when the server has one)."},
    409: {"model": ErrorResponse, "description": "The strategy is not ready here; the message says what to run."},
    413: {"model": ErrorResponse, "description": "Body or batch too large."},
    422: {
        "model": ErrorResponse,
        "description": "Invalid input: empty description, wrong types, unknown strategy, an option the strategy lacks.",
    },
    503: {"model": ErrorResponse, "description": "Still loading, or the knowledge base is unavailable."},
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that may answer ``codes``."""
    return {code: ERRORS[code] for code in codes}


def error_response(
    status_code: int, code: str, message: str, details: list[dict[str, Any]] | None = None, **kw: Any
) -> JSONResponse:
    body = ErrorResponse(error=code, message=message, details=details).model_dump()
    return JSONResponse(body, status_code=status_code, **kw)


async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    # Each kind of error once (loc, msg, type, count); never "input" (it echoes the whole body) or "ctx".
    message, details = summarise(error.errors())
    return error_response(422, "invalid_request", message, details)


async def unknown_strategy(request: Request, error: UnknownStrategy) -> JSONResponse:
    return error_response(422, "unknown_strategy", error.message, [{"known": registry.names()}])


async def invalid_options(request: Request, error: Exception) -> JSONResponse:
    return error_response(422, "invalid_options", str(error))


async def invalid_query(request: Request, error: Exception) -> JSONResponse:
    return error_response(422, "invalid_request", str(error))


async def strategy_not_ready(request: Request, error: StrategyNotReady) -> JSONResponse:
    # The operator's files and endpoints by name only, never a credential (issue 24).
    public = get_pricing(request).redactor.public
    state = error.readiness
    details = [{"strategy": state.name, "status": state.status, "hint": public(state.hint)}]
    return error_response(409, "strategy_not_ready", public(str(error)) or "not ready", details)


async def products_refused(request: Request, error: ProductsRefused) -> JSONResponse:
    return error_response(422, "invalid_product", str(error), error.problems)


async def not_ready(request: Request, error: Exception) -> JSONResponse:
    return error_response(503, "not_ready", str(error), headers={"Retry-After": "1"})


async def unavailable(request: Request, error: Exception) -> JSONResponse:
    return error_response(503, "unavailable", str(error), headers={"Retry-After": "5"})


async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(error.status_code, "error")
    return error_response(error.status_code, code, str(error.detail), headers=error.headers)


async def internal(request: Request, error: Exception) -> JSONResponse:
    redacted = get_pricing(request).redact(str(error))
    log.error("unhandled %s on %s: %s", type(error).__name__, request.url.path, redacted)
    return error_response(500, "internal_error", "internal error; see the server log")


#: each exception the routes let through, and the handler that answers it
HANDLERS: dict[type[Exception], Callable[[Request, Any], Awaitable[JSONResponse]]] = {
    RequestValidationError: invalid_request,
    UnknownStrategy: unknown_strategy,
    InvalidOptions: invalid_options,
    InvalidQuery: invalid_query,
    StrategyNotReady: strategy_not_ready,
    ProductsRefused: products_refused,
    NotReady: not_ready,
    PricingUnavailable: unavailable,
    StarletteHTTPException: http_error,
    Exception: internal,
}


def add_error_handlers(app: FastAPI) -> None:
    """Every error as ``ErrorResponse`` JSON; never an exception's text that could hold a secret."""
    for exception, handler in HANDLERS.items():
        app.add_exception_handler(exception, handler)
