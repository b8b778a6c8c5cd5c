"""Two runs compared item by item: the paired bootstrap difference of their metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_pricer.evaluation.bootstrap import Bootstrap, Interval
from rag_pricer.evaluation.metrics import Metric
from rag_pricer.evaluation.results import EvaluationResult
from rag_pricer.evaluation.runner import Evaluation
from rag_pricer.items import Item
from rag_pricer.pricing.pricer import Pricer


def scored_variant(pricer: Pricer, items: Sequence[Item], out: Path, options: Mapping[str, Any]) -> EvaluationResult:
    """One variant of a paired comparison scored on ``items``: resumable from
    ``out/NAME.jsonl``, saved as ``out/NAME.json`` (NAME = ``pricer.name``), its headline printed."""
    result = Evaluation(
        pricer,
        list(items),
        batch_size=16,
        bootstrap=Bootstrap(1000, seed=0),
        progress=True,
        checkpoint=out / f"{pricer.name}.jsonl",
        options=dict(options),
    ).run()
    result.save(out / f"{pricer.name}.json")
    print(
        f"{pricer.name}: MAE ${result.value('mae'):.2f}, hit {result.value('hit_rate'):.1%}, "
        f"fallbacks {result.fallbacks}",
        flush=True,
    )
    return result


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
