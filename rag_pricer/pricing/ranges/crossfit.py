"""Honest coverage of conformal ranges: K-fold cross-fitting on the calibration items.

Each fold's ranges come from a calibration fitted on the other folds only (bins, scale and
bounds alike), so no item's range was calibrated on that item. With evidence, coverage is also
reported per third of the items by top similarity: an item-dependent range must hold in each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from rag_pricer.pricing.evidence import Evidence
from rag_pricer.pricing.ranges.calibration import DEFAULT_METHOD, Prices, RangeCalibration


@dataclass(frozen=True)
class CoverageReport:
    """Empirical coverage and widths of ranges on scored items; ``by_third``: the coverage in
    each third of the items by top similarity (least similar first), when that was known."""

    coverage: float
    nominal: float
    median_width: float
    median_ratio: float
    n: int
    folds: int = 0
    by_third: list[float] = field(default_factory=list)
    method: str = "global"

    def as_dict(self) -> dict[str, float | int | str | list[float]]:
        """The figures; with the coverage per similarity third and the range's method when known."""
        found: dict[str, float | int | str | list[float]] = {
            "coverage": round(self.coverage, 4),
            "nominal": self.nominal,
            "median_width": round(self.median_width, 2),
            "median_ratio": round(self.median_ratio, 4),
            "n": self.n,
            "folds": self.folds,
        }
        if self.by_third:
            found |= {"by_similarity_third": [round(c, 4) for c in self.by_third], "method": self.method}
        return found


def coverage_report(
    truth: Prices,
    low: Prices,
    high: Prices,
    nominal: float,
    folds: int = 0,
    evidence: Evidence | None = None,
    method: str = "global",
) -> CoverageReport:
    """Share of true prices inside ``[low, high]`` (overall and per third by top similarity),
    median width ($) and median ``high / low``."""
    truth, low, high = (np.asarray(a, dtype=float) for a in (truth, low, high))
    if not len(truth):
        raise ValueError("no ranges to measure")
    inside = (truth >= low) & (truth <= high)
    by_third = []
    if evidence is not None:
        order = np.argsort(evidence.top_similarity, kind="stable")
        by_third = [float(inside[rows].mean()) for rows in np.array_split(order, 3) if len(rows)]
    return CoverageReport(
        float(inside.mean()),
        nominal,
        float(np.median(high - low)),
        float(np.median(high / low)),
        len(truth),
        folds,
        by_third,
        method,
    )


def cross_fitted_ranges(
    truth: Prices,
    estimate: Prices,
    coverage: float,
    folds: int = 5,
    seed: int = 0,
    evidence: Evidence | None = None,
    method: str = DEFAULT_METHOD,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(low, high)`` of every item, each from a calibration that did not see it."""
    truth, estimate = np.asarray(truth, dtype=float), np.asarray(estimate, dtype=float)
    low, high = np.empty_like(estimate), np.empty_like(estimate)
    from sklearn.model_selection import KFold  # here: scikit-learn takes a second to import, and only fitting needs it

    for fit_rows, score_rows in KFold(n_splits=folds, shuffle=True, random_state=seed).split(estimate):
        fitted = RangeCalibration.fit(
            "fold",
            truth[fit_rows],
            estimate[fit_rows],
            coverage=coverage,
            evidence=evidence.take(fit_rows) if evidence is not None else None,
            method=method,
        )
        low[score_rows], high[score_rows] = fitted.bounds(
            estimate[score_rows], evidence.take(score_rows) if evidence is not None else None
        )
    return low, high


def cross_fitted_coverage(
    truth: Prices,
    estimate: Prices,
    coverage: float,
    folds: int = 5,
    seed: int = 0,
    evidence: Evidence | None = None,
    method: str = DEFAULT_METHOD,
) -> CoverageReport:
    low, high = cross_fitted_ranges(truth, estimate, coverage, folds, seed, evidence, method)
    used = method if evidence is not None else "global"
    return coverage_report(truth, low, high, coverage, folds, evidence, used)
