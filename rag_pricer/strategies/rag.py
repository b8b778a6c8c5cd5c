"""``rag`` (the core): similar products and their prices as few-shot context for the LLM."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pydantic import Field

from rag_pricer.knowledge.store import Neighbour
from rag_pricer.pricing.registry import register
from rag_pricer.pricing.resources import Resources
from rag_pricer.query import Query
from rag_pricer.strategies.knn import KnnPricer, SearchFields
from rag_pricer.strategies.prompting.guard import PriceGuard
from rag_pricer.strategies.prompting.llm_pricer import LLMPricer
from rag_pricer.strategies.prompting.prompts import PromptBudget, rag_messages

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage


class RagPricer(LLMPricer):
    """Retrieves the ``k`` most similar products (never the query item itself) and asks the LLM
    for the price with them and their prices as context. ``context_chars`` cuts each
    comparable's description (None: whole, as in the course)."""

    def __init__(
        self,
        llm: Any,
        knn: KnnPricer,
        context_chars: int | None = None,
        budget: PromptBudget = PromptBudget(),
        guard: PriceGuard = PriceGuard(),
    ) -> None:
        super().__init__(llm, knn, guard)
        self.context_chars = context_chars
        self.budget = budget

    def messages(self, query: Query, neighbours: list[Neighbour]) -> list[BaseMessage]:
        return rag_messages(
            query.text,
            neighbours,
            prefill=self.llm.supports_prefill,
            context_chars=self.context_chars,
            budget=self.budget,
        )

    def prompt_fingerprint(self) -> dict[str, Any]:
        return super().prompt_fingerprint() | {"context_chars": self.context_chars, "budget": asdict(self.budget)}


class RagOptions(SearchFields):
    k: int = Field(5, ge=1, le=100, description="Comparable products in the prompt.")
    llm: str | None = Field(None, description="LLM spec (see `rag-pricer llms`); default: settings llm.")
    context_chars: int | None = Field(None, ge=1, description="Cut each comparable's description to this length.")
    copy_guard: bool = Field(
        True, description="Use the knn price when the answer copies a comparable's price that the others contradict."
    )


@register(
    "rag",
    "Retrieval-augmented LLM: the k most similar products and their prices as context.",
    needs=("llm", "store"),
    options=RagOptions,
    extra="llm",
)
def build(resources: Resources, options: RagOptions) -> RagPricer:
    budget = PromptBudget.of(resources.settings.llm_max_prompt_tokens)
    knn = KnnPricer(resources.retriever, options.search())
    guard = PriceGuard() if options.copy_guard else PriceGuard(copy_z=None)
    return RagPricer(resources.llm(options.llm), knn, options.context_chars, budget, guard)
