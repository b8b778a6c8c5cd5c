"""``FeatureBuilder``: the course's engineered features of a product, as a numeric matrix."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Self

import numpy as np

from rag_pricer.query import Query
from rag_pricer.strategies.baselines.details import brand_of, parse_rank, parse_weight

UNKNOWN_CATEGORY = "unknown"
BASE_FEATURES = ("weight_lb", "weight_missing", "rank", "rank_missing", "text_length", "top_brand")


class FeatureBuilder:
    """Item weight (pounds), mean Best Sellers Rank, description length, is-top-brand and a
    one-hot category, each missing weight or rank imputed with its training mean (with a flag
    saying it was missing, as the course's ``weight_unknown``).

    Top brands are learned: among brands with at least ``min_brand_items`` training items, the
    ``n_top_brands`` of highest mean price (the course hard-coded nine electronics brands; this
    data spans appliances, software, instruments, ...). Categories are those of the training
    items, a missing one counting as ``unknown``; an unseen category gets all zeros.
    """

    def __init__(self, n_top_brands: int = 50, min_brand_items: int = 5) -> None:
        self.n_top_brands = n_top_brands
        self.min_brand_items = min_brand_items

    def fit(self, queries: list[Query], prices: np.ndarray) -> Self:
        details = [query.details_dict() for query in queries]
        weights = [w for w in map(_weight, details) if w is not None]
        ranks = [r for r in map(_rank, details) if r is not None]
        self.weight_mean_ = float(np.mean(weights)) if weights else 0.0
        self.rank_mean_ = float(np.mean(ranks)) if ranks else 0.0
        by_brand: dict[str, list[float]] = defaultdict(list)
        for parsed, price in zip(details, prices):
            brand = brand_of(parsed)
            if brand:
                by_brand[brand].append(float(price))
        frequent = {b: float(np.mean(p)) for b, p in by_brand.items() if len(p) >= self.min_brand_items}
        ranked = sorted(frequent, key=lambda b: (-frequent[b], b))
        self.top_brands_ = sorted(ranked[: self.n_top_brands])
        self.categories_ = sorted({query.category or UNKNOWN_CATEGORY for query in queries})
        self.feature_names_ = feature_names(self.categories_)
        return self

    def transform(self, queries: list[Query]) -> np.ndarray:
        top_brands = set(self.top_brands_)
        column = {c: i for i, c in enumerate(self.categories_)}
        rows = np.zeros((len(queries), len(self.feature_names_)))
        for row, query in zip(rows, queries):
            details = query.details_dict()
            weight, rank = _weight(details), _rank(details)
            row[: len(BASE_FEATURES)] = (
                self.weight_mean_ if weight is None else weight,
                weight is None,
                self.rank_mean_ if rank is None else rank,
                rank is None,
                len(query.text),
                brand_of(details) in top_brands,
            )
            category = column.get(query.category or UNKNOWN_CATEGORY)
            if category is not None:
                row[len(BASE_FEATURES) + category] = 1.0
        return rows

    def fit_transform(self, queries: list[Query], prices: np.ndarray) -> np.ndarray:
        return self.fit(queries, prices).transform(queries)

    def state(self) -> dict[str, Any]:
        """Parameters and learned attributes as JSON-ready data."""
        return {
            "params": {"n_top_brands": self.n_top_brands, "min_brand_items": self.min_brand_items},
            "weight_mean": self.weight_mean_,
            "rank_mean": self.rank_mean_,
            "top_brands": self.top_brands_,
            "categories": self.categories_,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureBuilder:
        builder = cls(**state["params"])
        builder.weight_mean_ = float(state["weight_mean"])
        builder.rank_mean_ = float(state["rank_mean"])
        builder.top_brands_ = list(state["top_brands"])
        builder.categories_ = list(state["categories"])
        builder.feature_names_ = feature_names(builder.categories_)
        return builder


def _weight(details: dict[str, Any]) -> float | None:
    return parse_weight(details.get("Item Weight"))


def _rank(details: dict[str, Any]) -> float | None:
    return parse_rank(details.get("Best Sellers Rank"))


def feature_names(categories: list[str]) -> list[str]:
    return [*BASE_FEATURES, *(f"category={c}" for c in categories)]
