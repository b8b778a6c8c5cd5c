"""``zero-shot``: the LLM alone, prompted as in the course."""

from __future__ import annotations

from langchain_core.messages import BaseMessage

from rag_pricer.query import Query
from rag_pricer.strategies.prompting.prompts import PromptBudget, zero_shot_messages
from rag_pricer.pricing.registry import register
from rag_pricer.pricing.resources import Resources
from rag_pricer.knowledge.retrieval import SearchOptions
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.strategies.knn import DEFAULT_K, KnnPricer
from rag_pricer.strategies.prompting.llm_pricer import LLMPricer


class ZeroShotPricer(LLMPricer):
    """Asks the LLM for the price of the description alone. Comparable products are retrieved
    only to bound the answer and to fall back on; the LLM never sees them."""

    budget: PromptBudget = PromptBudget()

    def messages(self, query: Query, neighbours: list[Neighbour]) -> list[BaseMessage]:
        return zero_shot_messages(query.text, prefill=self.llm.supports_prefill, budget=self.budget)


@register("zero-shot", "The LLM alone, asked the course's question (comparables only guard its answer).", needs=("llm", "store"))
def build(resources: Resources, llm: str | None = None, k: int = DEFAULT_K) -> ZeroShotPricer:
    pricer = ZeroShotPricer(resources.llm(llm), KnnPricer(resources.retriever, SearchOptions(k=k)))
    pricer.budget = PromptBudget.of(resources.settings.llm_max_prompt_tokens)
    return pricer
