"""``/healthz`` (liveness) and ``/readyz`` (readiness): the probes, open without a token."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from rag_pricer import __version__
from rag_pricer.service.dependencies import PricingDep, ReadAuthDep, SettingsDep
from rag_pricer.service.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness: the process answers")
async def healthz(auth: ReadAuthDep) -> HealthResponse:
    return HealthResponse(version=__version__, auth_required=auth.enabled)


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Readiness: embedding model and knowledge base loaded",
    description=(
        "200 once the models and the store are loaded and answered a warm-up query, and while the store "
        "is still there (checked on each call); 503 before, or if loading failed (retried every few seconds)."
    ),
    responses={503: {"model": ReadyResponse, "description": "Not ready (yet)."}},
)
async def readyz(response: Response, pricing: PricingDep, settings: SettingsDep) -> ReadyResponse:
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
