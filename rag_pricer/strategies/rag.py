"""``rag`` (the core): similar products and their prices as few-shot context for the LLM."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage

from rag_pricer.query import Query
from rag_pricer.strategies.prompting.prompts import PromptBudget, rag_messages
from rag_pricer.pricing.registry import register
from rag_pricer.pricing.resources import Resources
from rag_pricer.knowledge.retrieval import SearchOptions
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.strategies.knn import KnnPricer
from rag_pricer.strategies.prompting.llm_pricer import LLMPricer


class RagPricer(LLMPricer):
    """Retrieves the ``k`` most similar products (never the query item itself) and asks the LLM
    for the price with them and their prices as context. ``context_chars`` cuts each
    comparable's description (None: whole, as in the course)."""

    def __init__(self, llm: Any, knn: KnnPricer, context_chars: int | None = None, budget: PromptBudget = PromptBudget()) -> None:
        super().__init__(llm, knn)
        self.context_chars = context_chars
        self.budget = budget

    def messages(self, query: Query, neighbours: list[Neighbour]) -> list[BaseMessage]:
        return rag_messages(
            query.text, neighbours, prefill=self.llm.supports_prefill, context_chars=self.context_chars, budget=self.budget
        )


@register(
    "rag",
    "Retrieval-augmented LLM: the k most similar products and their prices as context.",
    needs=("llm", "store"),
)
def build(
    resources: Resources,
    llm: str | None = None,
    k: int = 5,
    category: str | None = None,
    min_price: float | None = None,
    max_price: float | None = None,
    mmr: bool = False,
    context_chars: int | None = None,
) -> RagPricer:
    search = SearchOptions(k=k, category=category, min_price=min_price, max_price=max_price, mmr=mmr)
    budget = PromptBudget.of(resources.settings.llm_max_prompt_tokens)
    return RagPricer(resources.llm(llm), KnnPricer(resources.retriever, search), context_chars, budget)
