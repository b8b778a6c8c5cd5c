"""How the estimates fare against the prices products really sold for, per strategy: MAE, hit
rate, bias and range coverage over the latest feedbacks and in total, with a warning when the
ranges hold the true price clearly less often than they promise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rag_pricer.evaluation.metrics import hits
from rag_pricer.feedback.journal import Feedback

#: a coverage this unlikely (one-sided binomial test) under the promised level is a warning
ALPHA = 0.05
#: fewer ranged feedbacks than this say nothing either way
MIN_RANGED = 10


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (exact for any n here)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        for i in range(0, k + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


@dataclass(frozen=True)
class Scores:
    """The figures of some feedbacks of one strategy."""

    n: int
    mae: float | None
    hit_rate: float | None
    bias: float | None = None  # mean (estimate - sold): negative = priced too low
    ranged: int = 0  # feedbacks whose estimate had a range
    coverage: float | None = None  # share of those whose range held the sold price
    promised: float | None = None  # the coverage the ranges promised (mean)
    p_value: float | None = None  # P(coverage this low or lower | promised), one-sided binomial
    warning: str | None = None

    @classmethod
    def of(cls, feedbacks: Sequence[Feedback]) -> Scores:
        if not feedbacks:
            return cls(0, None, None)
        sold = np.array([f.sold for f in feedbacks], dtype=float)
        price = np.array([f.price for f in feedbacks], dtype=float)
        ranged = [f for f in feedbacks if f.low is not None and f.high is not None and f.coverage is not None]
        scores: dict[str, Any] = {
            "n": len(feedbacks),
            "mae": round(float(np.mean(np.abs(price - sold))), 2),
            "hit_rate": round(float(np.mean(hits(sold, price))), 4),
            "bias": round(float(np.mean(price - sold)), 2),
            "ranged": len(ranged),
        }
        if ranged:
            held = sum(1 for f in ranged if float(f.low or 0) <= f.sold <= float(f.high or 0))
            promised = float(np.mean([f.coverage for f in ranged]))
            p_value = binomial_cdf(held, len(ranged), promised)
            scores |= {
                "coverage": round(held / len(ranged), 4),
                "promised": round(promised, 4),
                "p_value": round(p_value, 4),
            }
            if len(ranged) >= MIN_RANGED and p_value < ALPHA:
                scores["warning"] = (
                    f"the ranges held {held} of {len(ranged)} sold prices ({held / len(ranged):.0%}), clearly below "
                    f"the promised {promised:.0%} (one-sided binomial p = {p_value:.3g}): recalibrate "
                    "(`rag-pricer calibrate`) on recent items"
                )
        return cls(**scores)


@dataclass(frozen=True)
class StrategyReport:
    strategy: str
    latest: Scores
    total: Scores


@dataclass(frozen=True)
class MonitorReport:
    """Per strategy, the latest ``window`` feedbacks and all of them; ``unmatched``: feedbacks
    whose description matched no recorded estimate (kept, not scored)."""

    window: int
    strategies: list[StrategyReport] = field(default_factory=list)
    unmatched: int = 0

    @property
    def warnings(self) -> list[str]:
        return [f"{r.strategy}: {s.warning}" for r in self.strategies for s in (r.latest,) if s.warning] + [
            f"{r.strategy} (all feedbacks): {r.total.warning}"
            for r in self.strategies
            if r.total.warning and not r.latest.warning
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"warnings": self.warnings}


def monitor(feedbacks: Sequence[Feedback], window: int) -> MonitorReport:
    """The report of ``feedbacks`` (oldest first), the latest ``window`` of each strategy apart."""
    by_strategy: dict[str, list[Feedback]] = {}
    for feedback in feedbacks:
        if feedback.strategy is not None and feedback.price is not None:
            by_strategy.setdefault(feedback.strategy, []).append(feedback)
    return MonitorReport(
        window=window,
        strategies=[
            StrategyReport(name, Scores.of(rows[-window:]), Scores.of(rows))
            for name, rows in sorted(by_strategy.items())
        ],
        unmatched=sum(1 for f in feedbacks if not f.matched),
    )
