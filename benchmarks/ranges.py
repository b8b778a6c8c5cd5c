"""Item-dependent price ranges and confidence levels on dev, cross-fitted.

    python -m benchmarks.ranges --store var/store --models-dir var/models \
        [--strategies knn,ensemble] [--bases knn,tfidf-ridge,features] [--cache var/ensemble-cache] [--folds 5]

Per strategy, its estimates of the ``--split`` items: ``knn`` priced (cached under ``--cache``),
``ensemble`` the out-of-fold estimates of the ensemble over ``--bases`` (as ``train-ensemble``
makes them, dev only, no extra items). Then, per range method (``pricing.ranges.METHODS``), the
K-fold cross-fitted coverage of the 80% range overall and in each third of the items by top
similarity (least similar first), the median width ($) and the median high/low; then the
confidence levels, cross-fitted too (thresholds placed on K-1 folds, the held-out fold given
its levels): items and MAE per level. Last, what knn says of texts the store knows nothing
like. Prints the tables and writes them, with the command and the load average, to
benchmarks/out/ranges.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks.support import ROOT, command_line
from rag_pricer.api import Estimator
from rag_pricer.items import read_items
from rag_pricer.pricing.confidence import ConfidenceLevels
from rag_pricer.pricing.evidence import Evidence
from rag_pricer.pricing.ranges import METHODS
from rag_pricer.pricing.ranges.crossfit import cross_fitted_coverage
from rag_pricer.settings import Settings
from rag_pricer.training.base_table import BaseTable
from rag_pricer.training.ensemble_trainer import EnsembleTrainer

UNKNOWN = ("hello world", "qzx 7fj kwp0 vvb ryt 93k", "KitchenAid Artisan 5-quart tilt-head stand mixer, empire red")


def estimates(
    strategy: str, table: BaseTable, items: list, bases: list[str], folds: int
) -> tuple[np.ndarray, Evidence | None]:
    """``strategy``'s estimates of ``items`` (out of fold for the ensemble) and their evidence."""
    if strategy != "ensemble":
        outputs = table.outputs(strategy, items)
        return np.array([o.price for o in outputs]), Evidence.of([o.signals for o in outputs])
    found = {base: table.outputs(base, items) for base in bases}
    trainer = EnsembleTrainer(bases, folds=folds)
    outcome = trainer.train(found, [i.price for i in items], [i.id for i in items], [True] * len(items))
    assert outcome.out_of_fold is not None
    print(f"ensemble: chose {outcome.chosen} (cross-fitted MAE ${outcome.kinds[outcome.chosen]['mae'].value:,.2f})")
    return outcome.out_of_fold, Evidence.of([o.signals for o in found[trainer.signal_base or bases[0]]])


def range_rows(
    strategy: str, truth: np.ndarray, price: np.ndarray, evidence: Evidence, folds: int, seeds: int
) -> tuple[list[str], list[str]]:
    """Rows of the fold split of seed 0, and rows of the mean over ``seeds`` fold splits."""
    first, mean = [], []
    for method in METHODS:
        reports = [cross_fitted_coverage(truth, price, 0.8, folds, seed, evidence, method) for seed in range(seeds)]
        for rows, figures in ((first, reports[:1]), (mean, reports)):
            coverage = np.mean([r.coverage for r in figures])
            thirds = " | ".join(f"{c:.1%}" for c in np.mean([r.by_third for r in figures], axis=0))
            width, ratio = np.mean([r.median_width for r in figures]), np.mean([r.median_ratio for r in figures])
            rows.append(f"| {strategy} | {method} | {coverage:.1%} | {thirds} | ${width:,.2f} | {ratio:.2f} |")
    return first, mean


def confidence_rows(strategy: str, truth: np.ndarray, price: np.ndarray, evidence: Evidence, folds: int) -> list[str]:
    from sklearn.model_selection import KFold

    levels = np.empty(len(truth), dtype=object)
    for fit, held in KFold(n_splits=folds, shuffle=True, random_state=0).split(truth):
        placed = ConfidenceLevels.fit(evidence.take(fit), truth[fit], price[fit])
        levels[held] = placed.levels(evidence.take(held))
    errors = np.abs(truth - price)
    rows = []
    for level in ("high", "medium", "low"):
        chosen = levels == level
        rows.append(
            f"| {strategy} | {level} | {int(chosen.sum())} | ${errors[chosen].mean():,.2f} "
            f"| {np.median(np.abs(np.log(truth[chosen] / price[chosen]))):.3f} |"
        )
    rows.append(
        f"| {strategy} | all | {len(truth)} | ${errors.mean():,.2f} | {np.median(np.abs(np.log(truth / price))):.3f} |"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "store")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items.jsonl.gz")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--strategies", default="knn,ensemble")
    parser.add_argument("--bases", default="knn,tfidf-ridge,features")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "ensemble-cache")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=8, help="Fold splits averaged in the second range table.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "ranges.md")
    args = parser.parse_args()
    load_before = os.getloadavg()
    settings = Settings(_env_file=None, store_path=args.store, models_dir=args.models_dir, items_path=args.items)
    estimator = Estimator.from_settings(settings)
    items = read_items(args.items, split=args.split)
    truth = np.array([i.price for i in items])
    table = BaseTable(estimator, args.cache)
    ranges = [
        "| strategy | method | coverage | least similar third | middle third | most similar third "
        "| median width | median high/low |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    averaged = list(ranges)
    levels = ["| strategy | level | items | MAE | median abs log error |", "|---|---|---:|---:|---:|"]
    for strategy in args.strategies.split(","):
        price, evidence = estimates(strategy, table, items, args.bases.split(","), args.folds)
        if evidence is None:
            print(f"{strategy}: its estimates show no comparables: global range only", file=sys.stderr)
            continue
        first, mean = range_rows(strategy, truth, price, evidence, args.folds, args.seeds)
        ranges += first
        averaged += mean
        levels += confidence_rows(strategy, truth, price, evidence, args.folds)
    top = Evidence.of([o.signals for o in table.outputs("knn", items)])
    assert top is not None
    pricer = estimator.pricer("knn")
    unknown = ["| text | top similarity | level | reason |", "|---|---:|---|---|"]
    for text in UNKNOWN:
        found = pricer.estimate(text)
        unknown.append(
            f"| {text} | {max(c.similarity for c in found.comparables):.3f} | {found.confidence} "
            f"| {found.confidence_reason} |"
        )
    quantiles = np.quantile(top.top_similarity, [0.05, 0.25, 0.5, 0.75])
    spread = np.quantile(top.log_spread, [0.25, 0.5, 0.75])
    text = "\n".join(
        [
            f"# {command_line('benchmarks.ranges', sys.argv[1:])}",
            f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; "
            f"{len(items)} {args.split} items",
            f"top similarity quantiles 5/25/50/75%: {', '.join(f'{q:.3f}' for q in quantiles)}; "
            f"log spread 25/50/75%: {', '.join(f'{q:.3f}' for q in spread)}",
            "",
            "## 80% ranges, cross-fitted (fold split of seed 0)",
            *ranges,
            "",
            f"## 80% ranges, cross-fitted, mean over {args.seeds} fold splits",
            *averaged,
            "",
            "## Confidence levels, cross-fitted",
            *levels,
            "",
            "## Texts the store knows nothing like (knn)",
            *unknown,
            "",
        ]
    )
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
