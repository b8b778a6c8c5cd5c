"""Percentile vs BCa bootstrap intervals on a finished evaluation (issue 14): are the project's
percentile intervals good enough for heavy-tailed price errors?

For one run's per-item rows (``rag-pricer evaluate --json``), the script reports, for MAE, hit
rate and RMSLE:

1. the 95% intervals side by side: the project's ``Bootstrap`` (percentile), scipy's percentile
   and scipy's BCa (``scipy.stats.bootstrap(method="BCa")``, paired over truth and estimate),
   with the Monte-Carlo noise of the project's endpoints (their standard deviation over seeds);
2. their coverage where the truth is known: the run's items taken as the population, ``--trials``
   samples of ``--sizes`` items drawn from it, and the share of each method's intervals that
   contain the population's value (95% is right; less is too narrow).

    python scripts/bootstrap_methods.py var/knn-dev.json --out var/bootstrap-methods.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from rag_pricer.evaluation import Bootstrap, EvaluationResult
from rag_pricer.evaluation.metrics import Metric, hit_rate, mae, rmsle

METRICS: dict[str, Metric] = {"mae": mae, "hit_rate": hit_rate, "rmsle": rmsle}


def scipy_interval(
    metric: Metric, truth: np.ndarray, estimate: np.ndarray, method: str, resamples: int, seed: int
) -> tuple[float, float]:
    found = stats.bootstrap(
        (truth, estimate),
        lambda t, e, axis=-1: metric(t, e),
        paired=True,
        vectorized=True,
        method=method,
        n_resamples=resamples,
        rng=np.random.default_rng(seed),
    )
    return float(found.confidence_interval.low), float(found.confidence_interval.high)


def side_by_side(truth: np.ndarray, estimate: np.ndarray, resamples: int, seeds: int) -> dict[str, Any]:
    table: dict[str, Any] = {}
    ours = [Bootstrap(resamples, seed=seed).intervals(truth, estimate, METRICS) for seed in range(seeds)]
    for name, metric in METRICS.items():
        lows, highs = [o[name].low for o in ours], [o[name].high for o in ours]
        table[name] = {
            "value": float(metric(truth, estimate)),
            "percentile": [ours[0][name].low, ours[0][name].high],
            "percentile_endpoint_sd": [float(np.std(lows)), float(np.std(highs))],
            "scipy_percentile": scipy_interval(metric, truth, estimate, "percentile", resamples, 0),
            "bca": scipy_interval(metric, truth, estimate, "BCa", resamples, 0),
        }
    return table


def coverage(
    truth: np.ndarray, estimate: np.ndarray, size: int, trials: int, resamples: int, seed: int
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    population = {name: float(metric(truth, estimate)) for name, metric in METRICS.items()}
    covered = {name: {"percentile": 0, "bca": 0} for name in METRICS}
    widths: dict[str, dict[str, list[float]]] = {name: {"percentile": [], "bca": []} for name in METRICS}
    for trial in range(trials):
        pick = rng.integers(0, len(truth), size=size)
        t, e = truth[pick], estimate[pick]
        ours = Bootstrap(resamples, seed=trial).intervals(t, e, METRICS)
        for name, metric in METRICS.items():
            intervals = {
                "percentile": (ours[name].low, ours[name].high),
                "bca": scipy_interval(metric, t, e, "BCa", resamples, trial),
            }
            for method, (low, high) in intervals.items():
                covered[name][method] += int(low <= population[name] <= high)
                widths[name][method].append(high - low)
    return {
        name: {
            method: {"coverage": covered[name][method] / trials, "median_width": float(np.median(widths[name][method]))}
            for method in ("percentile", "bca")
        }
        for name in METRICS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", type=Path, help="an evaluation's JSON (rag-pricer evaluate --json)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument(
        "--seeds", type=int, default=20, help="seeds over which the endpoints' Monte-Carlo noise is measured"
    )
    parser.add_argument("--sizes", default="100,500", help="sample sizes of the coverage check")
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    result = EvaluationResult.load(args.result)
    truth = np.array([r.truth for r in result.scored])
    estimate = np.array([r.estimate for r in result.scored])
    report: dict[str, Any] = {
        "result": str(args.result),
        "strategy": result.strategy,
        "n": len(truth),
        "resamples": args.resamples,
        "intervals": side_by_side(truth, estimate, args.resamples, args.seeds),
        "coverage": {},
    }
    for size in (int(s) for s in args.sizes.split(",")):
        report["coverage"][size] = coverage(truth, estimate, size, args.trials, args.resamples, seed=size)
        print(f"coverage at n={size} done", flush=True)
    print(markdown(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


def shown(metric: str, value: float) -> str:
    return f"${value:,.2f}" if metric == "mae" else f"{value:.1%}" if metric == "hit_rate" else f"{value:.3f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"`{report['strategy']}` on {report['n']} items, {report['resamples']} resamples",
        "",
        "| metric | value | percentile (ours) | ± MC sd | percentile (scipy) | BCa (scipy) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in report["intervals"].items():
        cells = [shown(name, row["value"])] + [
            " – ".join(shown(name, v) for v in row[key])
            for key in ("percentile", "percentile_endpoint_sd", "scipy_percentile", "bca")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| sample size | metric | percentile coverage | BCa coverage | percentile median width | BCa median width |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for size, rows in report["coverage"].items():
        for name, row in rows.items():
            p, b = row["percentile"], row["bca"]
            cells = [
                f"{p['coverage']:.1%}",
                f"{b['coverage']:.1%}",
                f"{p['median_width']:.4g}",
                f"{b['median_width']:.4g}",
            ]
            lines.append(f"| {size} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
