"""``GET /v1/strategies`` and ``GET /v1/llms``: what a request may ask for on this server."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from rag_pricer.evaluation.scores import dev_scores, recommended
from rag_pricer.pricing.readiness import Readiness
from rag_pricer.pricing.registry import registry
from rag_pricer.service.checks import StrategyChecks
from rag_pricer.service.dependencies import PricingDep
from rag_pricer.service.schemas import LLMOut, LLMsResponse, OptionOut, StrategiesResponse, StrategyOut

router = APIRouter(tags=["pricing"])


@router.get(
    "/strategies",
    response_model=StrategiesResponse,
    summary="List the pricing strategies and which are ready",
    description=(
        "Each strategy with `status` (`ready` or what it needs first), `ready` and `hint` (what to run), its "
        "measured `dev_mae` and `dev_hit_rate` (null when none is on record) and whether it is `recommended`. "
        "LLMs are looked at (model file, runtime, key) without being called, unless `check=true`: then the "
        "server's own LLMs are each asked one short question, once for every caller, and the answer is kept "
        "for a minute (`llm_checked` says whether it was)."
    ),
)
async def strategies(
    request: Request,
    pricing: PricingDep,
    check: bool = Query(False, description="Ask each LLM one short question to see that it answers (cached)."),
) -> StrategiesResponse:
    estimator = pricing.estimator
    checks: StrategyChecks = request.app.state.checks
    # One shared, cached check on the server's own LLMs: never a runtime process per call.
    states = await checks.states() if check else None
    if states is None:  # a listing, or a check that did not finish in time: the LLMs are not asked
        readiness = Readiness(estimator.settings, llm_factory=estimator.resources.llm)
        states = await run_in_threadpool(readiness.all)
    scores = dev_scores(estimator.settings.models_dir, registry.names())
    best = recommended(scores, pricing.default_strategy, {state.name for state in states if state.ready})
    return StrategiesResponse(
        default=pricing.default_strategy,
        fallback=pricing.fallback,
        strategies=[
            StrategyOut(
                name=s.name,
                summary=s.summary,
                needs=list(s.needs),
                options=[OptionOut(**asdict(o)) for o in pricing.request_options(s)],
                **{k: v for k, v in pricing.public_state(state).to_dict().items() if k != "name"},
                dev_mae=scores[s.name].mae if s.name in scores else None,
                dev_hit_rate=scores[s.name].hit_rate if s.name in scores else None,
                recommended=s.name == best,
            )
            for s, state in zip(registry.all(), states)
        ],
    )


@router.get(
    "/llms",
    response_model=LLMsResponse,
    summary="List the LLM backends",
    description="The backends an estimate request may name in `llm` (for the LLM strategies: `rag`, `zero-shot`).",
)
async def llms(pricing: PricingDep) -> LLMsResponse:
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
