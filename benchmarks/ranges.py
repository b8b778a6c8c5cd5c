"""Item-dependent price ranges and confidence levels on dev, cross-fitted.

    python -m benchmarks.ranges --store var/store --models-dir var/models \
        [--strategies knn,ensemble] [--bases knn,boosting,boosting-nn,tfidf-ridge,features] \
        [--extra ../shared/data/items_extra.jsonl.gz | --extra ''] [--cache var/models/ensemble-cache] \
        [--folds 5] [--seeds 8] [--quick]

Per strategy, its estimates of the ``--split`` items: ``knn`` priced (cached under ``--cache``),
``ensemble`` the out-of-fold estimates of the ensemble over ``--bases`` (as ``train-ensemble``
makes them: by default the bases of the default ensemble, fitted with the ``--extra`` items
unscored, as ``prepare`` does; the bases' outputs are read from ``--cache`` when there). Then,
per range method (``pricing.ranges.METHODS``), the K-fold cross-fitted coverage of the 80% range
overall and in each third of the items by top similarity (least similar first), the median
width ($) and the median high/low: on the fold split of seed 0, then the mean over ``--seeds``
fold splits with the spread over splits (sd, and the lowest and highest third), and each
method's width against the ``global`` one's and the ``mondrian-normalised`` one's on the same
split (mean and sd of the ratio, and on how many splits it is narrower); then the confidence
levels, cross-fitted too (thresholds placed on K-1 folds, the held-out fold given its levels):
items and MAE per level. Last, what knn says of texts the store knows nothing like. Prints the
tables and writes them, with the command and the load average, to benchmarks/out/ranges.md.
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
from rag_pricer.training.prepare import PREPARED_BASES

UNKNOWN = ("hello world", "qzx 7fj kwp0 vvb ryt 93k", "KitchenAid Artisan 5-quart tilt-head stand mixer, empire red")


def estimates(
    strategy: str, table: BaseTable, items: list, added: list, bases: list[str], folds: int
) -> tuple[np.ndarray, Evidence | None]:
    """``strategy``'s estimates of ``items`` (out of fold for the ensemble, fitted with the
    ``added`` items unscored) and their evidence."""
    if strategy != "ensemble":
        outputs = table.outputs(strategy, items)
        return np.array([o.price for o in outputs]), Evidence.of([o.signals for o in outputs])
    every = [*items, *added]
    found = {base: table.outputs(base, every) for base in bases}
    trainer = EnsembleTrainer(bases, folds=folds)
    scored = [True] * len(items) + [False] * len(added)
    outcome = trainer.train(found, [i.price for i in every], [i.id for i in every], scored)
    assert outcome.out_of_fold is not None
    print(
        f"ensemble: chose {outcome.chosen} of {','.join(bases)} on {len(items)} items + {len(added)} extra "
        f"(cross-fitted MAE ${outcome.kinds[outcome.chosen]['mae'].value:,.2f})"
    )
    shown = found[trainer.signal_base or bases[0]][: len(items)]
    return outcome.out_of_fold, Evidence.of([o.signals for o in shown])


def range_rows(
    strategy: str, truth: np.ndarray, price: np.ndarray, evidence: Evidence, folds: int, seeds: int
) -> tuple[list[str], list[str], list[str]]:
    """Rows of the fold split of seed 0, rows of the mean (and spread) over ``seeds`` fold
    splits, and rows of each method's widths against the global range's on the same splits."""
    first, mean, against = [], [], []
    reports = {
        method: [cross_fitted_coverage(truth, price, 0.8, folds, seed, evidence, method) for seed in range(seeds)]
        for method in METHODS
    }
    for method, found in reports.items():
        for rows, figures in ((first, found[:1]), (mean, found)):
            coverage = [r.coverage for r in figures]
            thirds = np.array([r.by_third for r in figures])
            width, ratio = [r.median_width for r in figures], [r.median_ratio for r in figures]
            line = f"| {strategy} | {method} | {np.mean(coverage):.1%} | " + " | ".join(
                f"{c:.1%}" for c in thirds.mean(axis=0)
            )
            if rows is first:
                rows.append(f"{line} | ${width[0]:,.2f} | {ratio[0]:.2f} |")
            else:
                rows.append(
                    f"{line} | {thirds.min():.1%} – {thirds.max():.1%} | ${np.mean(width):,.2f} ± {np.std(width):.2f} "
                    f"| {np.mean(ratio):.2f} ± {np.std(ratio):.2f} |"
                )
        for reference in ("global", "mondrian-normalised"):
            if method in (reference, "global") or reference not in reports:
                continue
            dollars = np.array([r.median_width for r in found]) / [r.median_width for r in reports[reference]] - 1
            ratios = np.array([r.median_ratio for r in found]) / [r.median_ratio for r in reports[reference]] - 1
            against.append(
                f"| {strategy} | {method} | {reference} | {dollars.mean():+.1%} ± {dollars.std():.1%} "
                f"| {int((dollars < 0).sum())}/{seeds} | {ratios.mean():+.1%} ± {ratios.std():.1%} "
                f"| {int((ratios < 0).sum())}/{seeds} |"
            )
    return first, mean, against


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
    parser.add_argument("--bases", default=",".join(PREPARED_BASES), help="Bases of the ensemble.")
    parser.add_argument(
        "--extra",
        default=str(ROOT.parent / "shared" / "data" / "items_extra.jsonl.gz"),
        help="Unscored items the ensemble is also fitted on ('' for none).",
    )
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "models" / "ensemble-cache")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=8, help="Fold splits averaged in the second range table.")
    parser.add_argument("--quick", action="store_true", help="2 fold splits, and no ensemble's extra items.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "ranges.md")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.extra = min(args.seeds, 2), ""
    load_before = os.getloadavg()
    settings = Settings(_env_file=None, store_path=args.store, models_dir=args.models_dir, items_path=args.items)
    estimator = Estimator.from_settings(settings)
    items = read_items(args.items, split=args.split)
    taken = {i.id for i in items}
    added = [i for i in read_items(Path(args.extra)) if i.id not in taken] if args.extra else []
    truth = np.array([i.price for i in items])
    table = BaseTable(estimator, args.cache)
    ranges = [
        "| strategy | method | coverage | least similar third | middle third | most similar third "
        "| median width | median high/low |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    averaged = [
        "| strategy | method | coverage | least similar third | middle third | most similar third "
        "| thirds, lowest – highest split | median width (± sd) | median high/low (± sd) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    against = [
        "| strategy | method | against | median width | narrower on | median high/low | narrower on |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    levels = ["| strategy | level | items | MAE | median abs log error |", "|---|---|---:|---:|---:|"]
    for strategy in args.strategies.split(","):
        price, evidence = estimates(strategy, table, items, added, args.bases.split(","), args.folds)
        if evidence is None:
            print(f"{strategy}: its estimates show no comparables: global range only", file=sys.stderr)
            continue
        first, mean, paired = range_rows(strategy, truth, price, evidence, args.folds, args.seeds)
        ranges += first
        averaged += mean
        against += paired
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
            f"{len(items)} {args.split} items (+{len(added)} extra, fitting the ensemble only)",
            f"top similarity quantiles 5/25/50/75%: {', '.join(f'{q:.3f}' for q in quantiles)}; "
            f"log spread 25/50/75%: {', '.join(f'{q:.3f}' for q in spread)}",
            "",
            "## 80% ranges, cross-fitted (fold split of seed 0)",
            *ranges,
            "",
            f"## 80% ranges, cross-fitted, mean over {args.seeds} fold splits (± sd over splits)",
            *averaged,
            "",
            f"## Widths against another method's on the same fold split ({args.seeds} splits, mean ± sd)",
            *against,
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
