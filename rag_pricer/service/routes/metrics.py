"""``GET /metrics``: the service's Prometheus metrics (text exposition format)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from rag_pricer.service.dependencies import require_reader
from rag_pricer.service.errors import ERRORS
from rag_pricer.service.metrics import CONTENT_TYPE, ServiceMetrics

#: behind the read token when one is set (scrape with Prometheus' `authorization: {credentials: ...}`)
router = APIRouter(tags=["operations"], dependencies=[Depends(require_reader)])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Requests and their latency by route template, strategy and status; estimates, fallbacks by reason, "
        "LLM errors by kind, estimates in flight, feedbacks, products in the knowledge base, build info. "
        "Needs the read token when the server has one."
    ),
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."}, 401: ERRORS[401]},
)
async def metrics(request: Request) -> Response:
    service: ServiceMetrics = request.app.state.metrics
    return Response(service.render(), media_type=CONTENT_TYPE)
