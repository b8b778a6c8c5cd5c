"""``POST /v1/estimate`` and ``POST /v1/estimate/batch``: pricing descriptions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from fastapi import APIRouter, Request, status
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_pricer.feedback.journal import FeedbackJournal, Given
from rag_pricer.service.dependencies import PricingDep, SettingsDep
from rag_pricer.service.errors import documented
from rag_pricer.service.limits import MAX_BODY_BYTES
from rag_pricer.service.metrics import ServiceMetrics
from rag_pricer.service.request_ids import note
from rag_pricer.service.schemas import BatchRequest, BatchResponse, EstimateRequest, EstimateResponse

router = APIRouter(tags=["pricing"])
log = logging.getLogger("rag_pricer.service")


async def priced(request: Request, pricing: PricingDep, bodies: Sequence[EstimateRequest]) -> list[EstimateResponse]:
    """``bodies`` priced, counted in the metrics and the request's log line, and recorded in the
    journal (so that feedback can name them); a journal that cannot be written costs the
    estimates nothing but a warning (their feedback is then refused as unknown)."""
    metrics: ServiceMetrics = request.app.state.metrics
    metrics.in_flight.inc(len(bodies))
    try:
        responses = await pricing.estimate_batch(bodies)
    finally:
        metrics.in_flight.dec(len(bodies))
    metrics.estimated(responses)
    for response in responses:
        note(response.strategy, response.fallback)
    journal: FeedbackJournal | None = request.app.state.journal
    if journal is not None:
        given = [
            Given(r.id, r.strategy, r.price, r.low, r.high, r.coverage, r.fallback, b.description)
            for b, r in zip(bodies, responses)
        ]
        try:
            await asyncio.get_running_loop().run_in_executor(None, journal.record, given)
        except Exception as error:  # sqlite3.Error, OSError: the estimate still stands
            log.warning("estimates not recorded in the feedback journal: %s: %s", type(error).__name__, error)
    return responses


@router.post(
    "/estimate",
    response_model=EstimateResponse,
    summary="Estimate the price of one description",
    description=(
        "Prices `description` with `strategy` (default: the server's) and returns the comparable "
        f"products used as evidence. Bodies over {MAX_BODY_BYTES // 1024} KiB are refused (413)."
    ),
    responses=documented(409, 413, 422, 503),
)
async def estimate(body: EstimateRequest, pricing: PricingDep, request: Request) -> EstimateResponse:
    return (await priced(request, pricing, [body]))[0]


@router.post(
    "/estimate/batch",
    response_model=BatchResponse,
    summary="Estimate the prices of several descriptions",
    description=(
        "At most the server's `max_batch_items` items (setting `RAG_PRICER_MAX_BATCH_ITEMS`, default 64; "
        "more: 413); results come in the order of `items`. Items with the same strategy and options share "
        "one embedding pass. The request has one deadline whatever its size: LLM answers still missing at "
        "80% of it are replaced by the knn price (`fallback: true`)."
    ),
    responses=documented(409, 413, 422, 503),
)
async def estimate_batch(
    batch: BatchRequest, pricing: PricingDep, settings: SettingsDep, request: Request
) -> BatchResponse:
    if len(batch.items) > settings.max_batch_items:
        raise StarletteHTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a batch holds at most {settings.max_batch_items} items; got {len(batch.items)}",
        )
    started = time.perf_counter()
    items = await priced(request, pricing, batch.items)
    return BatchResponse(items=items, count=len(items), latency_ms=round((time.perf_counter() - started) * 1000, 2))
