"""``constant``: the course's second baseline, the mean training price for everything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.dummy import DummyRegressor

from rag_pricer.query import Query
from rag_pricer.strategies.baselines.base import Baseline
from rag_pricer.strategies.baselines.storage import read_json, write_json


class ConstantBaseline(Baseline):
    """Predicts the mean price of the training items (scikit-learn's ``DummyRegressor``)."""

    kind = "constant"

    def __init__(self) -> None:
        pass

    def _fit(self, queries: list[Query], prices: np.ndarray) -> None:
        self.regressor_ = DummyRegressor(strategy="mean").fit(_no_features(len(queries)), prices)

    def _predict(self, queries: list[Query]) -> np.ndarray:
        return self.regressor_.predict(_no_features(len(queries)))

    def _save_state(self, directory: Path) -> None:
        # One number: JSON, readable and the same file as before DummyRegressor.
        write_json(directory / "constant.json", {"mean": float(np.ravel(self.regressor_.constant_)[0])})

    def _load_state(self, directory: Path) -> None:
        mean = float(read_json(directory / "constant.json")["mean"])
        self.regressor_ = DummyRegressor(strategy="constant", constant=mean).fit(_no_features(1), [mean])


def _no_features(n: int) -> np.ndarray:
    """The regressor reads no feature; scikit-learn wants a matrix with one row per query."""
    return np.zeros((n, 1))
