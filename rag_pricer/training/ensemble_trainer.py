"""``EnsembleTrainer``: cross-fitted figures, the final model and its range calibration.

Given the bases' outputs on the fitting items (``scored`` ones, e.g. ``dev``, and unscored
extra ones of the same distribution), each model kind is cross-fitted on the scored items
(K folds; extra items always on the fitting side) and its out-of-fold prices scored with the
usual metrics and bootstrap intervals: those are the figures to quote, never in-sample ones.
The chosen kind is then fitted on every item and saved; the range calibration comes from its
out-of-fold log errors on the scored items (with the retrieval evidence of the signal base's
comparables, which the ensemble's estimates show), and its coverage is itself cross-fitted;
the confidence levels are placed on the same evidence.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rag_pricer.evaluation.bootstrap import Bootstrap, Interval
from rag_pricer.pricing.confidence import MIN_ITEMS, ConfidenceLevels
from rag_pricer.pricing.evidence import Evidence
from rag_pricer.pricing.ranges import RangeCalibration
from rag_pricer.pricing.ranges.crossfit import CoverageReport, cross_fitted_coverage
from rag_pricer.strategies.ensemble.crossfit import cross_fit
from rag_pricer.strategies.ensemble.model import KINDS, EnsembleModel
from rag_pricer.strategies.ensemble.signals import BaseOutput, feature_matrix


@dataclass
class EnsembleOutcome:
    """What a training run produced: cross-fitted metrics per kind and per base (on the scored
    items), the kind chosen, the final model, its calibration and that calibration's cross-fitted coverage."""

    kinds: dict[str, dict[str, Interval]]
    bases: dict[str, dict[str, Interval]]
    chosen: str
    model: EnsembleModel
    calibration: RangeCalibration
    coverage: CoverageReport
    base_coverage: dict[str, CoverageReport] = field(default_factory=dict)
    n_scored: int = 0
    n_extra: int = 0
    confidence: ConfidenceLevels | None = None
    #: the chosen kind's out-of-fold prices of the scored items (what the range is calibrated on)
    out_of_fold: npt.NDArray[np.float64] | None = None

    def to_dict(self) -> dict[str, Any]:
        def metrics(found: Mapping[str, Interval]) -> dict[str, Any]:
            return {k: {"value": v.value, "ci95": v.as_list()} for k, v in found.items()}

        return {
            "chosen": self.chosen,
            "n_scored": self.n_scored,
            "n_extra": self.n_extra,
            "cross_fitted": {kind: metrics(m) for kind, m in self.kinds.items()},
            "bases": {name: metrics(m) for name, m in self.bases.items()},
            "weights": self.model.weights(),
            "intercept": self.model.intercept_,
            "coverage": self.coverage.as_dict(),
            "base_coverage": {name: c.as_dict() for name, c in self.base_coverage.items()},
            "confidence": None if self.confidence is None else self.confidence.measured,
        }


class EnsembleTrainer:
    """Cross-fits the ``kinds`` (see ``EnsembleModel``) over ``bases``; ``choose`` is a kind or
    ``"auto"`` (the lowest cross-fitted MAE: choosing among a few kinds on the same folds makes
    the chosen figure slightly optimistic). ``folds``, ``seed``: the K-fold split; ``alpha``:
    the ridge penalty; ``coverage``: of the calibrated range; ``signal_base``: the base whose
    comparables give the retrieval signals (without it, ``stack`` would equal ``blend``)."""

    def __init__(
        self,
        bases: Sequence[str],
        kinds: Sequence[str] = KINDS,
        choose: str = "auto",
        folds: int = 5,
        seed: int = 0,
        alpha: float = 1.0,
        coverage: float = 0.8,
        signal_base: str = "knn",
        bootstrap: Bootstrap | None = None,
    ) -> None:
        self.bases = list(bases)
        self.signal_base = signal_base if signal_base in self.bases else None
        self.kinds = [k for k in kinds if k != "stack" or self.signal_base]
        if choose != "auto" and choose not in self.kinds:
            raise ValueError(
                f"cannot choose {choose!r}: kinds available are {self.kinds} (stack needs {signal_base!r})"
            )
        self.choose = choose
        self.folds = folds
        self.seed = seed
        self.alpha = alpha
        self.coverage = coverage
        self.bootstrap = bootstrap or Bootstrap()

    def make(self, kind: str) -> EnsembleModel:
        return EnsembleModel(self.bases, kind, self.signal_base, self.alpha)

    def train(
        self,
        outputs: Mapping[str, Sequence[BaseOutput]],
        prices: Sequence[float] | npt.NDArray[np.float64],
        ids: Sequence[str],
        scored: Sequence[bool] | npt.NDArray[np.bool_],
    ) -> EnsembleOutcome:
        prices, scored = np.asarray(prices, dtype=float), np.asarray(scored, dtype=bool)
        truth, scored_ids = prices[scored], [i for i, s in zip(ids, scored) if s]
        kinds, oof = {}, {}
        for kind in self.kinds:
            features = feature_matrix(outputs, self.bases, self.make(kind).signal_base)
            fit = cross_fit(functools.partial(self.make, kind), features, prices, ids, scored, self.folds, self.seed)
            oof[kind] = fit.predictions[scored]
            kinds[kind] = self.bootstrap.intervals(truth, oof[kind])
        chosen = self.choose if self.choose != "auto" else min(kinds, key=lambda k: kinds[k]["mae"].value)
        model = self.make(chosen).fit(feature_matrix(outputs, self.bases, self.make(chosen).signal_base), prices, ids)
        evidence = {name: Evidence.of([o.signals for o, s in zip(outputs[name], scored) if s]) for name in self.bases}
        shown = evidence[self.signal_base] if self.signal_base else None  # the comparables the ensemble shows
        calibration = RangeCalibration.fit(
            "ensemble",
            truth,
            oof[chosen],
            scored_ids,
            self.coverage,
            source=f"out-of-fold {chosen} estimates",
            evidence=shown,
        )
        coverage = cross_fitted_coverage(truth, oof[chosen], self.coverage, self.folds, self.seed, shown)
        calibration.cross_fitted = coverage.as_dict()
        confidence = None
        if shown is not None and len(shown) >= MIN_ITEMS:
            confidence = ConfidenceLevels.fit(shown, truth, oof[chosen], "ensemble", f"out-of-fold {chosen} estimates")
        bases, base_coverage = {}, {}
        for name in self.bases:
            estimate = np.array([o.price for o, s in zip(outputs[name], scored) if s])
            bases[name] = self.bootstrap.intervals(truth, estimate)
            base_coverage[name] = cross_fitted_coverage(
                truth, estimate, self.coverage, self.folds, self.seed, evidence[name]
            )
        return EnsembleOutcome(
            kinds,
            bases,
            chosen,
            model,
            calibration,
            coverage,
            base_coverage,
            int(scored.sum()),
            int((~scored).sum()),
            confidence,
            oof[chosen],
        )
