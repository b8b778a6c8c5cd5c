"""Distribution shift (issue 22, item 3): does weighting train items toward dev's mix help?

Train is cheaper than dev (mean $105 vs $221). The weights come from the **extra** items
(``items_extra.jsonl.gz``, drawn like dev), never from dev itself, so dev stays a fair judge:

- ``category``: share of the item's category among extra items / its share among train items;
- ``price``: the same ratio for the item's price bin (deciles of train's log price);
- ``joint``: the ratio for its (category, price bin) cell, smoothed toward ``category`` x ``price``;
- ``classifier``: p/(1-p) of a logistic regression telling extra from train on the features
  (text components, engineered features, embedding; not the price).

Weights are clipped to [0.1, 10] and scaled to mean 1. The model (``boosting`` or
``boosting-nn``) builds its feature matrix once; LightGBM is fitted once per weighting and
scored on the dev items with paired bootstrap intervals against no weighting.

    PYTHONPATH=$PWD RAG_PRICER_STORE_PATH=/work/main/var/store nice -n 10 python scripts/shift_weights.py \\
        --items ../shared/data/items.jsonl.gz --extra ../shared/data/items_extra.jsonl.gz \\
        --model boosting-nn --cache /tmp/accuracy-cache/shift --out docs/shift-weights.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_pricer.evaluation import Bootstrap
from rag_pricer.evaluation.metrics import hit_rate, mae
from rag_pricer.items import Item, read_items
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.query import Query
from rag_pricer.settings import Settings
from rag_pricer.strategies.baselines.catalog import BASELINES, SharedParts
from rag_pricer.training.baselines import BaselineTrainer

CLIP = (0.1, 10.0)


def ratio(train_keys: Sequence[object], extra_keys: Sequence[object], alpha: float = 1.0) -> np.ndarray:
    """Per train item: share of its key among extra / share among train (add-``alpha`` smoothed)."""
    train, extra = Counter(train_keys), Counter(extra_keys)
    keys = set(train) | set(extra)
    n_train, n_extra = len(train_keys) + alpha * len(keys), len(extra_keys) + alpha * len(keys)
    return np.array([((extra[k] + alpha) / n_extra) / ((train[k] + alpha) / n_train) for k in train_keys])


def normalised(weights: np.ndarray) -> np.ndarray:
    weights = np.clip(weights, *CLIP)
    return weights / weights.mean()


def price_bins(train: Sequence[Item], items: Sequence[Item]) -> list[int]:
    edges = np.quantile(np.log([i.price for i in train]), np.linspace(0, 1, 11)[1:-1])
    return [int(b) for b in np.searchsorted(edges, np.log([i.price for i in items]))]


def classifier_weights(train_matrix: np.ndarray, extra_matrix: np.ndarray, seed: int = 0) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.nan_to_num(np.vstack([train_matrix, extra_matrix]))
    y = np.r_[np.zeros(len(train_matrix)), np.ones(len(extra_matrix))]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=seed))
    model.fit(x, y)
    p = model.predict_proba(np.nan_to_num(train_matrix))[:, 1]
    return (p / (1 - p)) * (len(train_matrix) / len(extra_matrix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--extra", type=Path, required=True)
    parser.add_argument("--model", default="boosting-nn", choices=["boosting", "boosting-nn"])
    parser.add_argument("--cache", type=Path, required=True, help="folder of the feature matrices (.npy)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()

    train = read_items(args.items, split="train")
    dev = read_items(args.items, split="dev")
    extra = read_items(args.extra)
    trainer = BaselineTrainer.for_settings(Settings(), [args.model])
    shared = SharedParts([], trainer.embedder, vectors=trainer.vectors, retriever=trainer.retriever)
    model = BASELINES[args.model].make(shared)
    queries = {
        name: [Query.of(i, Pricer.max_chars) for i in items]
        for name, items in (("train", train), ("dev", dev), ("extra", extra))
    }
    train_prices = np.array([i.price for i in train])
    args.cache.mkdir(parents=True, exist_ok=True)
    matrices = {}
    # The transforms are fitted on train in this run: the cached matrices are those of one fit.
    matrices["train"] = model.training_matrix(queries["train"], train_prices)  # type: ignore[attr-defined]
    for name in ("dev", "extra"):
        matrices[name] = model.matrix(queries[name])  # type: ignore[attr-defined]
    for name, matrix in matrices.items():
        np.save(args.cache / f"{args.model}-{name}.npy", matrix)
    print(f"matrices: {', '.join(f'{k} {v.shape}' for k, v in matrices.items())}", flush=True)

    categories = [i.category or "" for i in train], [i.category or "" for i in extra]
    bins = price_bins(train, train), price_bins(train, extra)
    by_category, by_price = ratio(*categories), ratio(*bins)
    cells = ratio(list(zip(*(categories[0], bins[0]))), list(zip(*(categories[1], bins[1]))), alpha=1.0)
    weightings = {
        "none": np.ones(len(train)),
        "category": normalised(by_category),
        "price": normalised(by_price),
        "joint": normalised(np.sqrt(cells * by_category * by_price)),
        "classifier": normalised(classifier_weights(matrices["train"], matrices["extra"])),
    }
    truth = np.array([i.price for i in dev])
    logs = np.log1p(train_prices)
    low, high = logs.min(), logs.max()
    predictions = {}
    for name, weights in weightings.items():
        booster = model.regressor().fit(matrices["train"], logs, sample_weight=weights)  # type: ignore[attr-defined]
        predictions[name] = np.expm1(np.clip(booster.predict(matrices["dev"]), low, high))
        print(
            f"{name}: dev MAE ${mae(truth, predictions[name]):.2f}, hit {hit_rate(truth, predictions[name]):.1%}, "
            f"train-weighted mean price ${np.average(train_prices, weights=weights):.0f}",
            flush=True,
        )
    bootstrap = Bootstrap(args.resamples, seed=0)
    report: dict[str, Any] = {"model": args.model, "n_train": len(train), "n_dev": len(dev), "n_extra": len(extra)}
    report["variants"] = {}
    for name, predicted in predictions.items():
        intervals = bootstrap.intervals(truth, predicted, {"mae": mae, "hit_rate": hit_rate})
        row: dict[str, Any] = {k: {"value": v.value, "low": v.low, "high": v.high} for k, v in intervals.items()}
        if name != "none":
            found = bootstrap.differences(truth, predicted, predictions["none"], {"abs_error": mae, "hit": hit_rate})
            row["vs_none"] = {k: {"value": v.value, "low": v.low, "high": v.high} for k, v in found.items()}
        row["weighted_train_mean_price"] = float(np.average(train_prices, weights=weightings[name]))
        report["variants"][name] = row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
