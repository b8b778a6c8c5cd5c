"""``ConfidenceLevels``: how far to trust an estimate (``high``, ``medium``, ``low``), in words.

Read from the retrieval evidence of the estimate (``pricing.evidence``): ``low`` when the top
similarity is below what 95% of held-out dev items reach (``LOW_SHARE``), i.e. the store knows
nothing like the item ("hello world", random characters, a product the catalogue lacks);
``high`` when it is at least what the closest quarter of dev items reach (``HIGH_QUANTILE``);
``medium`` between. On dev that quarter's relative errors are clearly smaller (median
|log error| 0.30 against 0.51 for knn) and the 5% low ones' MAE is ~1.4x the others'. The
comparables' price spread was tried as a second condition for ``high`` and did not separate
the levels' MAE better, so the rule stays one number. The thresholds are fitted on dev by
``rag-pricer calibrate`` and ``train-ensemble`` and saved to
``models_dir/calibration/confidence.json``; without that file, ``BUILT_IN`` (the same rule,
measured on dev) applies. The MAE of each level on dev is in docs/ensemble-and-ranges.md.

A strategy whose estimates show no comparables (the trained baselines, ``zero-shot``,
``finetuned``) gets no level: retrieving only to label them would make the store a requirement
of strategies that do not use it, and would judge evidence they did not price from.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from rag_pricer.atomic_files import write_text_atomic
from rag_pricer.pricing.evidence import Evidence, comparable_signals
from rag_pricer.pricing.ranges import CALIBRATION_DIR, CalibrationError
from rag_pricer.pricing.ranges.calibration import Prices, read_saved
from rag_pricer.pricing.values import CONFIDENCE_LEVELS, Comparable, Confidence

FORMAT = 1
#: the fewest held-out items thresholds are placed on
MIN_ITEMS = 20
CONFIDENCE_FILE = "confidence.json"
#: the share of dev items whose top similarity is called out of domain
LOW_SHARE = 0.05
#: the quantile of dev items' top similarity that ``high`` must reach
HIGH_QUANTILE = 0.75
NO_COMPARABLES = "no confidence level: this strategy shows no comparable products to judge its price by"


@dataclass
class ConfidenceLevels:
    """``low`` below ``low_below`` top similarity, ``high`` from ``high_from``, ``medium`` between.
    ``measured``: per level, the count and MAE on the items it was fitted on (of ``strategy``'s
    estimates), for the record."""

    low_below: float
    high_from: float
    source: str = ""
    n: int = 0
    strategy: str = ""
    measured: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, evidence: Evidence, truth: Prices, estimate: Prices, strategy: str = "", source: str = "") -> Self:
        """Thresholds from the distribution of ``evidence`` on held-out items, and each level's MAE."""
        if len(evidence) < MIN_ITEMS:
            raise CalibrationError(
                f"{len(evidence)} items cannot place confidence thresholds: need at least {MIN_ITEMS}"
            )
        made = cls(
            low_below=float(np.quantile(evidence.top_similarity, LOW_SHARE)),
            high_from=float(np.quantile(evidence.top_similarity, HIGH_QUANTILE)),
            source=source,
            n=len(evidence),
            strategy=strategy,
        )
        made.measured = made.measure(evidence, truth, estimate)
        return made

    def levels(self, evidence: Evidence) -> list[Confidence]:
        return [self.level(top) for top in evidence.top_similarity]

    def level(self, top_similarity: float) -> Confidence:
        if top_similarity < self.low_below:
            return "low"
        return "high" if top_similarity >= self.high_from else "medium"

    def measure(self, evidence: Evidence, truth: Prices, estimate: Prices) -> dict[str, dict[str, float]]:
        """Per level: how many items, their share and the MAE ($) of ``estimate``."""
        found = np.array(self.levels(evidence))
        errors = np.abs(np.asarray(truth, dtype=float) - np.asarray(estimate, dtype=float))
        return {
            level: {
                "n": int(rows.sum()),
                "share": round(float(rows.mean()), 4),
                "mae": round(float(errors[rows].mean()), 2),
            }
            for level in CONFIDENCE_LEVELS
            if (rows := found == level).any()
        }

    def assess(self, comparables: Sequence[Comparable]) -> tuple[Confidence | None, str]:
        """The level of an estimate with these ``comparables`` and why, in words."""
        signals = comparable_signals(comparables)
        if not signals:
            return None, NO_COMPARABLES
        top, spread = signals["top_similarity"], signals["log_spread"]
        level = self.level(top)
        if level == "low":
            return level, (
                f"the closest product we know is only {top:.0%} similar: treat this price as a guess "
                f"(95% of checked products have a match of at least {self.low_below:.0%})"
            )
        disagree = f"; their prices disagree (typically x{math.exp(spread):.1f} apart)" if spread > 1.0 else ""
        if level == "high":
            return level, f"a close product is known (the closest is {top:.0%} similar){disagree}"
        return level, f"the closest product we know is {top:.0%} similar: a rough estimate{disagree}"

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CalibrationError(f"not confidence levels of format {FORMAT}")
        try:
            made = cls(**{k: v for k, v in data.items() if k != "format"})
        except TypeError as error:
            raise CalibrationError(f"unexpected confidence fields: {error}") from error
        thresholds = (made.low_below, made.high_from)
        if not all(isinstance(t, (int, float)) and math.isfinite(t) for t in thresholds):
            raise CalibrationError("confidence thresholds must be finite numbers")
        if made.low_below > made.high_from:
            raise CalibrationError("the low threshold must not exceed the high one")
        return made

    def save(self, models_dir: str | Path) -> Path:
        return write_text_atomic(confidence_path(models_dir), json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, models_dir: str | Path) -> Self | None:
        """The saved levels, ``None`` when there are none (``BUILT_IN`` applies then)."""
        return read_saved(confidence_path(models_dir), cls.from_dict)


def confidence_path(models_dir: str | Path) -> Path:
    return Path(models_dir) / CALIBRATION_DIR / CONFIDENCE_FILE


#: measured on dev (500 items, store = train, knn with its defaults) with `rag-pricer calibrate
#: --strategy knn --split dev` (docs/ensemble-and-ranges.md); used when no file is saved
BUILT_IN = ConfidenceLevels(
    low_below=0.4747,
    high_from=0.7366,
    source="built-in: items.jsonl.gz split dev",
    n=500,
    strategy="knn",
    measured={
        "high": {"n": 125, "share": 0.25, "mae": 90.89},
        "medium": {"n": 350, "share": 0.7, "mae": 108.95},
        "low": {"n": 25, "share": 0.05, "mae": 149.46},
    },
)
