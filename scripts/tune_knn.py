"""Choose knn's k and similarity power on dev (store built from train only).

    python scripts/tune_knn.py [--store var/store] [--items ../shared/data/items.jsonl.gz]

Embeds the dev items once, retrieves 30 neighbours each, then scores every (k, power) offline
with the same weighting code the strategy uses. Prints a table sorted by MAE.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag_pricer.api import Estimator  # noqa: E402
from rag_pricer.items import read_items  # noqa: E402
from rag_pricer.knowledge.retrieval import SearchOptions  # noqa: E402
from rag_pricer.query import Query  # noqa: E402
from rag_pricer.strategies.knn import MEANS, weighted_price  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "store")
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items.jsonl.gz")
    args = parser.parse_args()
    estimator = Estimator.from_settings(store_path=args.store)
    dev = read_items(args.items, split="dev")
    leaked = estimator.resources.store.contains_any([i.id for i in dev])
    if leaked:
        sys.exit(f"the store holds {len(leaked)} dev items: build it from --split train")
    found = estimator.resources.retriever.search_many([Query.of(i) for i in dev], SearchOptions(k=30))
    truth = np.array([i.price for i in dev])
    rows = []
    for mean in MEANS:
        for k in (1, 2, 3, 5, 7, 10, 15, 20, 30):
            for power in (0.0, 1.0, 2.0, 4.0, 8.0, 16.0):
                estimate = np.array([weighted_price(n[:k], power, mean) for n in found])
                error = np.abs(estimate - truth)
                hit = (error < 40) | (error < 0.2 * truth)
                rmsle = np.sqrt(np.mean((np.log1p(estimate) - np.log1p(truth)) ** 2))
                rows.append((error.mean(), rmsle, hit.mean(), k, power, mean))
    print(f"{'mean':>10} {'k':>3} {'power':>5} {'MAE':>8} {'RMSLE':>6} {'hit':>6}")
    for mae, rmsle, hit, k, power, mean in sorted(rows)[:20]:
        print(f"{mean:>10} {k:>3} {power:>5} {mae:8.2f} {rmsle:6.3f} {hit:6.1%}")


if __name__ == "__main__":
    main()
