"""``constant``: the course's second baseline, the mean training price for everything."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag_pricer.strategies.baselines.base import Baseline
from rag_pricer.strategies.baselines.listing import Listing
from rag_pricer.strategies.baselines.storage import read_json, write_json


class ConstantBaseline(Baseline):
    """Predicts the mean price of the training items."""

    kind = "constant"

    def __init__(self) -> None:
        pass

    def _fit(self, listings: list[Listing], prices: np.ndarray) -> None:
        self.mean_ = float(prices.mean())

    def _predict(self, listings: list[Listing]) -> np.ndarray:
        return np.full(len(listings), self.mean_)

    def _save_state(self, directory: Path) -> None:
        write_json(directory / "constant.json", {"mean": self.mean_})

    def _load_state(self, directory: Path) -> None:
        self.mean_ = float(read_json(directory / "constant.json")["mean"])
