"""How strong an estimate's retrieval evidence is: cheap signals of its comparables.

The top similarity says whether the store knows anything like the item (a near-duplicate is
~0.9, unrelated text ~0.3); the similarity-weighted spread of the comparables' log prices says
whether what it knows agrees on a price. Ranges (``pricing.ranges``) widen with both, and the
confidence level (``pricing.confidence``) is read from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rag_pricer.pricing.values import Comparable

#: signals computed from an estimate's comparables
SIGNALS = ("top_similarity", "log_spread", "log_median")


def comparable_signals(comparables: Sequence[Comparable]) -> dict[str, float]:
    """Top similarity, similarity-weighted std and median of log prices of ``comparables``
    (``{}`` when there are none)."""
    if not comparables:
        return {}
    prices = np.log(np.clip([c.price for c in comparables], 0.01, None))
    weights = np.clip([c.similarity for c in comparables], 1e-6, None)
    mean = np.average(prices, weights=weights)
    spread = float(np.sqrt(np.average((prices - mean) ** 2, weights=weights)))
    return {
        "top_similarity": float(max(c.similarity for c in comparables)),
        "log_spread": spread,
        "log_median": float(np.median(prices)),
    }


@dataclass(frozen=True)
class Evidence:
    """The signals that ranges read, one value per item: ``top_similarity`` and ``log_spread``."""

    top_similarity: npt.NDArray[np.float64]
    log_spread: npt.NDArray[np.float64]

    @classmethod
    def of(cls, signals: Sequence[Mapping[str, float]]) -> Evidence | None:
        """From each item's ``comparable_signals``; ``None`` when any item has none (a strategy
        that shows no comparables)."""
        if not signals or any("top_similarity" not in s or "log_spread" not in s for s in signals):
            return None
        return cls(
            np.array([s["top_similarity"] for s in signals], dtype=float),
            np.array([s["log_spread"] for s in signals], dtype=float),
        )

    @classmethod
    def of_estimate(cls, comparables: Sequence[Comparable]) -> Evidence | None:
        return cls.of([comparable_signals(comparables)])

    def __len__(self) -> int:
        return len(self.top_similarity)

    def take(self, rows: npt.NDArray[np.int_] | Sequence[int]) -> Evidence:
        return Evidence(self.top_similarity[rows], self.log_spread[rows])
