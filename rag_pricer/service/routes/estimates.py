"""``POST /v1/estimate`` and ``POST /v1/estimate/batch``: pricing descriptions."""

from __future__ import annotations

import time

from fastapi import APIRouter, status
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_pricer.service.dependencies import PricingDep, SettingsDep
from rag_pricer.service.errors import documented
from rag_pricer.service.limits import MAX_BODY_BYTES
from rag_pricer.service.schemas import BatchRequest, BatchResponse, EstimateRequest, EstimateResponse

router = APIRouter(tags=["pricing"])


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
async def estimate(request: EstimateRequest, pricing: PricingDep) -> EstimateResponse:
    return await pricing.estimate(request)


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
async def estimate_batch(batch: BatchRequest, pricing: PricingDep, settings: SettingsDep) -> BatchResponse:
    if len(batch.items) > settings.max_batch_items:
        raise StarletteHTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a batch holds at most {settings.max_batch_items} items; got {len(batch.items)}",
        )
    started = time.perf_counter()
    items = await pricing.estimate_batch(batch.items)
    return BatchResponse(items=items, count=len(items), latency_ms=round((time.perf_counter() - started) * 1000, 2))
