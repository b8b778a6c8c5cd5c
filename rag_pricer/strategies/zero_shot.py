"""``zero-shot``: the LLM alone, prompted as in the course."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pydantic import Field

from rag_pricer.knowledge.retrieval import SearchOptions
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.pricing.registry import StrategyOptions, register
from rag_pricer.pricing.resources import Resources
from rag_pricer.query import Query
from rag_pricer.strategies.knn import DEFAULT_K, KnnPricer
from rag_pricer.strategies.prompting.llm_pricer import LLMPricer
from rag_pricer.strategies.prompting.prompts import PromptBudget, zero_shot_messages

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage


class ZeroShotPricer(LLMPricer):
    """Asks the LLM for the price of the description alone. Comparable products are retrieved
    only to bound the answer and to fall back on; the LLM never sees them."""

    budget: PromptBudget = PromptBudget()

    def messages(self, query: Query, neighbours: list[Neighbour]) -> list[BaseMessage]:
        return zero_shot_messages(query.text, prefill=self.llm.supports_prefill, budget=self.budget)

    def prompt_fingerprint(self) -> dict[str, Any]:
        return super().prompt_fingerprint() | {"budget": asdict(self.budget)}


class ZeroShotOptions(StrategyOptions):
    llm: str | None = Field(None, description="LLM spec (see `rag-pricer llms`); default: settings llm.")
    k: int = Field(DEFAULT_K, ge=1, le=100, description="Comparables retrieved to bound the answer and fall back on.")


@register(
    "zero-shot",
    "The LLM alone, asked the course's question (comparables only guard its answer).",
    needs=("llm", "store"),
    options=ZeroShotOptions,
    extra="llm",
)
def build(resources: Resources, options: ZeroShotOptions) -> ZeroShotPricer:
    pricer = ZeroShotPricer(resources.llm(options.llm), KnnPricer(resources.retriever, SearchOptions(k=options.k)))
    pricer.budget = PromptBudget.of(resources.settings.llm_max_prompt_tokens)
    return pricer
