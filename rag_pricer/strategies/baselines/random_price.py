"""``random``: the course's first baseline, a uniformly random whole-dollar price."""

from __future__ import annotations

import hashlib

import numpy as np

from rag_pricer.query import Query
from rag_pricer.strategies.baselines.base import Baseline


class RandomBaseline(Baseline):
    """A whole-dollar price drawn uniformly from ``[low, high)``, as the course's
    ``random.randrange(1, 1000)``.

    The draw is seeded by ``seed`` and the text itself, so the same description always gets the
    same price, whatever the batch, its order or the process: a baseline run can be repeated.
    It learns nothing from its training items.
    """

    kind = "random"
    learns = False

    def __init__(self, low: int = 1, high: int = 1000, seed: int = 42) -> None:
        self.low = low
        self.high = high
        self.seed = seed

    def _fit(self, queries: list[Query], prices: np.ndarray) -> None:
        if not 0 < self.low < self.high:
            raise ValueError(f"need 0 < low < high, got low={self.low}, high={self.high}")

    def _predict(self, queries: list[Query]) -> np.ndarray:
        return np.array([self._draw(query.text) for query in queries], dtype=float)

    def _draw(self, text: str) -> int:
        digest = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
        return int(np.random.default_rng([self.seed, digest]).integers(self.low, self.high))
