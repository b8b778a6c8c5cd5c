"""What the LLM strategies share: retrieve, ask, parse, guard, and fall back to ``knn``."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rag_pricer.knowledge.store import Neighbour
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.values import Estimate
from rag_pricer.query import Query
from rag_pricer.strategies.knn import KnnPricer
from rag_pricer.strategies.prompting.answers import parse_price
from rag_pricer.strategies.prompting.guard import PriceGuard

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage


class LLMPricer(Pricer):
    """Prices with an LLM, and with the ``knn`` estimate from the same comparables whenever the
    LLM fails (error, timeout, no number, implausible number). It never returns 0 or raises
    for a bad answer; ``Estimate.fallback`` says why the knn price was used."""

    def __init__(self, llm: Any, knn: KnnPricer, guard: PriceGuard = PriceGuard()) -> None:
        self.llm = llm  # rag_pricer.llms.PricingLLM
        self.knn = knn
        self.guard = guard

    @abstractmethod
    def messages(self, query: Query, neighbours: list[Neighbour]) -> list[BaseMessage]:
        """The conversation sent to the LLM for ``query``."""

    def leaked_ids(self, ids: Sequence[str]) -> list[str]:
        return self.knn.leaked_ids(ids)

    def fingerprint(self) -> dict[str, Any]:
        """The comparables' retrieval, the LLM and its generation settings, the prompt and the guard."""
        return {
            "knn": self.knn.fingerprint(),
            "llm": self.llm.fingerprint(),
            "prompt": self.prompt_fingerprint(),
            "guard": asdict(self.guard),
        }

    def prompt_fingerprint(self) -> dict[str, Any]:
        """What shapes the prompt besides the query and its comparables (budgets, cuts)."""
        return {"kind": type(self).__name__}

    def llm_used(self) -> dict[str, Any] | None:
        return dict(self.llm.identity())

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        searched = self.knn.retriever.search_many(queries, self.knn.search)
        # The prompt, the guard's band and the fallback all see the same comparables.
        found = [self.knn.widened(q, n) for q, n in zip(queries, searched)]
        conversations = [self.messages(q, n) for q, (n, _notes) in zip(queries, found)]
        replies = self.llm.ask_many(conversations)
        return [self._decide(q, n, notes, r) for q, (n, notes), r in zip(queries, found, replies)]

    def _decide(self, query: Query, neighbours: list[Neighbour], notes: list[str], reply: Any) -> Estimate:
        estimate = self.knn.from_neighbours(query, neighbours)
        estimate.strategy = self.name
        estimate.notes.extend(notes)
        if isinstance(reply, Exception):
            estimate.fallback = f"LLM call failed ({getattr(reply, 'reason', type(reply).__name__)}): knn price used"
            return estimate
        estimate.llm_answer = reply.text
        estimate.usage = reply.usage
        return self.guard.settle(estimate, parse_price(reply.text), neighbours)
