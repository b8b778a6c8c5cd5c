"""Prometheus metrics of the service (``prometheus-client``), served at ``GET /metrics``, and the
middleware that observes every request (its id, latency, route, strategy, status).

Each app has its own ``CollectorRegistry``, so two apps in one process (tests) never share or
clash over series. Labels are bounded: routes are the templates (``/v1/products/{product_id}``,
never an id), fallback reasons and LLM error kinds are short codes.
"""

from __future__ import annotations

import logging
import platform
import re
import time
from collections.abc import Callable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_pricer import __version__
from rag_pricer.service.request_ids import HEADER, RequestContext, current, request_id
from rag_pricer.service.schemas import EstimateResponse

log = logging.getLogger("rag_pricer.service.requests")

#: request latencies: from a cached knn answer (ms) to an LLM at its deadline (a minute)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: a fallback's text -> its reason code, first match wins (the service's own reasons first)
FALLBACK_REASONS: list[tuple[str, str]] = [
    ("did not answer within", "deadline"),
    ("returned an unusable price", "unusable_price"),
    ("knowledge base is unavailable", "store_unavailable"),
    ("LLM call failed", "llm_error"),
    ("has no usable price", "no_price_in_answer"),
    ("outside the plausible range", "implausible_answer"),
    ("fine-tuned model failed", "model_failed"),
    (" failed (", "strategy_failed"),
    ("is outside $", "out_of_bounds"),
]
LLM_ERROR = re.compile(r"LLM call failed \((\w+)\)")
CONTENT_TYPE = CONTENT_TYPE_LATEST


def fallback_reason(text: str) -> str:
    """The reason code of a fallback's text (``other`` for one not listed)."""
    return next((code for pattern, code in FALLBACK_REASONS if pattern in text), "other")


class ServiceMetrics:
    """The service's series; ``store_items`` is read when scraped."""

    def __init__(self, store_items: Callable[[], int | None] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        labels = ("method", "route", "strategy", "status")
        self.requests = Counter("rag_pricer_http_requests", "HTTP requests answered.", labels, registry=self.registry)
        self.latency = Histogram(
            "rag_pricer_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.estimates = Counter(
            "rag_pricer_estimates", "Estimates given, by the strategy asked for.", ("strategy",), registry=self.registry
        )
        self.fallbacks = Counter(
            "rag_pricer_fallbacks",
            "Estimates another method priced, by the strategy asked for and the reason.",
            ("strategy", "reason"),
            registry=self.registry,
        )
        self.llm_errors = Counter(
            "rag_pricer_llm_errors",
            "LLM calls that failed, by kind (timeout, rate_limit, ...).",
            ("kind",),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "rag_pricer_estimates_in_flight", "Descriptions being priced now.", registry=self.registry
        )
        self.feedback = Counter(
            "rag_pricer_feedback",
            "Feedbacks stored, by whether they matched an estimate.",
            ("matched",),
            registry=self.registry,
        )
        store = Gauge("rag_pricer_store_items", "Products in the knowledge base (last seen).", registry=self.registry)
        store.set_function(lambda: float(store_items() or 0))
        build = Info("rag_pricer_build", "The running rag-pricer.", registry=self.registry)
        build.info({"version": __version__, "python": platform.python_version()})

    def estimated(self, responses: Sequence[EstimateResponse]) -> None:
        """Count ``responses``: estimates, fallbacks by reason, LLM errors by kind."""
        for response in responses:
            self.estimates.labels(response.strategy).inc()
            reason = response.fallback_reason
            if reason:
                self.fallbacks.labels(response.strategy, fallback_reason(reason)).inc()
                for kind in LLM_ERROR.findall(reason):
                    self.llm_errors.labels(kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RouteTemplates:
    """The route template a request's path matches (``/v1/products/{product_id}``), the same
    text as in the OpenAPI document; ``unmatched`` for a path no route serves. Routers included
    in routers keep their own relative paths in FastAPI, so the templates come from the app's
    full paths (its OpenAPI paths and top-level routes), compiled once, on the first request."""

    def __init__(self) -> None:
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def of(self, scope: Scope) -> str:
        if self._compiled is None:
            self._compiled = self._compile(scope.get("app"))
        path = scope.get("path", "")
        return next((template for regex, template in self._compiled if regex.match(path)), "unmatched")

    @staticmethod
    def _compile(app: object) -> list[tuple[re.Pattern[str], str]]:
        templates: list[str] = []
        try:
            templates += list(app.openapi().get("paths", {}))  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - no schema: the top-level routes still name most paths
            pass
        for route in getattr(app, "routes", []):
            paths = [getattr(route, "path", None)]
            if isinstance(route, Mount):
                paths = [f"{route.path}/{{path:path}}"]
            elif hasattr(route, "effective_route_contexts"):  # FastAPI >= 0.16x: an included router
                paths = [getattr(c, "path_format", None) for c in route.effective_route_contexts()]
            templates += [p for p in paths if p and p not in templates]
        # a fixed path before a template that also matches it: /v1/products/batch, not /{product_id}
        templates.sort(key=lambda t: t.count("{"))
        return [(compile_path(t)[0], t) for t in templates]


class ObservedRequests:
    """ASGI middleware: a request id for each HTTP request (``X-Request-ID`` in and out, in the
    context of every log line), its latency and status in the metrics, and one log line
    (``rag_pricer.service.requests``) with route, status, latency, strategy and fallback."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = next((v.decode("latin-1") for k, v in scope["headers"] if k == HEADER.lower().encode()), None)
        context = RequestContext(request_id(offered))
        token = current.set(context)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER.lower().encode(), context.id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = self.routes.of(scope)
            labels = (scope["method"], route, context.strategy or "", str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(elapsed)
            log.info(
                "%s %s %d %.1f ms%s",
                scope["method"],
                route,
                status,
                elapsed * 1000,
                f" strategy={context.strategy}" + (" fallback" if context.fallback else "") if context.strategy else "",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 2),
                    "strategy": context.strategy,
                    "fallback": context.fallback,
                },
            )
            current.reset(token)
