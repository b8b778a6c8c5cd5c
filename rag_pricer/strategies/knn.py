"""``knn``: the price of the most similar stored products, no LLM."""

from __future__ import annotations

import numpy as np

from rag_pricer.estimate import Comparable, Estimate, Query
from rag_pricer.pricer import Pricer
from rag_pricer.registry import register
from rag_pricer.resources import Resources
from rag_pricer.retrieval import Retriever, SearchOptions
from rag_pricer.store import Neighbour

# Chosen on dev (500 items, store = train): see README "Choosing k and the weighting".
DEFAULT_K = 5
DEFAULT_POWER = 4.0


def weighted_price(neighbours: list[Neighbour], power: float = DEFAULT_POWER) -> float:
    """Similarity-weighted geometric mean of the neighbours' prices.

    Prices are log-normal-ish, so averaging logs keeps one $900 outlier from dragging a
    $20 estimate; ``similarity ** power`` lets the closest products dominate.
    """
    if not neighbours:
        raise ValueError("no neighbours to price from")
    sims = np.clip(np.array([n.similarity for n in neighbours]), 1e-6, None)
    weights = sims**power
    logs = np.log(np.array([n.price for n in neighbours]))
    return float(np.exp(np.sum(weights * logs) / np.sum(weights)))


def comparables(neighbours: list[Neighbour]) -> list[Comparable]:
    return [Comparable(n.id, n.title, n.price, round(n.similarity, 4), n.category) for n in neighbours]


class KnnPricer(Pricer):
    """Retrieves the ``k`` most similar products and averages their prices."""

    def __init__(self, retriever: Retriever, search: SearchOptions = SearchOptions(k=DEFAULT_K), power: float = DEFAULT_POWER) -> None:
        self.retriever = retriever
        self.search = search
        self.power = power

    def leaked_ids(self, ids: list[str]) -> list[str]:
        return self.retriever.store.contains_any(ids)

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        found = self.retriever.search_many(queries, self.search)
        return [self.from_neighbours(query, neighbours) for query, neighbours in zip(queries, found)]

    def from_neighbours(self, query: Query, neighbours: list[Neighbour]) -> Estimate:
        """The estimate from already retrieved ``neighbours`` (re-searching unfiltered if none)."""
        notes = []
        if not neighbours and self.search.where():
            # A filter that matches nothing should not leave the user without a price.
            neighbours = self.retriever.search(query, SearchOptions(k=self.search.k))
            notes.append("no product matched the filter; searched the whole store")
        return Estimate(
            price=weighted_price(neighbours, self.power),
            strategy=self.name,
            comparables=comparables(neighbours),
            notes=notes,
        )


@register("knn", "Similarity-weighted price of the k nearest stored products (no LLM).", needs=("store",))
def build(
    resources: Resources,
    k: int = DEFAULT_K,
    power: float = DEFAULT_POWER,
    category: str | None = None,
    min_price: float | None = None,
    max_price: float | None = None,
    mmr: bool = False,
) -> KnnPricer:
    search = SearchOptions(k=k, category=category, min_price=min_price, max_price=max_price, mmr=mmr)
    return KnnPricer(resources.retriever, search, power)
