"""Business metrics of price estimates, computed on ``(truth, estimate)`` arrays.

Every metric reduces over the last axis, so the same function scores one run (shape ``(n,)``)
or a whole stack of bootstrap resamples (shape ``(resamples, n)``) in one numpy call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: an estimate is a "hit" when it is off by less than this many dollars ...
HIT_DOLLARS = 40.0
#: ... or by less than this share of the true price (the course's rule)
HIT_SHARE = 0.2

Metric = Callable[[np.ndarray, np.ndarray], np.ndarray]


def mae(truth: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Mean absolute error in dollars."""
    return np.mean(np.abs(estimate - truth), axis=-1)


def rmsle(truth: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Root mean squared log error: relative error that forgives a $5 miss on $10 less than on $1000."""
    return np.sqrt(np.mean((np.log1p(estimate) - np.log1p(truth)) ** 2, axis=-1))


def hits(truth: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Per item: off by less than $40 or by less than 20% of the true price."""
    error = np.abs(estimate - truth)
    return (error < HIT_DOLLARS) | (error < HIT_SHARE * truth)


def hit_rate(truth: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Share of hits (0..1), see ``hits``."""
    return np.mean(hits(truth, estimate), axis=-1)


def within(share: float) -> Metric:
    """The metric "share of estimates within ``share`` of the true price" (boundary included)."""

    def metric(truth: np.ndarray, estimate: np.ndarray) -> np.ndarray:
        return np.mean(np.abs(estimate - truth) <= share * truth, axis=-1)

    metric.__name__ = f"within_{round(share * 100)}"
    metric.__doc__ = f"Share of estimates within {share:.0%} of the true price."
    return metric


def bias(truth: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Mean signed error (estimate - truth): positive when the strategy overprices."""
    return np.mean(estimate - truth, axis=-1)


def grades(truth: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Per item 0 (good: < $40 or < 20%), 1 (fair: < $80 or < 40%) or 2 (poor), for charts."""
    error = np.abs(estimate - truth)
    good = (error < HIT_DOLLARS) | (error < HIT_SHARE * truth)
    fair = (error < 2 * HIT_DOLLARS) | (error < 2 * HIT_SHARE * truth)
    return np.where(good, 0, np.where(fair, 1, 2))


#: the metrics every evaluation reports, in display order
METRICS: dict[str, Metric] = {
    "mae": mae,
    "rmsle": rmsle,
    "hit_rate": hit_rate,
    "within_10": within(0.10),
    "within_20": within(0.20),
    "within_50": within(0.50),
    "bias": bias,
}

#: how to show each metric: a label and whether it is a share (0..1) or dollars
LABELS: dict[str, tuple[str, str]] = {
    "mae": ("MAE", "dollars"),
    "rmsle": ("RMSLE", "number"),
    "hit_rate": ("hit rate (< $40 or < 20%)", "share"),
    "within_10": ("within 10%", "share"),
    "within_20": ("within 20%", "share"),
    "within_50": ("within 50%", "share"),
    "bias": ("bias (estimate - truth)", "dollars"),
}


def format_value(name: str, value: float | None) -> str:
    """A metric value as people read it: $12.34, 45.6%, 0.812."""
    if value is None or not np.isfinite(value):
        return "-"
    kind = LABELS.get(name, (name, "number"))[1]
    if kind == "dollars":
        return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"
    if kind == "share":
        return f"{value:.1%}"
    return f"{value:.3f}"
