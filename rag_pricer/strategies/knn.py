"""``knn``: the price of the most similar stored products, no LLM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Literal

import numpy as np
from pydantic import Field

from rag_pricer.knowledge.retrieval import Retriever, SearchOptions
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.registry import StrategyOptions, register
from rag_pricer.pricing.resources import Resources
from rag_pricer.pricing.values import Comparable, Estimate
from rag_pricer.query import Query

# Chosen on dev (500 items, store = train) with scripts/tune_knn.py: see docs/results.md.
DEFAULT_K = 7
DEFAULT_POWER = 4.0
Mean = Literal["arithmetic", "geometric"]
DEFAULT_MEAN: Mean = "arithmetic"
MEANS = ("arithmetic", "geometric")


def weighted_price(neighbours: list[Neighbour], power: float = DEFAULT_POWER, mean: str = DEFAULT_MEAN) -> float:
    """Similarity-weighted mean of the neighbours' prices, ``arithmetic`` or ``geometric``.

    ``similarity ** power`` lets the closest products dominate. The geometric mean (of logs)
    resists one expensive outlier but pulls estimates down; on dev the arithmetic mean scored
    better on MAE and RMSLE alike (see scripts/tune_knn.py).
    """
    if not neighbours:
        raise ValueError("no neighbours to price from")
    if mean not in MEANS:
        raise ValueError(f"mean must be one of {MEANS}, not {mean!r}")
    weights = np.clip(np.array([n.similarity for n in neighbours]), 1e-6, None) ** power
    prices = np.array([n.price for n in neighbours])
    if mean == "geometric":
        return float(np.exp(np.sum(weights * np.log(prices)) / np.sum(weights)))
    return float(np.sum(weights * prices) / np.sum(weights))


def comparables(neighbours: list[Neighbour]) -> list[Comparable]:
    return [Comparable(n.id, n.title, n.price, round(n.similarity, 4), n.category) for n in neighbours]


class KnnPricer(Pricer):
    """Retrieves the ``k`` most similar products and averages their prices."""

    def __init__(
        self,
        retriever: Retriever,
        search: SearchOptions = SearchOptions(k=DEFAULT_K),
        power: float = DEFAULT_POWER,
        mean: str = DEFAULT_MEAN,
    ) -> None:
        if mean not in MEANS:
            raise ValueError(f"mean must be one of {MEANS}, not {mean!r}")
        self.retriever = retriever
        self.search = search
        self.power = power
        self.mean = mean

    def leaked_ids(self, ids: Sequence[str]) -> list[str]:
        return self.retriever.store.contains_any(ids)

    def fingerprint(self) -> dict[str, Any]:
        search = asdict(self.search)
        return {"retrieval": self.retriever.fingerprint(), "search": search, "power": self.power, "mean": self.mean}

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        found = self.retriever.search_many(queries, self.search)
        return [self.from_neighbours(query, neighbours) for query, neighbours in zip(queries, found)]

    def widened(self, query: Query, neighbours: list[Neighbour]) -> tuple[list[Neighbour], list[str]]:
        """``neighbours`` with no notes, or, when a filter matched nothing, the nearest products
        of the whole store and a note saying so: a filter must not leave a query without a price,
        nor an LLM strategy without the comparables that bound its answer."""
        if neighbours or not self.search.where():
            return neighbours, []
        return self.retriever.search(query, SearchOptions(k=self.search.k)), [
            "no product matched the filter; searched the whole store"
        ]

    def from_neighbours(self, query: Query, neighbours: list[Neighbour]) -> Estimate:
        """The estimate from already retrieved ``neighbours`` (re-searching unfiltered if none)."""
        neighbours, notes = self.widened(query, neighbours)
        return Estimate(
            price=weighted_price(neighbours, self.power, self.mean),
            strategy=self.name,
            comparables=comparables(neighbours),
            notes=notes,
        )


class SearchFields(StrategyOptions):
    """The options of every strategy that retrieves comparables: how many, and which."""

    k: int = Field(DEFAULT_K, ge=1, le=100, description="Comparable products to retrieve.")
    category: str | None = Field(None, description="Only products of this category (a metadata filter).")
    min_price: float | None = Field(None, ge=0, description="Only products priced at least this (USD).")
    max_price: float | None = Field(None, gt=0, description="Only products priced at most this (USD).")
    mmr: bool = Field(False, description="Diversify the comparables (maximal marginal relevance).")

    def search(self) -> SearchOptions:
        return SearchOptions(
            k=self.k, mmr=self.mmr, category=self.category, min_price=self.min_price, max_price=self.max_price
        )


class KnnOptions(SearchFields):
    power: float = Field(DEFAULT_POWER, ge=0, description="Exponent of the similarity weights.")
    mean: Mean = Field(DEFAULT_MEAN, description="How the weighted prices are averaged.")


@register(
    "knn", "Similarity-weighted price of the k nearest stored products (no LLM).", needs=("store",), options=KnnOptions
)
def build(resources: Resources, options: KnnOptions) -> KnnPricer:
    return KnnPricer(resources.retriever, options.search(), options.power, options.mean)
