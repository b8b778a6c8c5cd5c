"""Two runs compared item by item: the paired bootstrap difference of their metrics."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rag_pricer.evaluation.bootstrap import Bootstrap, Interval
from rag_pricer.evaluation.metrics import Metric
from rag_pricer.evaluation.results import EvaluationResult


def paired_differences(
    run: EvaluationResult, reference: EvaluationResult, metrics: Mapping[str, Metric], bootstrap: Bootstrap
) -> tuple[int, dict[str, Interval]]:
    """``metric(run) - metric(reference)`` on the items both scored, with ``bootstrap``'s
    intervals (the pairs are resampled together); returns the number of those items too."""
    theirs = {r.id: r for r in reference.scored}
    common = [(r, theirs[r.id]) for r in run.scored if r.id in theirs]
    if not common:
        raise ValueError(f"{run.strategy} and {reference.strategy} scored no item in common")
    truth = np.array([r.truth for r, _ in common])
    ours, other = np.array([r.estimate for r, _ in common]), np.array([s.estimate for _, s in common])
    return len(common), bootstrap.differences(truth, ours, other, metrics)
