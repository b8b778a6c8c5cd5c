"""Honest coverage of conformal ranges: K-fold cross-fitting on the calibration items.

Each fold's ranges come from the log errors of the other folds only, so no item's range was
calibrated on that item. ``extra_errors`` (e.g. out-of-fold errors of items that are never
scored) join every fold's calibration set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rag_pricer.pricing.ranges.calibration import Prices, conformal_bounds, log_errors


@dataclass(frozen=True)
class CoverageReport:
    """Empirical coverage and widths of ranges on scored items."""

    coverage: float
    nominal: float
    median_width: float
    median_ratio: float
    n: int
    folds: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "coverage": round(self.coverage, 4),
            "nominal": self.nominal,
            "median_width": round(self.median_width, 2),
            "median_ratio": round(self.median_ratio, 4),
            "n": self.n,
            "folds": self.folds,
        }


def coverage_report(truth: Prices, low: Prices, high: Prices, nominal: float, folds: int = 0) -> CoverageReport:
    """Share of true prices inside ``[low, high]``, median width ($) and median ``high / low``."""
    truth, low, high = (np.asarray(a, dtype=float) for a in (truth, low, high))
    if not len(truth):
        raise ValueError("no ranges to measure")
    inside = (truth >= low) & (truth <= high)
    return CoverageReport(
        float(inside.mean()), nominal, float(np.median(high - low)), float(np.median(high / low)), len(truth), folds
    )


def cross_fitted_ranges(
    truth: Prices,
    estimate: Prices,
    coverage: float,
    folds: int = 5,
    seed: int = 0,
    extra_errors: Sequence[float] = (),
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(low, high)`` of every item, each from a calibration that did not see it."""
    truth, estimate = np.asarray(truth, dtype=float), np.asarray(estimate, dtype=float)
    errors = log_errors(truth, estimate)
    extra = np.asarray(extra_errors, dtype=float)
    low, high = np.empty_like(estimate), np.empty_like(estimate)
    from sklearn.model_selection import KFold  # here: scikit-learn takes a second to import, and only fitting needs it

    for fit_rows, score_rows in KFold(n_splits=folds, shuffle=True, random_state=seed).split(estimate):
        q_low, q_high = conformal_bounds(np.concatenate([errors[fit_rows], extra]), coverage)
        low[score_rows] = estimate[score_rows] * np.exp(q_low)
        high[score_rows] = estimate[score_rows] * np.exp(q_high)
    return low, high


def cross_fitted_coverage(
    truth: Prices,
    estimate: Prices,
    coverage: float,
    folds: int = 5,
    seed: int = 0,
    extra_errors: Sequence[float] = (),
) -> CoverageReport:
    low, high = cross_fitted_ranges(truth, estimate, coverage, folds, seed, extra_errors)
    return coverage_report(truth, low, high, coverage, folds)
