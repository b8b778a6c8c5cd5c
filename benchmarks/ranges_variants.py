"""Variants of the ensemble's item-dependent range that were measured and not kept, cross-fitted.

    python -m benchmarks.ranges_variants --store var/store --models-dir var/models \\
        [--cache var/models/ensemble-cache] [--extra ''] [--seeds 20]

The ensemble's out-of-fold estimates of the dev items (as ``benchmarks.ranges`` makes them: the
default ensemble's bases, fitted with the extra items unscored) get 80% ranges from Mondrian
thirds by top similarity of normalised scores ``(r - centre) / s`` (``r = log(truth / estimate)``,
the centre linear in the log estimate), with scales ``s`` fitted on the other folds:

- ``nnls``: ``s`` linear in the spread and the dissimilarity (the package's ``mondrian-normalised``);
- ``glm``: ``s = exp(linear form)`` of the spread, the dissimilarity and the log estimate
  (Poisson regression of ``|r - centre|``: the package's ``mondrian-glm``);
- ``+ disagreement``: either, with the std of the bases' log estimates as one more input;
- ``glm per third``: one log-link scale per third (least squares of ``log(|r - centre| + 0.05)``);
- ``cqr``: conformalised linear quantile regression (Romano et al. 2019) of the 10% and 90%
  quantiles of ``r`` on the same inputs, bounds per third.

Printed: coverage overall and per third (mean over ``--seeds`` fold splits), the median width
in $ and in high/low, and each against ``glm`` on the same split (mean ± sd, narrower on k of n).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import nnls
from sklearn.linear_model import PoissonRegressor, QuantileRegressor
from sklearn.model_selection import KFold

from benchmarks.ranges import estimates
from benchmarks.support import ROOT, command_line
from rag_pricer.api import Estimator
from rag_pricer.items import read_items
from rag_pricer.pricing.ranges import conformal_bounds
from rag_pricer.settings import Settings
from rag_pricer.training.base_table import BaseTable
from rag_pricer.training.prepare import PREPARED_BASES

COVERAGE = 0.8
#: (lower, upper) log bounds of the held-out rows from the fitting rows
Fit = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def thirds(top: np.ndarray, fit: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.quantile(top[fit], [1 / 3, 2 / 3])
    return np.searchsorted(edges, top[fit], side="right"), np.searchsorted(edges, top[held], side="right")


def normalised(r: np.ndarray, log_price: np.ndarray, top: np.ndarray, inputs: np.ndarray, scale: str) -> Fit:
    def fit_bounds(fit: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        design = np.column_stack([np.ones(len(r)), log_price])
        centre = design @ np.linalg.lstsq(design[fit], r[fit], rcond=None)[0]
        deviation = np.abs(r - centre)
        group_fit, group_held = thirds(top, fit, held)
        if scale == "nnls":
            with_one = np.column_stack([np.ones(len(r)), inputs])
            s = np.maximum(with_one @ nnls(with_one[fit], deviation[fit])[0], 0.05)
        elif scale == "glm":
            s = np.maximum(
                PoissonRegressor(alpha=0.0, max_iter=1000).fit(inputs[fit], deviation[fit]).predict(inputs), 0.05
            )
        else:  # one log-linear scale per third
            s = np.empty(len(r))
            group = np.empty(len(r), dtype=int)
            group[fit], group[held] = group_fit, group_held
            with_one = np.column_stack([np.ones(len(r)), inputs])
            for g in range(3):
                rows = fit[group_fit == g]
                w = np.linalg.lstsq(with_one[rows], np.log(deviation[rows] + 0.05), rcond=None)[0]
                s[group == g] = np.exp(with_one[group == g] @ w)
        scores = (r[fit] - centre[fit]) / s[fit]
        q = np.array([conformal_bounds(scores[group_fit == g], COVERAGE) for g in range(3)])[group_held]
        return centre[held] + s[held] * q[:, 0], centre[held] + s[held] * q[:, 1]

    return fit_bounds


def cqr(r: np.ndarray, top: np.ndarray, inputs: np.ndarray) -> Fit:
    def fit_bounds(fit: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tail = (1 - COVERAGE) / 2
        low, high = (
            QuantileRegressor(quantile=q, alpha=0.0, solver="highs").fit(inputs[fit], r[fit]).predict(inputs)
            for q in (tail, 1 - tail)
        )
        scores = np.maximum(low[fit] - r[fit], r[fit] - high[fit])
        group_fit, group_held = thirds(top, fit, held)
        # one-sided score: its conformal order statistic at COVERAGE is the upper bound at 2 * COVERAGE - 1
        q = np.array([conformal_bounds(scores[group_fit == g], 2 * COVERAGE - 1)[1] for g in range(3)])[group_held]
        return low[held] - q, high[held] + q

    return fit_bounds


def measure(fit_bounds: Fit, r: np.ndarray, price: np.ndarray, top: np.ndarray, seed: int) -> tuple[float, ...]:
    low, high = np.empty_like(r), np.empty_like(r)
    for fit, held in KFold(n_splits=5, shuffle=True, random_state=seed).split(r):
        low[held], high[held] = fit_bounds(fit, held)
    inside = (r >= low) & (r <= high)
    by_third = [inside[rows].mean() for rows in np.array_split(np.argsort(top, kind="stable"), 3)]
    return (inside.mean(), *by_third, np.median(price * (np.exp(high) - np.exp(low))), np.median(np.exp(high - low)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "store")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items.jsonl.gz")
    parser.add_argument("--extra", default=str(ROOT.parent / "shared" / "data" / "items_extra.jsonl.gz"))
    parser.add_argument("--bases", default=",".join(PREPARED_BASES))
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "models" / "ensemble-cache")
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    load_before = os.getloadavg()
    settings = Settings(_env_file=None, store_path=args.store, models_dir=args.models_dir, items_path=args.items)
    table = BaseTable(Estimator.from_settings(settings), args.cache)
    items = read_items(args.items, split="dev")
    taken = {i.id for i in items}
    added = [i for i in read_items(Path(args.extra)) if i.id not in taken] if args.extra else []
    bases = args.bases.split(",")
    price, evidence = estimates("ensemble", table, items, added, bases, 5)
    assert evidence is not None
    truth = np.array([i.price for i in items])
    r, log_price, top = np.log(truth / price), np.log(price), evidence.top_similarity
    logs = np.log(np.array([[o.price for o in table.outputs(b, items)] for b in bases]).T)
    signals = np.column_stack([evidence.log_spread, 1 - top])
    disagreement = logs.std(axis=1)
    variants: dict[str, Fit] = {
        "glm": normalised(r, log_price, top, np.column_stack([signals, log_price]), "glm"),
        "nnls": normalised(r, log_price, top, signals, "nnls"),
        "nnls + disagreement": normalised(r, log_price, top, np.column_stack([signals, disagreement]), "nnls"),
        "glm + disagreement": normalised(r, log_price, top, np.column_stack([signals, log_price, disagreement]), "glm"),
        "glm per third": normalised(r, log_price, top, np.column_stack([signals, log_price]), "per third"),
        "cqr": cqr(r, top, np.column_stack([signals, log_price])),
    }
    found = {
        name: np.array([measure(f, r, price, top, seed) for seed in range(args.seeds)]) for name, f in variants.items()
    }
    lines = [
        f"# {command_line('benchmarks.ranges_variants', sys.argv[1:])}",
        f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; {len(items)} dev items, "
        f"{args.seeds} fold splits",
        "",
        "| scale | coverage | thirds (least similar first) | median width | median high/low "
        "| width vs glm | narrower on | high/low vs glm | narrower on |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in found.items():
        width = rows[:, 4] / found["glm"][:, 4] - 1
        ratio = rows[:, 5] / found["glm"][:, 5] - 1
        lines.append(
            f"| {name} | {rows[:, 0].mean():.1%} | {' / '.join(f'{c:.1%}' for c in rows[:, 1:4].mean(axis=0))} "
            f"| ${rows[:, 4].mean():,.2f} | {rows[:, 5].mean():.2f} | {width.mean():+.1%} ± {width.std():.1%} "
            f"| {int((width < 0).sum())}/{args.seeds} | {ratio.mean():+.1%} ± {ratio.std():.1%} "
            f"| {int((ratio < 0).sum())}/{args.seeds} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
