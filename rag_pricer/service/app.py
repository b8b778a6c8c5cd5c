"""The FastAPI application: ``create_app()`` builds it; ``rag-pricer serve`` runs it with uvicorn."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_pricer import __version__
from rag_pricer.api import Estimator
from rag_pricer.pricing.readiness import Readiness, StrategyNotReady
from rag_pricer.pricing.registry import InvalidOptions, UnknownStrategy, registry
from rag_pricer.query import InvalidQuery
from rag_pricer.service.auth import BearerAuth
from rag_pricer.service.limits import BodyLimit
from rag_pricer.service.pricing import NotReady, PricingService, PricingUnavailable
from rag_pricer.service.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    EstimateRequest,
    EstimateResponse,
    HealthResponse,
    LLMOut,
    LLMsResponse,
    OptionOut,
    ProductOut,
    ReadyResponse,
    StrategiesResponse,
    StrategyOut,
)
from rag_pricer.settings import Settings

log = logging.getLogger("rag_pricer.service")

STATIC = FilePath(__file__).parent / "static"
#: request body limits in bytes: one description fits comfortably in 64 KiB; a batch gets more
MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_BODY_BYTES = 1024 * 1024

DESCRIPTION = """\
Estimate a product's price in USD from its description, with the comparable products behind it.

* `POST /v1/estimate` prices one description, `POST /v1/estimate/batch` several.
* `GET /v1/strategies` lists the pricing strategies, which are ready on this server and what to
  run for the others (`?check=true` also asks each LLM one short question).
* A strategy that is not ready (untrained models, no LLM, a missing extra) is refused with 409
  and the command that makes it ready, never answered by a silent fallback.
* `GET /v1/llms` lists the LLM backends a request may name in `llm`.
* `GET /v1/products/{id}` returns a stored product (e.g. a comparable) with its text.
* When the server has a token (`RAG_PRICER_API_TOKEN`), `/v1/*` need `Authorization: Bearer <token>`.
* An LLM strategy that fails, answers nonsense or overruns the deadline is answered with the
  `knn` estimate and `fallback: true` with the reason, never with a server error.
* Errors are JSON: `{"error": code, "message": text, "details": [...]}`.
"""

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token (only when the server has one)."},
    409: {"model": ErrorResponse, "description": "The strategy is not ready here; the message says what to run."},
    413: {"model": ErrorResponse, "description": "Body or batch too large."},
    422: {
        "model": ErrorResponse,
        "description": "Invalid input: empty description, wrong types, unknown strategy, an option the strategy lacks.",
    },
    503: {"model": ErrorResponse, "description": "Still loading, or the knowledge base is unavailable."},
}


def create_app(
    estimator: Estimator | None = None, settings: Settings | None = None, deadline_s: float | None = None
) -> FastAPI:
    """The HTTP service around ``estimator`` (default: one built from ``settings``).

    ``settings`` (default: the estimator's) sets the default strategy, token, CORS origins and
    batch limit; ``deadline_s`` (default: ``settings.llm_timeout_s``) bounds the time a
    strategy may take on one request before the ``knn`` fallback answers. Models and store
    load in the background at start-up; ``/readyz`` says when they are loaded.
    """
    if estimator is None:
        estimator = Estimator.from_settings(settings)
    settings = settings or estimator.settings
    secrets = [
        secret.get_secret_value()
        for source in (settings, estimator.settings)
        for secret in (source.api_token, source.openai_api_key)
        if secret is not None
    ]
    pricing = PricingService(
        estimator,
        deadline_s=deadline_s or settings.llm_timeout_s,
        default_strategy=settings.strategy,
        secrets=secrets,
        offered_llms=settings.service_llms,
    )
    auth = BearerAuth(settings.api_token)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pricing.start()
        try:
            yield
        finally:
            await pricing.stop()

    # FastAPIOffline: /docs and /redoc from assets shipped in the package, not from a CDN, so
    # the docs work on machines without internet access.
    app = FastAPIOffline(
        title="rag-pricer",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "pricing", "description": "Price descriptions."},
            {"name": "operations", "description": "Liveness and readiness probes."},
        ],
    )
    app.state.pricing = pricing
    _add_error_handlers(app, pricing)
    app.add_middleware(BodyLimit, default_bytes=MAX_BODY_BYTES, per_path={"/v1/estimate/batch": MAX_BATCH_BODY_BYTES})
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(auth)], tags=["pricing"], responses={401: ERRORS[401]})

    @v1.post(
        "/estimate",
        response_model=EstimateResponse,
        summary="Estimate the price of one description",
        description=(
            "Prices `description` with `strategy` (default: the server's) and returns the comparable "
            f"products used as evidence. Bodies over {MAX_BODY_BYTES // 1024} KiB are refused (413)."
        ),
        responses={k: ERRORS[k] for k in (409, 413, 422, 503)},
    )
    async def estimate(request: EstimateRequest) -> EstimateResponse:
        return await pricing.estimate(request)

    @v1.post(
        "/estimate/batch",
        response_model=BatchResponse,
        summary="Estimate the prices of several descriptions",
        description=(
            f"At most {settings.max_batch_items} items (more: 413); results come in the order of `items`. "
            "Items with the same strategy and options share one embedding pass. The request has one "
            "deadline whatever its size: LLM answers still missing at 80% of it are replaced by the "
            "knn price (`fallback: true`)."
        ),
        responses={k: ERRORS[k] for k in (409, 413, 422, 503)},
    )
    async def estimate_batch(batch: BatchRequest) -> BatchResponse:
        if len(batch.items) > settings.max_batch_items:
            raise StarletteHTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"a batch holds at most {settings.max_batch_items} items; got {len(batch.items)}",
            )
        started = time.perf_counter()
        items = await pricing.estimate_batch(batch.items)
        return BatchResponse(items=items, count=len(items), latency_ms=round((time.perf_counter() - started) * 1000, 2))

    @v1.get(
        "/strategies",
        response_model=StrategiesResponse,
        summary="List the pricing strategies and which are ready",
        description=(
            "Each strategy with `status` (`ready` or what it needs first), `ready` and `hint` (what to run). "
            "LLMs are looked at (model file, runtime, key) without being called, unless `check=true`: then each "
            "is asked one short question, which takes up to a few seconds per LLM."
        ),
    )
    async def strategies(
        check: bool = Query(False, description="Ask each LLM one short question to see that it answers."),
    ) -> StrategiesResponse:
        # A real question gets a fresh LLM with a short timeout; a listing reuses the server's LLMs.
        readiness = Readiness(estimator.settings, check=check, llm_factory=None if check else estimator.resources.llm)
        states = await run_in_threadpool(readiness.all)
        return StrategiesResponse(
            default=pricing.default_strategy,
            fallback=pricing.fallback,
            strategies=[
                StrategyOut(
                    name=s.name,
                    summary=s.summary,
                    needs=list(s.needs),
                    options=[OptionOut(**asdict(o)) for o in s.option_info()],
                    **{k: v for k, v in state.anonymised(estimator.settings).to_dict().items() if k != "name"},
                )
                for s, state in zip(registry.all(), states)
            ],
        )

    @v1.get(
        "/llms",
        response_model=LLMsResponse,
        summary="List the LLM backends",
        description="The backends an estimate request may name in `llm` (for the LLM strategies: `rag`, `zero-shot`).",
    )
    async def llms() -> LLMsResponse:
        from rag_pricer.llms import available_backends

        offered = pricing.offered_llms()
        return LLMsResponse(
            default=offered[0],
            llms=[
                LLMOut(name=b.name, summary=b.summary, default=b.name == offered[0])
                for b in available_backends()
                if b.name in offered
            ],
        )

    @v1.get(
        "/products/{product_id}",
        response_model=ProductOut,
        summary="One product of the knowledge base",
        description="The stored product `product_id` (the `id` of a comparable): title, price, category and its text.",
        responses={404: {"model": ErrorResponse, "description": "No product of that id."}, 503: ERRORS[503]},
    )
    async def product(product_id: Annotated[str, Path(max_length=200)]) -> ProductOut:
        found = await pricing.product(product_id)
        if found is None:
            raise StarletteHTTPException(status.HTTP_404_NOT_FOUND, f"no product {product_id!r} in the knowledge base")
        return ProductOut(
            id=found.id,
            title=found.title,
            price=found.price,
            category=found.category,
            split=found.split,
            description=found.document,
        )

    app.include_router(v1)

    @app.get("/healthz", response_model=HealthResponse, tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> HealthResponse:
        return HealthResponse(version=__version__, auth_required=auth.enabled)

    @app.get(
        "/readyz",
        response_model=ReadyResponse,
        tags=["operations"],
        summary="Readiness: embedding model and knowledge base loaded",
        description=(
            "200 once the models and the store are loaded and answered a warm-up query, and while the store "
            "is still there (checked on each call); 503 before, or if loading failed (retried every few seconds)."
        ),
        responses={503: {"model": ReadyResponse, "description": "Not ready (yet)."}},
    )
    async def readyz(response: Response) -> ReadyResponse:
        await pricing.refresh()
        ready = pricing.status == "ready"
        if not ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            response.headers["Retry-After"] = "1"
        return ReadyResponse(
            ready=ready,
            status=pricing.status,
            store_items=pricing.store_items,
            embedding_model=settings.embedding_model,
            default_strategy=pricing.default_strategy,
            detail=pricing.detail,
        )

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _error(
    status_code: int, code: str, message: str, details: list[dict[str, Any]] | None = None, **kw: Any
) -> JSONResponse:
    body = ErrorResponse(error=code, message=message, details=details).model_dump()
    return JSONResponse(body, status_code=status_code, **kw)


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def _add_error_handlers(app: FastAPI, pricing: PricingService) -> None:
    """Every error as ``ErrorResponse`` JSON; never an exception's text that could hold a secret."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # Keep loc, msg and type; drop "input" (it echoes the whole body) and "ctx".
        details = [{"loc": _location(e), "msg": _message(e), "type": e["type"]} for e in error.errors()]
        message = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details)
        return _error(422, "invalid_request", message or "invalid request", details)

    @app.exception_handler(UnknownStrategy)
    async def unknown_strategy(request: Request, error: UnknownStrategy) -> JSONResponse:
        return _error(422, "unknown_strategy", error.message, [{"known": registry.names()}])

    @app.exception_handler(InvalidOptions)
    async def invalid_options(request: Request, error: InvalidOptions) -> JSONResponse:
        return _error(422, "invalid_options", str(error))

    @app.exception_handler(InvalidQuery)
    async def invalid_query(request: Request, error: InvalidQuery) -> JSONResponse:
        return _error(422, "invalid_request", str(error))

    @app.exception_handler(StrategyNotReady)
    async def strategy_not_ready(request: Request, error: StrategyNotReady) -> JSONResponse:
        state = error.readiness
        details = [{"strategy": state.name, "status": state.status, "hint": state.hint}]
        return _error(409, "strategy_not_ready", pricing.redact(str(error)), details)

    @app.exception_handler(NotReady)
    async def not_ready(request: Request, error: NotReady) -> JSONResponse:
        return _error(503, "not_ready", str(error), headers={"Retry-After": "1"})

    @app.exception_handler(PricingUnavailable)
    async def unavailable(request: Request, error: PricingUnavailable) -> JSONResponse:
        return _error(503, "unavailable", str(error), headers={"Retry-After": "5"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(error.status_code, "error")
        return _error(error.status_code, code, str(error.detail), headers=error.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        log.error("unhandled %s on %s: %s", type(error).__name__, request.url.path, pricing.redact(str(error)))
        return _error(500, "internal_error", "internal error; see the server log")


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return "the body is not valid JSON"
    # pydantic prefixes our own validators' messages with "Value error, ": drop it.
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _location(error: dict[str, Any]) -> list[str | int]:
    # A JSON syntax error's location ends with a character offset, which reads like a field.
    loc = list(error.get("loc", ()))
    return loc[:1] if error.get("type") == "json_invalid" else loc
