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
from rag_pricer.strategies.neighbour_prices import similarity_weights, trimmed, weighted_median

# Chosen on dev (500 items, store = train) with scripts/tune_knn.py: see docs/results.md.
DEFAULT_K = 7
DEFAULT_POWER = 4.0
Mean = Literal["arithmetic", "geometric", "median", "trimmed"]
DEFAULT_MEAN: Mean = "arithmetic"
MEANS = ("arithmetic", "geometric", "median", "trimmed")


def weighted_price(neighbours: list[Neighbour], power: float = DEFAULT_POWER, mean: str = DEFAULT_MEAN) -> float:
    """The neighbours' prices combined with weights ``similarity ** power`` (the closest
    products dominate), by ``mean``:

    - ``arithmetic`` (the default): the weighted mean price;
    - ``geometric``: the weighted mean of logs; resists one expensive outlier but pulls
      estimates down (on dev it scored worse on MAE and RMSLE alike, see scripts/tune_knn.py);
    - ``median``: the weighted median price, which one accessory among the comparables
      (a $9.99 power adapter beside $60 pedals) cannot move;
    - ``trimmed``: the weighted mean of the prices within ``TRIM_FACTOR`` (3x) of the weighted
      median, i.e. without the prices the rest contradict.

    Measured on the 500 dev items in docs/accuracy.md (the default stays unless dev says otherwise).
    """
    if not neighbours:
        raise ValueError("no neighbours to price from")
    if mean not in MEANS:
        raise ValueError(f"mean must be one of {MEANS}, not {mean!r}")
    if mean == "trimmed":
        neighbours = trimmed(neighbours, power)
    weights = similarity_weights(neighbours, power)
    prices = np.array([n.price for n in neighbours])
    if mean == "geometric":
        return float(np.exp(np.sum(weights * np.log(prices)) / np.sum(weights)))
    if mean == "median":
        return weighted_median(prices, weights)
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

    def trained_ids(self, ids: Sequence[str]) -> list[str]:
        """None: knn learns nothing, and the retriever never returns the item asked about."""
        return []

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
    mean: Mean = Field(
        DEFAULT_MEAN,
        description="How the weighted prices are combined: arithmetic, geometric, median, or trimmed "
        "(the arithmetic mean without the prices the rest contradict).",
    )


@register(
    "knn", "Similarity-weighted price of the k nearest stored products (no LLM).", needs=("store",), options=KnnOptions
)
def build(resources: Resources, options: KnnOptions) -> KnnPricer:
    return KnnPricer(resources.retriever, options.search(), options.power, options.mean)
