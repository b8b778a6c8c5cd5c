"""The ensemble under several knowledge bases and models, paired on the same dev items (issue 22).

Each ``--config NAME=STORE,MODELS_DIR`` is one way to make the default ensemble: a knowledge
base (e.g. train only, or train plus the extra items of the dev distribution) and a folder of
trained bases. For each, the bases are priced on the dev items and the extra ones (cached under
``MODELS_DIR/ensemble-cache``, as ``rag-pricer prepare`` does; extra items the store holds are
priced leave-one-out), the ensemble is cross-fitted as ``train-ensemble`` does (5 folds on dev,
extra items always on the fitting side, kind chosen by the lowest cross-fitted MAE), and its
out-of-fold dev prices are kept. Two price-level corrections of the chosen kind are cross-fitted
on the same folds, each fitted on the fold's fitting side (never on the fold it prices):
``level-mean`` (one factor making the mean price of the extra items right, the -$20 bias) and
``level-hit`` (the log shift with the best hit rate on the extra items).

Every configuration and correction is paired with the reference configuration's ensemble,
``boosting-nn`` and ``knn``, and with its own variant there (``knowledge knn`` with
``today knn``), on the same dev items (2,000 resamples). The out-of-fold prices are saved
beside ``--out`` (``.npz``).

    PYTHONPATH=$PWD nice -n 10 python scripts/extra_items.py --items ../shared/data/items.jsonl.gz \\
        --extra ../shared/data/items_extra.jsonl.gz \\
        --config today=/work/main/var/store,/work/main/var/models \\
        --config knowledge=/tmp/accuracy-store,/tmp/accuracy-models-kb --out /tmp/accuracy-x/extra-items.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from rag_pricer.api import Estimator
from rag_pricer.evaluation import Bootstrap
from rag_pricer.evaluation.metrics import hit_rate, mae
from rag_pricer.items import Item, read_items
from rag_pricer.settings import Settings
from rag_pricer.strategies.ensemble.model import EnsembleModel
from rag_pricer.strategies.ensemble.signals import feature_matrix
from rag_pricer.training.ensemble_job import EnsembleJob
from rag_pricer.training.ensemble_trainer import EnsembleTrainer
from rag_pricer.training.prepare import PREPARED_BASES

METRICS = {"mae": mae, "hit_rate": hit_rate}
SHIFTS = np.linspace(-0.4, 0.4, 81)


def level_corrected(
    model_of: Any, features: np.ndarray, prices: np.ndarray, scored: np.ndarray, folds: int = 5, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, list[float]]]:
    """Out-of-fold dev prices of the chosen kind, as is and with each level correction fitted on
    the fold's fitting side (the model's predictions of the extra items there); the log shift
    of each correction in each fold."""
    from sklearn.model_selection import KFold

    scored_rows, extra_rows = np.flatnonzero(scored), np.flatnonzero(~scored)
    found = {name: np.full(len(scored_rows), np.nan) for name in ("plain", "level-mean", "level-hit")}
    shifts: dict[str, list[float]] = {"level-mean": [], "level-hit": []}
    for _, held in KFold(n_splits=folds, shuffle=True, random_state=seed).split(scored_rows):
        fit_rows = np.setdiff1d(np.arange(len(prices)), scored_rows[held])
        model: EnsembleModel = model_of().fit(features[fit_rows], prices[fit_rows])
        on_extra, truth_extra = model.predict(features[extra_rows]), prices[extra_rows]
        mean_shift = float(np.log(truth_extra.mean() / on_extra.mean()))
        hits = [hit_rate(truth_extra, on_extra * np.exp(s)) for s in SHIFTS]
        hit_shift = float(SHIFTS[int(np.argmax(hits))])
        predicted = model.predict(features[scored_rows[held]])
        found["plain"][held] = predicted
        found["level-mean"][held] = predicted * np.exp(mean_shift)
        found["level-hit"][held] = predicted * np.exp(hit_shift)
        shifts["level-mean"].append(mean_shift)
        shifts["level-hit"].append(hit_shift)
    return found, shifts


def configuration(
    name: str, store: Path, models: Path, scored: list[Item], extra: list[Item], bases: list[str]
) -> dict[str, Any]:
    settings = Settings(store_path=store, models_dir=models).updated(embedding_cache_size=len(scored) + len(extra))
    job = EnsembleJob(Estimator.from_settings(settings), models / "ensemble-cache")
    outputs = job.outputs(
        bases,
        [*scored, *extra],
        on_skip=lambda base, why: print(f"{name}: skipped base {base}: {why}", flush=True),
        unscored={i.id for i in extra},
    )
    trainer = EnsembleTrainer(list(outputs))
    outcome = job.fit(trainer, outputs, scored, extra)
    prices = np.array([i.price for i in [*scored, *extra]])
    is_scored = np.r_[np.ones(len(scored), bool), np.zeros(len(extra), bool)]
    chosen = trainer.make(outcome.chosen)
    features = feature_matrix(outputs, trainer.bases, chosen.signal_base)
    predictions, shifts = level_corrected(lambda: trainer.make(outcome.chosen), features, prices, is_scored)
    assert outcome.out_of_fold is not None and np.allclose(predictions["plain"], outcome.out_of_fold)
    print(f"{name}: {outcome.chosen} of {', '.join(outputs)}; level shifts {shifts}", flush=True)
    return {
        "chosen": outcome.chosen,
        "kinds": {k: {m: v.value for m, v in found.items()} for k, found in outcome.kinds.items()},
        "coverage": outcome.coverage.as_dict(),
        "level_shifts": shifts,
        "predictions": {"ensemble": predictions["plain"]}
        | {f"ensemble+{k}": v for k, v in predictions.items() if k != "plain"}
        | {base: np.array([o.price for o in outputs[base][: len(scored)]]) for base in outputs},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--extra", type=Path, required=True)
    parser.add_argument("--config", action="append", required=True, help="NAME=STORE,MODELS_DIR (first: reference)")
    parser.add_argument("--bases", default=",".join(PREPARED_BASES))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    scored = read_items(args.items, split="dev")
    extra = read_items(args.extra)
    truth = np.array([i.price for i in scored])
    configs = {}
    for spec in args.config:
        name, _, paths = spec.partition("=")
        store, models = paths.split(",")
        configs[name] = configuration(name, Path(store), Path(models), scored, extra, args.bases.split(","))
    reference = next(iter(configs))
    references = {
        f"{reference} {variant}": configs[reference]["predictions"][variant]
        for variant in ("ensemble", "boosting-nn", "knn")
        if variant in configs[reference]["predictions"]
    }
    bootstrap = Bootstrap(2000, seed=0)
    rows: dict[str, Any] = {}
    for name, found in configs.items():
        for variant, predicted in found["predictions"].items():
            row: dict[str, Any] = {
                k: [v.value, v.low, v.high] for k, v in bootstrap.intervals(truth, predicted, METRICS).items()
            }
            row["bias"] = float(np.mean(predicted - truth))
            same = configs[reference]["predictions"].get(variant)  # the same variant with the reference's bases
            pairs = references | ({f"{reference} {variant}": same} if same is not None and name != reference else {})
            for label, other in pairs.items():
                paired = bootstrap.differences(truth, predicted, other, METRICS)
                row[f"vs {label}"] = {k: [v.value, v.low, v.high] for k, v in paired.items()}
            rows[f"{name} {variant}"] = row
            print(
                f"{name} {variant}: MAE {row['mae'][0]:.2f} ({row['mae'][1]:.2f}-{row['mae'][2]:.2f}) "
                f"hit {row['hit_rate'][0]:.1%} bias {row['bias']:+.2f}; vs {reference} ensemble "
                f"{row[f'vs {reference} ensemble']['mae'][0]:+.2f} "
                f"({row[f'vs {reference} ensemble']['mae'][1]:+.2f} {row[f'vs {reference} ensemble']['mae'][2]:+.2f})",
                flush=True,
            )
    report = {
        "configs": {n: {k: v for k, v in c.items() if k != "predictions"} for n, c in configs.items()},
        "rows": rows,
        "n_dev": len(scored),
        "n_extra": len(extra),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    every = {f"{n} {v}": p for n, c in configs.items() for v, p in c["predictions"].items()}
    np.savez(args.out.with_suffix(".npz"), truth=truth, ids=np.array([i.id for i in scored]), **every)


if __name__ == "__main__":
    main()
