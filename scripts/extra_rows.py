"""The extra items (dev distribution) as training rows of ``boosting-nn``, scored on dev (issue 22).

Reads the feature matrices ``scripts/shift_weights.py --model boosting-nn`` cached (train, dev,
extra: transforms fitted on train, neighbours from a train-only knowledge base, so an extra
item's neighbours are those a dev item gets) and fits ``boosting-nn``'s LightGBM on train
alone and on train + extra with the extra rows weighted ``w``; each is scored on the dev
items and paired with train alone (2,000 resamples). Dev is never a training row.

    PYTHONPATH=$PWD nice -n 10 python scripts/extra_rows.py --items ../shared/data/items.jsonl.gz \\
        --extra ../shared/data/items_extra.jsonl.gz --cache /tmp/accuracy-cache/shift --weights 1,3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag_pricer.evaluation import Bootstrap
from rag_pricer.evaluation.metrics import hit_rate, mae
from rag_pricer.items import read_items
from rag_pricer.strategies.baselines.boosting_neighbours import NeighbourBoostingBaseline

METRICS = {"mae": mae, "hit_rate": hit_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--extra", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="the .npy matrices of scripts/shift_weights.py")
    parser.add_argument("--weights", default="1,3", help="weights of the extra rows to try (comma-separated)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    prices = {
        "train": [i.price for i in read_items(args.items, split="train")],
        "dev": [i.price for i in read_items(args.items, split="dev")],
        "extra": [i.price for i in read_items(args.extra)],
    }
    matrices = {name: np.load(args.cache / f"boosting-nn-{name}.npy") for name in prices}
    if any(len(matrices[n]) != len(prices[n]) for n in prices):
        raise SystemExit("the cached matrices are not those of these items: run scripts/shift_weights.py again")
    truth = np.array(prices["dev"])
    predictions: dict[str, np.ndarray] = {}
    for weight in [0.0, *(float(w) for w in args.weights.split(","))]:
        name = "train only" if weight == 0 else f"train + extra (w={weight:g})"
        parts = ["train"] if weight == 0 else ["train", "extra"]
        features = np.vstack([matrices[p] for p in parts])
        target = np.log1p(np.concatenate([prices[p] for p in parts]))
        weights = np.concatenate([np.full(len(prices[p]), 1.0 if p == "train" else weight) for p in parts])
        started = time.perf_counter()
        booster = NeighbourBoostingBaseline().regressor().fit(features, target, sample_weight=weights)
        predictions[name] = np.expm1(np.clip(booster.predict(matrices["dev"]), target.min(), target.max()))
        found = predictions[name]
        print(
            f"{name}: MAE ${mae(truth, found):.2f}, hit {hit_rate(truth, found):.1%}, "
            f"bias ${np.mean(found - truth):+.2f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    bootstrap = Bootstrap(2000, seed=0)
    report: dict[str, Any] = {}
    for name, found in predictions.items():
        row: dict[str, Any] = {
            k: [v.value, v.low, v.high] for k, v in bootstrap.intervals(truth, found, METRICS).items()
        }
        row["bias"] = float(np.mean(found - truth))
        if name != "train only":
            paired = bootstrap.differences(truth, found, predictions["train only"], METRICS)
            row["vs train only"] = {k: [v.value, v.low, v.high] for k, v in paired.items()}
        report[name] = row
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
