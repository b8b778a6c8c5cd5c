"""``RangeCalibration``: split conformal price ranges from a strategy's relative (log) errors.

On held-out items (never the strategy's training items) the signed log error
``r = log(truth) - log(estimate)`` is recorded. For a coverage ``c`` (alpha = 1 - c) the range
of a new estimate ``p`` is ``[p * exp(q_low), p * exp(q_high)]`` where ``q_low`` and ``q_high``
are the conformal order statistics of ``r`` at alpha/2 and 1 - alpha/2 (with the ``(n + 1)``
finite-sample correction). If calibration and new items are exchangeable, the range holds the
true price with probability at least ``c`` (and at most ``c + 2 / (n + 1)``). The two tails are
kept apart because every strategy here is biased low: a symmetric band would waste width.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from rag_pricer.atomic_files import write_text_atomic

FORMAT = 1
DEFAULT_COVERAGE = 0.8
#: where calibrations live under settings ``models_dir``
CALIBRATION_DIR = "calibration"
#: prices or bounds, as a list or as an array (the functions here take either)
Prices = Sequence[float] | npt.NDArray[np.float64]


class CalibrationError(ValueError):
    """Calibration data that cannot give a range (too few items, bad prices, bad file)."""


def log_errors(truth: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Signed relative errors ``log(truth / estimate)``; prices must be finite and positive."""
    truth, estimate = np.asarray(truth, dtype=float), np.asarray(estimate, dtype=float)
    if truth.shape != estimate.shape or truth.ndim != 1:
        raise CalibrationError(
            f"truth and estimate must be 1-d arrays of one length, not {truth.shape}, {estimate.shape}"
        )
    if not (
        np.all(np.isfinite(truth)) and np.all(np.isfinite(estimate)) and np.all(truth > 0) and np.all(estimate > 0)
    ):
        raise CalibrationError("calibration needs finite, positive true prices and estimates")
    return np.log(truth) - np.log(estimate)


def conformal_bounds(errors: np.ndarray, coverage: float) -> tuple[float, float]:
    """``(q_low, q_high)``: the split conformal order statistics of ``errors`` for ``coverage``."""
    if not 0 < coverage < 1:
        raise CalibrationError(f"coverage must be between 0 and 1, got {coverage}")
    ordered = np.sort(np.asarray(errors, dtype=float))
    n = len(ordered)
    k_low, k_high = _ranks(n, coverage)
    if k_low < 1 or k_high > n:
        need = next(m for m in range(1, 100_000) if _ranks(m, coverage)[0] >= 1 and _ranks(m, coverage)[1] <= m)
        raise CalibrationError(f"{n} calibration items cannot give a {coverage:.0%} range: need at least {need}")
    return float(ordered[k_low - 1]), float(ordered[k_high - 1])


def _ranks(n: int, coverage: float) -> tuple[int, int]:
    """1-based ranks of the lower and upper bounds among ``n`` sorted errors (rounded to 9
    decimals first, so that 0.1 * 10 is 1, not 1.0000000000000002)."""
    tail = (1 - coverage) / 2
    return math.floor(round((n + 1) * tail, 9)), math.ceil(round((n + 1) * (1 - tail), 9))


@dataclass
class RangeCalibration:
    """The calibration of one strategy: coverage, the log-error bounds and what they came from.

    ``ids`` are the calibration items (an evaluation does not count them when it measures
    coverage); ``cross_fitted`` holds the coverage and widths measured K-fold on them."""

    strategy: str
    coverage: float
    q_low: float
    q_high: float
    n: int
    ids: list[str] = field(default_factory=list)
    source: str = ""
    cross_fitted: dict[str, Any] | None = None

    @classmethod
    def fit(
        cls,
        strategy: str,
        truth: Prices,
        estimate: Prices,
        ids: Sequence[str] = (),
        coverage: float = DEFAULT_COVERAGE,
        source: str = "",
    ) -> Self:
        q_low, q_high = conformal_bounds(log_errors(np.asarray(truth), np.asarray(estimate)), coverage)
        return cls(strategy, coverage, q_low, q_high, len(truth), sorted(ids), source)

    def bounds(self, prices: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` of each price: finite and positive for finite positive prices."""
        prices = np.asarray(prices, dtype=float)
        return prices * math.exp(self.q_low), prices * math.exp(self.q_high)

    def note(self) -> str:
        return f"{self.coverage:.0%} range from split conformal calibration on {self.n} held-out items" + (
            f" ({self.source})" if self.source else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CalibrationError(f"not a range calibration of format {FORMAT}")
        try:
            made = cls(**{k: v for k, v in data.items() if k != "format"})
        except TypeError as error:
            raise CalibrationError(f"unexpected calibration fields: {error}") from error
        if not (math.isfinite(made.q_low) and math.isfinite(made.q_high) and made.q_low <= made.q_high):
            raise CalibrationError("calibration bounds must be finite with q_low <= q_high")
        return made

    def save(self, models_dir: str | Path) -> Path:
        return write_text_atomic(
            calibration_path(models_dir, self.strategy), json.dumps(self.to_dict(), indent=1) + "\n"
        )

    @classmethod
    def load(cls, models_dir: str | Path, strategy: str) -> Self | None:
        """The saved calibration of ``strategy``, ``None`` when there is none."""
        path = calibration_path(models_dir, strategy)
        if not path.is_file():
            return None
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise CalibrationError(f"cannot read {path} ({error}): recalibrate with `rag-pricer calibrate`") from error


def calibration_path(models_dir: str | Path, strategy: str) -> Path:
    return Path(models_dir) / CALIBRATION_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', strategy)}.json"


def missing_note(strategy: str) -> str:
    return (
        f"no price range: strategy {strategy!r} is not calibrated; run `rag-pricer calibrate --strategy {strategy} "
        "--items ../shared/data/items.jsonl.gz --split dev`"
    )
