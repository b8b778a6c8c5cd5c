"""Percentile bootstrap confidence intervals, vectorised with numpy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rag_pricer.evaluation.metrics import METRICS, Metric


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]


@dataclass(frozen=True)
class Bootstrap:
    """Percentile bootstrap: resample items with replacement ``resamples`` times, recompute each
    metric, and take the central ``confidence`` share of the results as its interval.

    All metrics share the same resamples (paired), and ``seed`` makes the intervals
    reproducible. Resamples are processed in blocks so memory stays bounded for large runs.
    """

    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    #: index cells (resamples x items) materialised at once
    block_cells: int = 2_000_000

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise ValueError("resamples must be at least 1")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be between 0 and 1")

    @property
    def label(self) -> str:
        """``ci95`` for 95%: the suffix of interval keys in JSON."""
        return f"ci{round(self.confidence * 100)}"

    def intervals(
        self, truth: np.ndarray, estimate: np.ndarray, metrics: Mapping[str, Metric] = METRICS
    ) -> dict[str, Interval]:
        """Each metric's value on the full arrays and its bootstrap interval."""
        truth = np.asarray(truth, dtype=float)
        estimate = np.asarray(estimate, dtype=float)
        if truth.shape != estimate.shape or truth.ndim != 1:
            raise ValueError(f"truth and estimate must be 1-d arrays of one length, not {truth.shape} and {estimate.shape}")
        n = len(truth)
        if n == 0:
            raise ValueError("no scored items: nothing to compute metrics on")
        rng = np.random.default_rng(self.seed)
        block = max(1, self.block_cells // n)
        samples: dict[str, list[np.ndarray]] = {name: [] for name in metrics}
        for start in range(0, self.resamples, block):
            index = rng.integers(0, n, size=(min(block, self.resamples - start), n))
            t, e = truth[index], estimate[index]
            for name, metric in metrics.items():
                samples[name].append(np.asarray(metric(t, e), dtype=float))
        tail = (1 - self.confidence) / 2 * 100
        result = {}
        for name, metric in metrics.items():
            low, high = np.percentile(np.concatenate(samples[name]), [tail, 100 - tail])
            result[name] = Interval(float(metric(truth, estimate)), float(low), float(high))
        return result

    def interval(self, metric: Metric, truth: np.ndarray, estimate: np.ndarray) -> Interval:
        """One metric's value and interval (e.g. the MAE of one price band)."""
        return self.intervals(truth, estimate, {"metric": metric})["metric"]
