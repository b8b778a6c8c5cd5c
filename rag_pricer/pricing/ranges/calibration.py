"""``RangeCalibration``: split conformal price ranges whose width follows how hard the item is.

On held-out items (never the strategy's training items) the signed log error
``r = log(truth) - log(estimate)`` is recorded. For a coverage ``c`` (alpha = 1 - c) the
``global`` range of a new estimate ``p`` is ``[p * exp(q_low), p * exp(q_high)]`` where ``q_low``
and ``q_high`` are the conformal order statistics of ``r`` at alpha/2 and 1 - alpha/2 (with the
``(n + 1)`` finite-sample correction). If calibration and new items are exchangeable, the range
holds the true price with probability at least ``c`` (and at most ``c + 2 / (n + 1)``). The two
tails are kept apart because every strategy here is biased low: a symmetric band would waste width.

One width for every item is honest on average only: a near-duplicate of a stored product and
``"hello world"`` get the same range. From the estimate's comparables (``pricing.evidence``)
two item-dependent variants are built, and combined:

- ``mondrian``: the calibration items are cut into thirds by their top similarity, and each
  third gets its own conformal bounds: coverage holds within each third by construction.
- ``normalised``: the score is ``(r - centre(x)) / s(x)``; the centre is linear in the log
  estimate (least squares: estimates regress to the mean, the dearest are the most too low),
  the scale ``s = a + b * log_spread + c * (1 - top_similarity)`` (non-negative least squares of
  ``|r - centre|`` on the signals, at least ``MIN_SCALE``); the range is
  ``centre(x) + s(x) * [q_low, q_high]`` with the conformal bounds of those scores.
- ``mondrian-normalised``: normalised scores with their bounds per third.
- ``mondrian-glm`` (the default, chosen on dev: docs/ensemble-and-ranges.md): the same, but the
  scale also reads the estimate's own price level, and multiplies:
  ``s = exp(a + b * log_spread + c * (1 - top_similarity) + d * log(estimate))``, fitted as a
  log-link Poisson regression (a GLM) of ``|r - centre|`` (scikit-learn ``PoissonRegressor``;
  Lei et al. 2018's locally weighted conformal, with a learned scale). Cheap estimates miss by
  more in proportion than dear ones (they regress to the mean), so ``d`` comes out negative: the
  range narrows in proportion where it costs the most dollars. The log estimate and both signals
  are held within the calibration items' (``held_within``): an exponential scale (and the
  centre) is never extrapolated beyond what it was fitted on.

An estimate without comparables gets the ``global`` bounds, which every calibration keeps.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np
import numpy.typing as npt

from rag_pricer.atomic_files import write_text_atomic
from rag_pricer.pricing.evidence import Evidence

#: 3: ``mondrian-glm`` (a log-link scale over the log estimate too); formats 1 and 2 still load
FORMAT = 3
READABLE_FORMATS = (1, 2, 3)
#: the ways a range can follow the item (see the module's docstring)
METHODS = ("global", "mondrian", "normalised", "mondrian-normalised", "mondrian-glm")
DEFAULT_METHOD = "mondrian-glm"
#: the links of a scale: ``identity`` (linear, format 2) or ``log`` (``mondrian-glm``)
LINKS = ("identity", "log")
#: what a ``mondrian-glm`` range reads held within the calibration items' range of it
HELD = ("log_estimate", "top_similarity", "log_spread")
#: bins by top similarity (thirds), and the fewest calibration items a bin may hold
BINS = 3
MIN_PER_BIN = 30
#: the narrowest scale of a normalised score (a log error of 5%)
MIN_SCALE = 0.05
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


@dataclass(frozen=True)
class Scale:
    """The scale of a normalised score, at least ``MIN_SCALE``: with the ``identity`` link
    ``intercept + spread * log_spread + dissimilarity * (1 - top_similarity)`` (format 2); with
    the ``log`` link ``exp(intercept + spread * log_spread + dissimilarity * (1 - top_similarity)
    + log_estimate * log(estimate))``."""

    intercept: float
    spread: float
    dissimilarity: float
    log_estimate: float = 0.0
    link: str = "identity"

    @classmethod
    def fit(cls, evidence: Evidence, deviations: npt.NDArray[np.float64]) -> Scale:
        """Non-negative least squares of ``deviations`` (``|r - centre|``) on the signals: the
        scale can only grow with the spread and with dissimilarity."""
        from scipy.optimize import nnls  # here: only fitting needs scipy

        design = np.column_stack([np.ones(len(evidence)), evidence.log_spread, 1 - evidence.top_similarity])
        (intercept, spread, dissimilarity), _ = nnls(design, np.asarray(deviations, dtype=float))
        return cls(float(intercept), float(spread), float(dissimilarity))

    @classmethod
    def fit_log_link(
        cls, evidence: Evidence, log_estimate: npt.NDArray[np.float64], deviations: npt.NDArray[np.float64]
    ) -> Scale:
        """Poisson regression with a log link (the mean of ``deviations``, ``|r - centre|``, is
        ``exp`` of a linear form of the signals and the log estimate): a positive scale whose
        terms multiply, fitted without penalty."""
        deviations = np.asarray(deviations, dtype=float)
        if not np.any(deviations > 0):  # every error at its centre: the narrowest scale
            return cls(math.log(MIN_SCALE), 0.0, 0.0, 0.0, "log")
        from sklearn.linear_model import PoissonRegressor  # here: only fitting needs scikit-learn

        design = np.column_stack([evidence.log_spread, 1 - evidence.top_similarity, log_estimate])
        model = PoissonRegressor(alpha=0.0, max_iter=1000).fit(design, deviations)
        spread, dissimilarity, price = (float(c) for c in model.coef_)
        return cls(float(model.intercept_), spread, dissimilarity, price, "log")

    def of(self, evidence: Evidence, log_estimate: npt.NDArray[np.float64] | float = 0.0) -> npt.NDArray[np.float64]:
        linear = (
            self.intercept
            + self.spread * evidence.log_spread
            + self.dissimilarity * (1 - evidence.top_similarity)
            + self.log_estimate * np.asarray(log_estimate, dtype=float)
        )
        raw = np.exp(np.minimum(linear, 50.0)) if self.link == "log" else linear
        return np.maximum(raw, MIN_SCALE)


@dataclass(frozen=True)
class Bin:
    """One group of items (a third by top similarity): the bounds of its scores."""

    q_low: float
    q_high: float
    n: int


@dataclass
class RangeCalibration:
    """The calibration of one strategy: coverage, the log-error bounds and what they came from.

    ``q_low``/``q_high``: the global bounds (estimates without comparables); ``method``, ``edges``
    (top similarities between the bins), ``bins`` and ``scale``: the item-dependent part.
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
    method: str = "global"
    edges: list[float] = field(default_factory=list)
    bins: list[Bin] = field(default_factory=list)
    scale: Scale | None = None
    #: ``centre(x) = centre[0] + centre[1] * log(estimate)`` of normalised scores
    centre: list[float] = field(default_factory=lambda: [0.0, 0.0])
    #: ``{name: [lowest, highest]}`` of the calibration items' ``log_estimate``, ``top_similarity``
    #: and ``log_spread``: centre and scale read each held within its range (``mondrian-glm``;
    #: empty: not held, as format 2 did)
    held_within: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        strategy: str,
        truth: Prices,
        estimate: Prices,
        ids: Sequence[str] = (),
        coverage: float = DEFAULT_COVERAGE,
        source: str = "",
        evidence: Evidence | None = None,
        method: str = DEFAULT_METHOD,
    ) -> Self:
        """Calibrate on held-out ``truth`` and ``estimate``; ``evidence`` (one row per item) makes
        the ``method``'s item-dependent ranges, without it the range is ``global``."""
        if method not in METHODS:
            raise CalibrationError(f"unknown range method {method!r}: one of {', '.join(METHODS)}")
        errors = log_errors(np.asarray(truth), np.asarray(estimate))
        q_low, q_high = conformal_bounds(errors, coverage)
        made = cls(strategy, coverage, q_low, q_high, len(errors), sorted(ids), source)
        if evidence is None or method == "global":
            return made
        if len(evidence) != len(errors):
            raise CalibrationError(f"{len(evidence)} rows of evidence for {len(errors)} calibration items")
        bins = max(1, min(BINS, len(errors) // MIN_PER_BIN)) if method.startswith("mondrian") else 1
        edges = [float(e) for e in np.quantile(evidence.top_similarity, np.arange(1, bins) / bins)]
        group = np.searchsorted(edges, evidence.top_similarity, side="right")
        log_estimate = np.log(np.asarray(estimate, dtype=float))
        centre, scale = [0.0, 0.0], None
        if method.endswith(("normalised", "glm")):
            design = np.column_stack([np.ones(len(errors)), log_estimate])
            centre = [float(c) for c in np.linalg.lstsq(design, errors, rcond=None)[0]]
            deviations = np.abs(errors - design @ centre)
            if method.endswith("glm"):
                made.held_within = {
                    name: [float(values.min()), float(values.max())]
                    for name, values in zip(HELD, (log_estimate, evidence.top_similarity, evidence.log_spread))
                }
                scale = Scale.fit_log_link(evidence, log_estimate, deviations)
            else:
                scale = Scale.fit(evidence, deviations)
        scores = (errors - centre[0] - centre[1] * log_estimate) / (scale.of(evidence, log_estimate) if scale else 1.0)
        made.bins = []
        for g in range(bins):
            rows = group == g
            made.bins.append(Bin(*conformal_bounds(scores[rows], coverage), int(rows.sum())))
        made.method, made.edges, made.scale, made.centre = method, edges, scale, centre
        return made

    def bounds(
        self, prices: npt.NDArray[np.float64] | float, evidence: Evidence | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` of each price (with its row of ``evidence``, when the calibration uses
        it): finite and positive for finite positive prices."""
        prices = np.asarray(prices, dtype=float)
        if evidence is None or not self.bins:
            return prices * math.exp(self.q_low), prices * math.exp(self.q_high)
        group = np.searchsorted(self.edges, evidence.top_similarity, side="right")
        log_price = np.log(prices)
        if self.held_within:
            log_price = self._held("log_estimate", log_price)
            evidence = Evidence(
                self._held("top_similarity", evidence.top_similarity), self._held("log_spread", evidence.log_spread)
            )
        centre = self.centre[0] + self.centre[1] * log_price
        scale = self.scale.of(evidence, log_price) if self.scale else 1.0
        low = centre + scale * np.array([b.q_low for b in self.bins])[group]
        high = centre + scale * np.array([b.q_high for b in self.bins])[group]
        return prices * np.exp(low), prices * np.exp(high)

    def _held(self, name: str, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lowest, highest = self.held_within[name]
        return np.clip(values, lowest, highest)

    def note(self) -> str:
        how = "" if self.method == "global" else f", {self.method}"
        return f"{self.coverage:.0%} range from split conformal calibration{how} on {self.n} held-out items" + (
            f" ({self.source})" if self.source else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """A calibration of ``FORMAT`` or an older one (format 1: one global range, read as
        ``global``; format 2: a linear scale, read as it was saved)."""
        if not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS:
            raise CalibrationError(f"not a range calibration of format {', '.join(map(str, READABLE_FORMATS))}")
        fields = {k: v for k, v in data.items() if k != "format"}
        try:
            fields["bins"] = [Bin(**b) for b in fields.get("bins") or []]
            fields["scale"] = Scale(**fields["scale"]) if fields.get("scale") else None
            made = cls(**fields)
        except TypeError as error:
            raise CalibrationError(f"unexpected calibration fields: {error}") from error
        bounds = [(made.q_low, made.q_high), *((b.q_low, b.q_high) for b in made.bins)]
        if not all(math.isfinite(low) and math.isfinite(high) and low <= high for low, high in bounds):
            raise CalibrationError("calibration bounds must be finite with q_low <= q_high")
        if made.method not in METHODS or len(made.centre) != 2 or (made.bins and len(made.edges) != len(made.bins) - 1):
            raise CalibrationError(f"range method {made.method!r} with {len(made.bins)} bins and edges {made.edges}")
        held = made.held_within
        if (made.scale is not None and made.scale.link not in LINKS) or (
            held
            and (
                not isinstance(held, dict)
                or set(held) != set(HELD)
                or not all(
                    isinstance(r, list) and len(r) == 2 and all(math.isfinite(v) for v in r) and r[0] <= r[1]
                    for r in held.values()
                )
            )
        ):
            raise CalibrationError(f"scale {made.scale} with the ranges it reads {held}")
        return made

    def save(self, models_dir: str | Path) -> Path:
        return write_text_atomic(
            calibration_path(models_dir, self.strategy), json.dumps(self.to_dict(), indent=1) + "\n"
        )

    @classmethod
    def load(cls, models_dir: str | Path, strategy: str) -> Self | None:
        """The saved calibration of ``strategy``, ``None`` when there is none."""
        return read_saved(calibration_path(models_dir, strategy), cls.from_dict)


def calibration_path(models_dir: str | Path, strategy: str) -> Path:
    return Path(models_dir) / CALIBRATION_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', strategy)}.json"


def missing_note(strategy: str) -> str:
    return (
        f"no price range: strategy {strategy!r} is not calibrated; run `rag-pricer calibrate --strategy {strategy} "
        "--items ../shared/data/items.jsonl.gz --split dev`"
    )


Saved = TypeVar("Saved")


def read_saved(path: Path, parse: Callable[[dict[str, Any]], Saved]) -> Saved | None:
    """What ``parse`` makes of the JSON at ``path``; ``None`` when there is no file; a file that
    cannot be read or parsed is a ``CalibrationError`` saying to recalibrate."""
    if not path.is_file():
        return None
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise CalibrationError(f"cannot read {path} ({error}): recalibrate with `rag-pricer calibrate`") from error
