"""``BaseOutput``: what the ensemble reads of one base estimate, and the stacking features.

Per base strategy, the log of its price; from a base whose estimate has comparables (``knn``),
cheap signals of how sure retrieval is: the top similarity, the spread of the neighbours'
log prices and their median log price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag_pricer.pricing.values import Estimate

#: signals computed from an estimate's comparables
SIGNALS = ("top_similarity", "log_spread", "log_median")


@dataclass(frozen=True)
class BaseOutput:
    """One base strategy's price for one item and, when it had comparables, their signals."""

    price: float
    signals: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, estimate: Estimate) -> BaseOutput:
        return cls(float(estimate.price), comparable_signals(estimate))

    def to_dict(self) -> dict[str, object]:
        return {"price": self.price, "signals": self.signals}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaseOutput:  # decoded JSON
        return cls(float(data["price"]), {str(k): float(v) for k, v in dict(data.get("signals") or {}).items()})


def comparable_signals(estimate: Estimate) -> dict[str, float]:
    """Top similarity, similarity-weighted std and median of log prices of the comparables."""
    if not estimate.comparables:
        return {}
    prices = np.log(np.clip([c.price for c in estimate.comparables], 0.01, None))
    weights = np.clip([c.similarity for c in estimate.comparables], 1e-6, None)
    mean = np.average(prices, weights=weights)
    spread = float(np.sqrt(np.average((prices - mean) ** 2, weights=weights)))
    return {
        "top_similarity": float(max(c.similarity for c in estimate.comparables)),
        "log_spread": spread,
        "log_median": float(np.median(prices)),
    }


def feature_names(bases: Sequence[str], signal_base: str | None) -> list[str]:
    """``log:<base>`` per base, then ``<signal_base>:<signal>`` when signals are used."""
    names = [f"log:{b}" for b in bases]
    if signal_base:
        names += [f"{signal_base}:{s}" for s in SIGNALS]
    return names


def feature_matrix(
    outputs: Mapping[str, Sequence[BaseOutput]], bases: Sequence[str], signal_base: str | None
) -> np.ndarray:
    """Rows of ``feature_names(bases, signal_base)`` from each base's outputs (one per item)."""
    columns = [np.log(np.clip([o.price for o in outputs[b]], 0.01, None)) for b in bases]
    if signal_base:
        for signal in SIGNALS:
            values = [o.signals.get(signal) for o in outputs[signal_base]]
            if any(v is None for v in values):
                raise ValueError(f"base {signal_base!r} gave an estimate without comparables: no {signal}")
            columns.append(np.array(values, dtype=float))
    return np.column_stack(columns) if columns else np.zeros((0, 0))
