"""``features``: the course's linear regression on engineered features of the details."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.linear_model import LinearRegression

from rag_pricer.query import Query
from rag_pricer.strategies.baselines.base import Baseline
from rag_pricer.strategies.baselines.features import FeatureBuilder
from rag_pricer.strategies.baselines.storage import load_estimator, read_json, save_estimator, write_json


class FeatureRegressionBaseline(Baseline):
    """``LinearRegression`` of the price on ``FeatureBuilder`` features (weight, rank, length,
    top brand, category). Queries without details (free text) get imputed features."""

    kind = "features"
    uses_details = True

    def __init__(self, n_top_brands: int = 50, min_brand_items: int = 5) -> None:
        self.n_top_brands = n_top_brands
        self.min_brand_items = min_brand_items

    def _fit(self, queries: list[Query], prices: np.ndarray) -> None:
        self.features_ = FeatureBuilder(self.n_top_brands, self.min_brand_items)
        self.regressor_ = LinearRegression().fit(self.features_.fit_transform(queries, prices), prices)

    def _predict(self, queries: list[Query]) -> np.ndarray:
        return self.regressor_.predict(self.features_.transform(queries))

    def _save_state(self, directory: Path) -> None:
        write_json(directory / "features.json", self.features_.state())
        save_estimator(self.regressor_, directory / "regressor.skops")

    def _load_state(self, directory: Path) -> None:
        self.features_ = FeatureBuilder.from_state(read_json(directory / "features.json"))
        self.regressor_ = load_estimator(directory / "regressor.skops")
