"""The FastAPI application: ``create_app()`` builds it; ``rag-pricer serve`` runs it with uvicorn.

``create_app`` only assembles: it builds the pricing service and the auth, puts them on
``app.state`` (the routes get them through ``service.dependencies``), adds the middleware and
error handlers, and includes one router per resource from ``service.routes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from rag_pricer import __version__
from rag_pricer.api import Estimator
from rag_pricer.feedback.journal import FeedbackJournal
from rag_pricer.redaction import Redactor, install_log_redaction
from rag_pricer.service.auth import BearerAuth
from rag_pricer.service.checks import StrategyChecks
from rag_pricer.service.dependencies import require_reader
from rag_pricer.service.errors import ERRORS, add_error_handlers
from rag_pricer.service.limits import MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES, BodyLimit
from rag_pricer.service.metrics import ObservedRequests, ServiceMetrics
from rag_pricer.service.openapi import install_openapi
from rag_pricer.service.pricing import PricingService
from rag_pricer.service.routes import estimates, feedback, health, metrics, page, products, strategies
from rag_pricer.service.routes.page import STATIC
from rag_pricer.settings import Settings

#: routes whose bodies hold many items, and get the larger body limit
BATCH_PATHS = {"/v1/estimate/batch": MAX_BATCH_BODY_BYTES, "/v1/products/batch": MAX_BATCH_BODY_BYTES}

DESCRIPTION = """\
Estimate a product's price in USD from its description, with the comparable products behind it.

* `POST /v1/estimate` prices one description, `POST /v1/estimate/batch` several.
* `GET /v1/strategies` lists the pricing strategies, which are ready on this server and what to
  run for the others (`?check=true` also asks each LLM one short question).
* A strategy that is not ready (untrained models, no LLM, a missing extra) is refused with 409
  and the command that makes it ready, never answered by a silent fallback.
* `GET /v1/llms` lists the LLM backends a request may name in `llm`.
* `GET /v1/products/{id}` returns a stored product (e.g. a comparable) with its text.
* `PUT` and `DELETE /v1/products/{id}` and `POST /v1/products/batch` add, replace and delete
  products while the service runs; they need the write token (`RAG_PRICER_WRITE_TOKEN`), and
  are refused (403) on a server that has none.
* Every estimate has an `id`: `POST /v1/feedback` with it (or the description) and the price the
  product really sold for; `GET /v1/monitor` says how each strategy fares against those prices.
* `GET /metrics` has the Prometheus metrics; every response carries `X-Request-ID` (the caller's,
  when it sent a valid one), which the server's log lines of that request show.
* When the server has a token (`RAG_PRICER_API_TOKEN`), `/v1/*` need `Authorization: Bearer <token>`.
* An LLM strategy that fails, answers nonsense or overruns the deadline is answered with the
  `knn` estimate and `fallback: true` with the reason, never with a server error.
* Errors are JSON: `{"error": code, "message": text, "details": [...]}`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load models and store in the background at start-up; stop the pricing pools at exit."""
    pricing: PricingService = app.state.pricing
    pricing.start()
    try:
        yield
    finally:
        await pricing.stop()


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
        for secret in (source.api_token, source.write_token, source.openai_api_key)
        if secret is not None
    ]
    redactor = Redactor.from_settings(settings, estimator.settings, extra=secrets)
    pricing = PricingService(
        estimator,
        deadline_s=deadline_s or settings.llm_timeout_s,
        default_strategy=settings.strategy,
        secrets=secrets,
        offered_llms=settings.service_llms,
        redactor=redactor,
    )
    # No log line of this process shows a credential, in clear or in Base64 (issue 24).
    install_log_redaction(redactor)

    # FastAPIOffline: /docs and /redoc from assets shipped in the package, not from a CDN, so
    # the docs work on machines without internet access.
    app = FastAPIOffline(
        title="rag-pricer",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # /v1/estimate/ is a 404, not a 307 to a location built from the client's Host header
        redirect_slashes=False,
        openapi_tags=[
            {"name": "pricing", "description": "Price descriptions."},
            {"name": "products", "description": "The products of the knowledge base."},
            {"name": "feedback", "description": "Prices products really sold for, and how the estimates fare."},
            {"name": "operations", "description": "Liveness and readiness probes."},
        ],
    )
    app.state.settings = settings
    app.state.pricing = pricing
    app.state.checks = StrategyChecks(estimator)
    app.state.read_auth = BearerAuth(settings.api_token)
    app.state.write_auth = BearerAuth(settings.write_token, required=True, purpose="writing products")
    app.state.journal = FeedbackJournal(settings.feedback_path) if settings.feedback_path is not None else None
    app.state.metrics = ServiceMetrics(store_items=lambda: pricing.store_items)
    add_error_handlers(app)
    app.add_middleware(BodyLimit, default_bytes=MAX_BODY_BYTES, per_path=BATCH_PATHS)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    # outermost: the request id is set before any other middleware logs, and 413s are counted
    app.add_middleware(ObservedRequests, metrics=app.state.metrics)

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_reader)], responses={401: ERRORS[401]})
    for router in (estimates.router, strategies.router, products.router, feedback.router):
        v1.include_router(router)
    app.include_router(v1)
    app.include_router(products.writes, prefix="/v1", responses={401: ERRORS[401]})
    app.include_router(feedback.sending, prefix="/v1")
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_openapi(
        app,
        read_token=app.state.read_auth.enabled,
        write_token=app.state.write_auth.enabled,
        offered_llms=pricing.offered_llms(),
    )
    return app
