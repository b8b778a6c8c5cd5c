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

from rag_pricer.pricing.evidence import SIGNALS, comparable_signals
from rag_pricer.pricing.values import Estimate

__all__ = ["SIGNALS", "BaseOutput", "comparable_signals", "feature_matrix", "feature_names"]


@dataclass(frozen=True)
class BaseOutput:
    """One base strategy's price for one item and, when it had comparables, their signals."""

    price: float
    signals: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, estimate: Estimate) -> BaseOutput:
        return cls(float(estimate.price), comparable_signals(estimate.comparables))

    def to_dict(self) -> dict[str, object]:
        return {"price": self.price, "signals": self.signals}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaseOutput:  # decoded JSON
        return cls(float(data["price"]), {str(k): float(v) for k, v in dict(data.get("signals") or {}).items()})


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
