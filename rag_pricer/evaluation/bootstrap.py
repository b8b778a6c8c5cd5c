"""Percentile bootstrap confidence intervals, vectorised with numpy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
        truth, estimate = _arrays(truth, estimate)
        samples = self._resampled((truth, estimate), metrics)
        return {name: self._interval(float(metric(truth, estimate)), samples[name]) for name, metric in metrics.items()}

    def interval(self, metric: Metric, truth: np.ndarray, estimate: np.ndarray) -> Interval:
        """One metric's value and interval (e.g. the MAE of one price band)."""
        return self.intervals(truth, estimate, {"metric": metric})["metric"]

    def differences(
        self, truth: np.ndarray, estimate: np.ndarray, reference: np.ndarray, metrics: Mapping[str, Metric] = METRICS
    ) -> dict[str, Interval]:
        """Paired differences ``metric(estimate) - metric(reference)`` on the same items, with their
        intervals: both estimates are resampled together, so the items' difficulty cancels out."""
        truth, estimate = _arrays(truth, estimate)
        truth, reference = _arrays(truth, reference)

        def difference(metric: Metric) -> Callable[..., np.ndarray]:
            return lambda t, e, r: np.asarray(metric(t, e), dtype=float) - np.asarray(metric(t, r), dtype=float)

        statistics = {name: difference(metric) for name, metric in metrics.items()}
        samples = self._resampled((truth, estimate, reference), statistics)
        return {
            name: self._interval(float(statistic(truth, estimate, reference)), samples[name])
            for name, statistic in statistics.items()
        }

    def _resampled(
        self, arrays: tuple[np.ndarray, ...], statistics: Mapping[str, Callable[..., np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """Each statistic of the item-aligned ``arrays`` on every resample (one shared set of
        resampled items for all statistics), drawn in blocks of at most ``block_cells`` indices."""
        n = len(arrays[0])
        rng = np.random.default_rng(self.seed)
        block = max(1, self.block_cells // n)
        samples: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
        for start in range(0, self.resamples, block):
            index = rng.integers(0, n, size=(min(block, self.resamples - start), n))
            resampled = [array[index] for array in arrays]
            for name, statistic in statistics.items():
                samples[name].append(np.asarray(statistic(*resampled), dtype=float))
        return {name: np.concatenate(values) for name, values in samples.items()}

    def _interval(self, value: float, samples: np.ndarray) -> Interval:
        tail = (1 - self.confidence) / 2 * 100
        low, high = np.percentile(samples, [tail, 100 - tail])
        return Interval(value, float(low), float(high))


def _arrays(truth: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(truth, dtype=float)
    estimate = np.asarray(estimate, dtype=float)
    if truth.shape != estimate.shape or truth.ndim != 1:
        raise ValueError(f"truth and estimate must be 1-d arrays of one length, not {truth.shape} and {estimate.shape}")
    if len(truth) == 0:
        raise ValueError("no scored items: nothing to compute metrics on")
    return truth, estimate
