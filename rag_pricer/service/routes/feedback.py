"""``POST /v1/feedback`` (the price a product really sold for) and ``GET /v1/monitor`` (how the
estimates fare against those prices).

Who may send feedback: the holders of the read token, the same callers who got the estimates
(feedback only reaches the journal and the monitor, which a reader could skew no more than by
lying about prices it never reports). On a server whose feedback joins the knowledge base
(``feedback_learns``), a feedback is a product write and needs the write token: otherwise any
reader could plant products that move every later estimate. With a token configured, feedback
is never open.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_pricer.feedback.journal import FeedbackJournal, UnknownEstimate
from rag_pricer.feedback.learning import as_item
from rag_pricer.feedback.monitor import monitor
from rag_pricer.items import InvalidRecord
from rag_pricer.service.dependencies import Credentials, PricingDep, SettingsDep
from rag_pricer.service.errors import ERRORS, documented
from rag_pricer.service.feedback_schemas import FeedbackRequest, FeedbackResponse, MonitorResponse
from rag_pricer.service.metrics import ServiceMetrics
from rag_pricer.service.schemas import ErrorResponse


def require_feedback_sender(request: Request, credentials: Credentials) -> None:
    """The read token, or the write token when feedback joins the knowledge base."""
    learns = request.app.state.settings.feedback_learns
    auth = request.app.state.write_auth if learns else request.app.state.read_auth
    auth.check(credentials)


def get_journal(request: Request) -> FeedbackJournal:
    """The journal; 403 on a server that keeps none (``feedback_path`` empty)."""
    journal: FeedbackJournal | None = request.app.state.journal
    if journal is None:
        raise StarletteHTTPException(status.HTTP_403_FORBIDDEN, "feedback is disabled on this server")
    return journal


JournalDep = Annotated[FeedbackJournal, Depends(get_journal)]
#: under ``/v1`` with the readers' dependency
router = APIRouter(tags=["feedback"])
#: its own auth (see the module's note): not under the readers' dependency
sending = APIRouter(tags=["feedback"], dependencies=[Depends(require_feedback_sender)])

FEEDBACK_ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERRORS[401],
    403: {
        "model": ErrorResponse,
        "description": "Feedback is disabled, or joins the knowledge base and the server has no write token.",
    },
    404: {"model": ErrorResponse, "description": "No estimate of that id was recorded by this server."},
    **documented(413, 422, 503),
}


@sending.post(
    "/feedback",
    response_model=FeedbackResponse,
    summary="Report the price a product really sold for",
    description=(
        "Names the estimate by its `id` (any estimate this server gave) or by its `description` (the latest "
        "estimate of that text; none: kept unmatched, not scored), with the price it sold for. Stored on disk "
        "(fsynced) before the answer. Needs the read token, or the write token when the server's feedback joins "
        "the knowledge base (`RAG_PRICER_FEEDBACK_LEARNS`)."
    ),
    responses=FEEDBACK_ERRORS,
)
async def feedback(
    body: FeedbackRequest, journal: JournalDep, pricing: PricingDep, settings: SettingsDep, request: Request
) -> FeedbackResponse:
    loop = asyncio.get_running_loop()
    try:
        stored = await loop.run_in_executor(None, journal.add, body.price, body.estimate_id, body.description)
    except UnknownEstimate:
        raise StarletteHTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no estimate {body.estimate_id!r} was recorded by this server: "
            "send an `id` it returned, or the description",
        ) from None
    metrics: ServiceMetrics = request.app.state.metrics
    metrics.feedback.labels(str(stored.matched).lower()).inc()
    product_id = None
    if settings.feedback_learns and stored.description:
        try:
            item = as_item(stored)
        except InvalidRecord:
            item = None  # a price ingestion refuses: scored, not learnt
        if item is not None:
            await pricing.write([item], [])
            product_id = item.id
            await loop.run_in_executor(None, journal.learned, stored.seq, item.id)
    return FeedbackResponse(
        seq=stored.seq,
        estimate_id=stored.estimate_id,
        strategy=stored.strategy,
        estimated=stored.price,
        error=None if stored.price is None else round(stored.price - stored.sold, 2),
        matched=stored.matched,
        product_id=product_id,
    )


@router.get(
    "/monitor",
    response_model=MonitorResponse,
    summary="How the estimates fare against the prices products sold for",
    description=(
        "Per strategy, over its latest `window` feedbacks and over all of them: MAE, hit rate (< $40 or < 20%), "
        "bias and the coverage of the ranges, with a warning when they held the sold price clearly less often "
        "than promised (one-sided binomial test at 5%)."
    ),
    responses={403: {"model": ErrorResponse, "description": "Feedback is disabled on this server."}},
)
async def monitoring(
    journal: JournalDep,
    settings: SettingsDep,
    window: Annotated[int | None, Query(ge=1, le=100_000, description="Latest feedbacks per strategy.")] = None,
) -> MonitorResponse:
    feedbacks = await asyncio.get_running_loop().run_in_executor(None, journal.feedbacks)
    report = monitor(feedbacks, window or settings.monitor_window)
    return MonitorResponse.model_validate(report.to_dict())
